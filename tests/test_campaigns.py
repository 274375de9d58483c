"""Campaign rules (the calling-hours governor), the campaign state machine and day planning, and the API."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from access import auth
from campaigns.lifecycle import TransitionRefused, plan_day, plan_running_campaigns, transition
from campaigns.rules import CampaignRules, Window
from ground.store import make_engine, make_session_factory
from models import AttemptStatus, Campaign, ContactList, ContactListMember, OutreachAttempt, Role
from models.campaign import CampaignStatus, Outcome
from tests import factories
from tests.test_cli import outreach

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def make_sessions(url: str):
    return make_session_factory(make_engine(url))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2021, 6, day, hour, minute, tzinfo=HANOI)  # 3 June 2021 was a Thursday


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        (at(3, 7), at(3, 8)),
        (at(3, 9), at(3, 9)),
        (at(3, 12), at(3, 13, 30)),
        (at(3, 20, 30), at(5, 8)),
        (datetime(2021, 6, 3, 1, 0, tzinfo=ZoneInfo("UTC")), at(3, 8)),
    ],
)
def test_calling_hours_and_holidays(moment, allowed):
    rules = CampaignRules(holidays=[date(2021, 6, 4)])
    assert rules.next_allowed(moment) == allowed


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"channels": []}, "at least 1"),
        ({"channels": ["voice", "voice"]}, "once"),
        ({"timezone": "Mars/Base"}, "zone"),
        ({"channels": ["zns"]}, "zns_template_id"),
        ({"zns_template_data": {"customer_name": "{full_name}"}}, "zns_template_data.customer_name may use name"),
        ({"calling_hours": [{"start": "12:00", "end": "08:00"}]}, "end after"),
        ({"calling_hours": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}, "overlap"),
        ({"follow_up_days": 0}, "1 to 60"),
        ({"follow_up_days": [1, 99]}, "0 to 60"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(rules, message):
    with pytest.raises(ValidationError, match=message):
        CampaignRules.model_validate(rules)


def test_follow_up_days_as_a_count_or_a_list():
    assert CampaignRules(follow_up_days=3).follow_up_offsets() == [1, 2, 3]
    assert CampaignRules(follow_up_days=[7, 1, 3]).follow_up_offsets() == [1, 3, 7]
    assert CampaignRules(
        calling_hours=[Window(start=time(13), end=time(17)), Window(start=time(8), end=time(9))]
    ).calling_hours[0].start == time(8)


@pytest.fixture
def campaign(sessions):
    """Three people exposed on 1 June (one on two lists, later exposure on the second), follow-up days 1, 2, 3."""
    with sessions.begin() as session:
        first, second = ContactList(name="F1 A", province_code="27"), ContactList(name="F1 B", province_code="27")
        session.add_all([first, second])
        session.flush()
        people = [factories.person(session, phone) for phone in ("+84912345678", "+84987654321", "+84323456789")]
        for person in people:
            session.add(
                ContactListMember(contact_list_id=first.id, person_id=person.id, exposure_date=date(2021, 6, 1))
            )
        session.add(
            ContactListMember(contact_list_id=second.id, person_id=people[0].id, exposure_date=date(2021, 6, 2))
        )
        row = Campaign(
            name="F1 BN",
            province_code="27",
            contact_lists=[first, second],
            rules=CampaignRules(follow_up_days=3).model_dump(mode="json"),
        )
        session.add(row)
        session.flush()
        return row.id


def test_start_plans_today_and_the_state_machine_holds(sessions, campaign):
    with sessions.begin() as session:
        row = session.get(Campaign, campaign)
        transition(session, row, "start", at(3, 7))
        with pytest.raises(TransitionRefused, match="cannot start a running campaign"):
            transition(session, row, "start", at(3, 7))
    with sessions() as session:
        attempts = session.scalars(select(OutreachAttempt).order_by(OutreachAttempt.person_id)).all()
    assert [(a.follow_up_day, a.status) for a in attempts] == [(1, "scheduled"), (2, "scheduled"), (2, "scheduled")]
    assert {a.due_at for a in attempts} == {at(3, 8)}, "first moment of today's calling hours"


def test_planning_is_idempotent_and_per_day(sessions, campaign):
    with sessions.begin() as session:
        row = session.get(Campaign, campaign)
        transition(session, row, "start", at(3, 9))
        assert plan_day(session, row, date(2021, 6, 3), at(3, 9)) == 0, "planned once"
        assert plan_day(session, row, date(2021, 6, 4), at(3, 21)) == 3
        assert plan_day(session, row, date(2021, 6, 6), at(6, 8)) == 0, "past day 3 for everyone"


def test_pause_resume_and_cancel(sessions, campaign):
    with sessions.begin() as session:
        row = session.get(Campaign, campaign)
        for action in ("start", "pause", "resume", "cancel"):
            transition(session, row, action, at(3, 9))
        assert row.status == "canceled"
        with pytest.raises(TransitionRefused):
            transition(session, row, "resume", at(3, 10))
    with sessions() as session:
        assert set(session.scalars(select(OutreachAttempt.status))) == {AttemptStatus.CANCELED}


def _plan_at(sessions, campaign_id: int, moment: datetime) -> CampaignStatus:
    """The planning job at `moment`; the campaign's status after it."""
    with sessions.begin() as session:
        plan_running_campaigns(session, moment)
        return session.get(Campaign, campaign_id).status


