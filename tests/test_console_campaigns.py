"""The provincial centres' campaign pages over real HTTP, on SQLite and PostgreSQL: the rules form with its errors
said next to each field, the capacity plan, creating, confirming each action, the live progress the page polls, the
exports, roles and province scope. (The whole flow in Chromium: tests/test_console_browser.py.)"""

import re
from datetime import date, timedelta

import pytest

from models import (
    Campaign,
    CampaignStatus,
    ContactList,
    ContactListMember,
    OutreachAttempt,
    Role,
)
from tests import factories
from tests.test_console import _csrf, _sign_in, _user

RULES = {
    "name": "F1 Bắc Ninh 12/6",
    "channel_1": "voice",
    "channel_2": "sms",
    "window_1_start": "08:00",
    "window_1_end": "11:30",
    "window_2_start": "13:30",
    "window_2_end": "20:00",
    "max_attempts_per_day": "3",
    "retry_spacing_minutes": "60",
    "follow_up_days": "14",
    "new_calls_per_second": "1",
    "max_concurrent_calls": "10",
    "messages_per_second": "10",
    "call_seconds": "120",
}


@pytest.fixture
def province_list(api):
    """A Bắc Ninh list of five people exposed yesterday, a Hà Nội list, and a Bắc Ninh manager signed in."""
    with api.sessions.begin() as session:
        ours = ContactList(name="F1 ổ dịch Quế Võ", province_code="27")
        theirs = ContactList(name="F1 Hà Nội", province_code="01")
        session.add_all([ours, theirs])
        session.flush()
        for n in range(5):
            person = factories.person(session, f"+8491234560{n}")
            session.add(
                ContactListMember(
                    contact_list_id=ours.id, person_id=person.id, exposure_date=date.today() - timedelta(days=1)
                )
            )
        ids = (ours.id, theirs.id)
    _user(api.sessions, "manager-bn", Role.MANAGER)
    return api, _sign_in(api.url, "manager-bn"), ids


def _post_form(browser, fields: dict, action: str):
    form = browser.get("/console/campaigns/new")
    return browser.post("/console/campaigns", data={**fields, "action": action, "csrf_token": _csrf(form)})


def test_the_form_says_what_is_wrong_next_to_each_field_and_keeps_the_rest(province_list):
    api, browser, (ours, _) = province_list
    wrong = {
        **RULES,
        "lists": str(ours),
        "window_2_start": "21:00",
        "window_2_end": "20:00",
        "follow_up_days": "mười bốn",
        "new_calls_per_second": "0",
        "channel_1": "zns",
        "holidays": "31/02/2021",
        "name": "Đợt " * 100,
    }
    answer = _post_form(browser, wrong, "create")
    assert answer.status_code == 422
    for field, words in (
        ("calling_hours", "kết thúc sau khi bắt đầu"),
        ("follow_up_days", "1 đến 60"),
        ("new_calls_per_second", "từ 0,001"),
        ("holidays", "dd/mm/yyyy"),
        ("zns_template_id", "mã mẫu tin ZNS"),
        ("name", "tối đa 200"),
    ):
        said = re.search(rf'id="error-{field}"[^>]*>([^<]+)<', answer.text)
        assert said and words in said.group(1), field
    assert 'value="mười bốn"' in answer.text, "what the user typed stays in the form"
    with api.sessions() as session:
        assert session.query(Campaign).count() == 0, "nothing is created from a refused form"


@pytest.mark.parametrize("field", ["follow_up_days", "lists", "call_seconds"])
def test_digits_that_are_not_ascii_are_refused_not_a_server_error(province_list, field):
    api, browser, (ours, _) = province_list
    answer = _post_form(browser, {**RULES, "lists": str(ours), field: "²"}, "plan")
    assert answer.status_code == 422, "a superscript two is a digit to str.isdigit, not to int()"