def test_a_campaign_completes_once_its_last_follow_up_day_ends(sessions, campaign):
    """The last follow-up day is 5 June (the latest exposure, 2 June, plus 3 days)."""
    with sessions.begin() as session:
        transition(session, session.get(Campaign, campaign), "start", at(3, 9))
    for moment in (at(4, 0, 30), at(5, 9), at(5, 23, 59)):
        assert _plan_at(sessions, campaign, moment) == CampaignStatus.RUNNING, moment
    assert _plan_at(sessions, campaign, at(6, 0, 30)) == CampaignStatus.COMPLETED
    with sessions() as session:
        last_day = session.scalar(select(OutreachAttempt).where(OutreachAttempt.follow_up_day == 3))
        assert (last_day.status, last_day.last_outcome) == (AttemptStatus.FAILED, Outcome.DAY_ENDED)


def test_a_campaign_completes_when_every_attempt_of_its_last_day_is_settled(sessions, campaign):
    with sessions.begin() as session:
        transition(session, session.get(Campaign, campaign), "start", at(3, 9))
    assert _plan_at(sessions, campaign, at(5, 9)) == CampaignStatus.RUNNING
    with sessions.begin() as session:
        last_day = session.scalar(select(OutreachAttempt).where(OutreachAttempt.follow_up_day == 3))
        last_day.status = AttemptStatus.COMPLETED
    assert _plan_at(sessions, campaign, at(5, 10)) == CampaignStatus.COMPLETED
    with sessions.begin() as session, pytest.raises(TransitionRefused, match="cannot pause a completed campaign"):
        transition(session, session.get(Campaign, campaign), "pause", at(5, 11))


@pytest.mark.parametrize("actions", [("start", "pause"), ("start", "cancel"), ()], ids=["paused", "canceled", "draft"])
def test_only_a_running_campaign_completes(sessions, campaign, actions):
    with sessions.begin() as session:
        for action in actions:
            transition(session, session.get(Campaign, campaign), action, at(3, 9))
        before = session.get(Campaign, campaign).status
    assert _plan_at(sessions, campaign, at(9, 9)) == before


def test_the_cli_shows_a_completed_campaign(store_url, sessions, campaign):
    with sessions.begin() as session:
        transition(session, session.get(Campaign, campaign), "start", at(3, 9))
    _plan_at(sessions, campaign, at(6, 0, 30))
    shown = outreach("campaign", "show", str(campaign), database_url=store_url)
    assert shown.returncode == 0 and f"campaign {campaign} 'F1 BN': completed" in shown.stdout, shown.stderr
    missing = outreach("campaign", "show", "999", database_url=store_url)
    assert missing.returncode == 1 and "no campaign 999" in missing.stderr