def test_capacity_plan_then_create_start_pause_resume_cancel_with_confirmation(province_list):
    api, browser, (ours, _) = province_list
    planned = _post_form(browser, {**RULES, "lists": str(ours), "finish_by": "20:00"}, "plan")
    assert planned.status_code == 200
    assert 'id="capacity-plan"' in planned.text
    assert re.search(r'id="plan-today">5<', planned.text), "five people on day 1 today"
    created = _post_form(browser, {**RULES, "lists": str(ours)}, "create")
    assert created.status_code == 303
    page_url = created.headers["location"]
    campaign_id = int(page_url.rsplit("/", 1)[1])
    draft = browser.get(page_url)
    assert "Bản nháp" in draft.text and 'id="action-start"' in draft.text
    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running"), ("cancel", "canceled")):
        confirm = browser.get(f"{page_url}/confirm/{action}")
        assert confirm.status_code == 200 and "Xác nhận" in confirm.text
        done = browser.post(f"{page_url}/{action}", data={"csrf_token": _csrf(confirm)})
        assert done.status_code == 303, done.text
        with api.sessions() as session:
            assert session.get(Campaign, campaign_id).status == status
        if action == "start":
            with api.sessions() as session:
                assert session.query(OutreachAttempt).filter_by(campaign_id=campaign_id).count() == 5
            live = browser.get(f"{page_url}/progress.json").json()
            assert live["status"] == "running" and 'id="outcomes-today"' in live["html"]
            assert re.search(r'data-outcome="NOT_PERFORMED">5<', live["html"]), "today's five, not performed yet"
    exported = browser.get(f"{page_url}/export.csv")
    assert exported.status_code == 200 and exported.text.startswith("\ufeffphone,")
    assert len(exported.text.strip().splitlines()) == 1 + 5
    xlsx = browser.get(f"{page_url}/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert 'id="campaign-actions"' not in browser.get(page_url).text, "a canceled campaign offers no action"


def test_a_completed_campaign_says_so_and_offers_no_action(province_list):
    api, browser, (ours, _) = province_list
    with api.sessions.begin() as session:
        campaign = Campaign(
            name="Đợt tháng 6", province_code="27", status=CampaignStatus.COMPLETED, rules={}, dispatch_state={}
        )
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    page = browser.get(f"/console/campaigns/{campaign_id}")
    assert "Đã hoàn thành" in page.text and "chiến dịch kết thúc" in page.text
    assert 'id="campaign-actions"' not in page.text
    listing = browser.get("/console/campaigns")
    assert f'id="campaign-{campaign_id}" data-status="completed"' in listing.text


def test_roles_scope_and_forms_are_checked(province_list):
    api, browser, (ours, theirs) = province_list
    refused = _post_form(browser, {**RULES, "lists": str(theirs)}, "plan")
    assert refused.status_code == 422 and "phạm vi" in refused.text, "another province's list is not planned"
    created = _post_form(browser, {**RULES, "lists": str(ours)}, "create")
    page_url = created.headers["location"]
    assert browser.post(f"{page_url}/start", data={}).status_code == 403, "no CSRF token, no action"
    _user(api.sessions, "viewer-bn", Role.VIEWER)
    viewer = _sign_in(api.url, "viewer-bn")
    page = viewer.get(page_url)
    assert page.status_code == 200 and 'id="campaign-actions"' not in page.text, "a viewer reads"
    assert viewer.get("/console/campaigns/new").status_code == 403
    assert viewer.post(f"{page_url}/start", data={"csrf_token": _csrf(page)}).status_code == 403, "and never acts"
    _user(api.sessions, "manager-hn", Role.MANAGER, province="01")
    hanoi = _sign_in(api.url, "manager-hn")
    assert hanoi.get(page_url).status_code == 404
    assert hanoi.get(f"{page_url}/export.csv").status_code == 404
    assert hanoi.get(f"{page_url}/progress.json").status_code == 404