def test_the_api_shows_a_completed_campaign(api):
    """A campaign over no one (default rules: 14 follow-up days from its start) completes on its 14th day: nothing
    is left to settle then."""
    started = datetime.now(HANOI) - timedelta(days=15)
    with api.sessions.begin() as session:
        row = factories.campaign(session)
        transition(session, row, "start", started)
        plan_running_campaigns(session, started + timedelta(days=13))
        assert row.status == CampaignStatus.RUNNING
        plan_running_campaigns(session, started + timedelta(days=14))
        token = auth.add_user(session, "v27", Role.VIEWER, "27").token
    shown = api.get(f"/api/v1/campaigns/{row.id}", token)
    assert shown.status_code == 200 and shown.json()["status"] == "completed"


def test_campaign_api(api, tmp_path):
    with api.sessions.begin() as session:
        exposed = datetime.now(HANOI).date() - timedelta(days=1)
        mine = factories.contact_list(session, factories.person(session, "+84912345678"), exposed)
        theirs = ContactList(name="HN", province_code="01")
        session.add(theirs)
        session.flush()
        ids = {"mine": mine.id, "theirs": theirs.id}
        tokens = {
            "manager": auth.add_user(session, "m27", Role.MANAGER, "27").token,
            "tracer": auth.add_user(session, "t27", Role.TRACER, "27").token,
        }
    manager = {"Authorization": f"Bearer {tokens['manager']}"}
    url = f"{api.url}/api/v1/campaigns"
    refused = httpx.post(url, json={"name": "x", "contact_list_ids": [ids["theirs"]]}, headers=manager)
    assert refused.status_code == 422 and "scope" in refused.json()["message"]
    backwards = {"calling_hours": [{"start": "20:00", "end": "08:00"}]}
    bad_rules = httpx.post(
        url, json={"name": "x", "contact_list_ids": [ids["mine"]], "rules": backwards}, headers=manager
    )
    assert bad_rules.status_code == 422
    assert (
        httpx.post(
            url,
            json={"name": "x", "contact_list_ids": [ids["mine"]]},
            headers={"Authorization": f"Bearer {tokens['tracer']}"},
        ).status_code
        == 403
    )
    created = httpx.post(url, json={"name": "F1 BN", "contact_list_ids": [ids["mine"]]}, headers=manager)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["status"], campaign["province_code"], campaign["rules"]["channels"]) == (
        "draft",
        "27",
        ["voice", "sms"],
    )
    started = httpx.post(f"{url}/{campaign['id']}/start", headers=manager).json()
    assert started["status"] == "running" and started["attempts"] == {"scheduled": 1}
    assert httpx.post(f"{url}/{campaign['id']}/resume", headers=manager).status_code == 409
    canceled = httpx.post(f"{url}/{campaign['id']}/cancel", headers=manager).json()
    assert canceled["status"] == "canceled" and canceled["attempts"] == {"canceled": 1}
    assert api.get(f"/api/v1/campaigns/{campaign['id']}", tokens["tracer"]).json()["status"] == "canceled"


def test_campaign_cli(store_url, tmp_path):
    with make_sessions(store_url).begin() as session:
        exposed = datetime.now(HANOI).date() - timedelta(days=2)
        list_id = factories.contact_list(session, factories.person(session, "+84912345678"), exposed).id
    rules = tmp_path / "rules.json"
    rules.write_text('{"follow_up_days": [2, 4], "calling_hours": [{"start": "00:00", "end": "23:59"}]}')
    created = outreach(
        "campaign", "create", "F1 BN", "--list", str(list_id), "--rules", str(rules), database_url=store_url
    )
    assert created.returncode == 0 and "draft" in created.stdout, created.stderr
    campaign_id = created.stdout.split()[1]
    assert "1 scheduled" in outreach("campaign", "change", campaign_id, "start", database_url=store_url).stdout
    again = outreach("campaign", "change", campaign_id, "start", database_url=store_url)
    assert again.returncode == 1 and "cannot start a running campaign" in again.stderr
    rules.write_text('{"channels": []}')
    bad = outreach("campaign", "create", "x", "--list", str(list_id), "--rules", str(rules), database_url=store_url)
    assert bad.returncode == 1 and "channels" in bad.stderr
