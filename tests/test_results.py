"""Laboratory results in: every row counted once, a positive one a confirmed case with an urgent alert, out of F1
follow-up, and its contacts derived from the check-ins at once."""

import csv
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import func, select

from access import auth
from access.auth import operator
from campaigns.lifecycle import plan_day, transition
from campaigns.rules import CampaignRules
from conversations.duty import alert_text
from ground.settings import Settings
from models import Alert, AlertLevel, AuditLog, Campaign, ContactListMember, LabResult, OutreachAttempt, Person, Role
from tests import factories
from tests.test_cli import outreach
from tests.test_tracing import CHECKIN_HEADER, write_csv
from tracing.checkins import import_checkins
from tracing.copresence import derive_f1
from tracing.results import cases_of, import_results

HEADER = ["phone", "sample_date", "result", "lab"]


def results_file(tmp_path, *rows, header=HEADER, name="results.csv"):
    return write_csv(tmp_path / name, header, [list(row) for row in rows])


def test_each_row_is_imported_a_duplicate_or_rejected_with_its_reason(sessions, tmp_path):
    path = results_file(
        tmp_path,
        ("0912 345 678", "02/06/2021", "Dương tính", "CDC Bắc Ninh"),
        ("0912345679", "2021-06-02", "âm tính", "CDC Bắc Ninh"),
        ("84912345680", "2021-06-02", "-", "BV Phổi"),
        ("0912345681", "2021-06-03", "chờ kết quả", "BV Phổi"),
        ("0912345679", "2021-06-02", "Negative", "CDC Bắc Ninh"),  # the same result again, as a lab resends it
        ("0912", "2021-06-02", "positive", "BV Phổi"),
        ("0912345682", "hôm qua", "positive", "BV Phổi"),
        ("0912345683", "2021-06-02", "nghi ngờ", "BV Phổi"),
        ("0912345684", "2021-06-02", "+", ""),
    )
    summary = import_results(sessions, operator(), path)
    assert (summary.imported, summary.duplicates, summary.rejected) == (4, 1, 4)
    reasons = dict(summary.first_rejects)
    assert "0912" in reasons[7]
    assert "sample_date 'hôm qua' is not a date" in reasons[8]
    assert "'nghi ngờ' is not positive, negative or pending" in reasons[9]
    assert "lab must be" in reasons[10]
    with open(summary.rejects_file, encoding="utf-8-sig") as rejects:
        assert [row[0] for row in csv.reader(rejects)][1:] == ["7", "8", "9", "10"]
    with sessions() as session:
        stored = session.execute(select(Person.phone, LabResult.result).join(LabResult.person).order_by(Person.phone))
        assert [tuple(row) for row in stored] == [
            ("+84912345678", "positive"),
            ("+84912345679", "negative"),
            ("+84912345680", "negative"),
            ("+84912345681", "pending"),
        ]
    again = import_results(sessions, operator(), path)
    assert (again.imported, again.duplicates, again.new_cases) == (0, 5, []), "a file read twice adds nothing"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        assert session.scalar(select(func.count()).where(AuditLog.action == "results.import")) == 2


def test_a_positive_result_makes_a_confirmed_case_with_an_urgent_alert_once(sessions, tmp_path):
    with sessions.begin() as session:
        factories.person(session, "+84912345678", name="Nguyễn Văn An")
    first = import_results(sessions, operator(), results_file(tmp_path, ("0912345678", "2021-06-05", "+", "CDC")))
    assert first.new_cases == [("+84912345678", date(2021, 6, 5))]
    earlier = results_file(tmp_path, ("0912345678", "2021-06-03", "positive", "BV"), name="later.csv")
    assert import_results(sessions, operator(), earlier).new_cases == [], "already a case"
    with sessions() as session:
        person = session.scalars(select(Person)).one()
        assert person.confirmed_case_on == date(2021, 6, 3), "an earlier sample found later moves the date back"
        (alert,) = session.scalars(select(Alert)).all()
        assert (alert.level, alert.declaration_id, alert.person_id) == (AlertLevel.URGENT, None, person.id)
        assert alert.reasons == ["positive test", "CDC, 05/06/2021"]
        assert session.get(LabResult, alert.lab_result_id).sample_date == date(2021, 6, 5)
        text = alert_text(alert, "https://cdc.example")
    assert text.startswith("CDC: CANH BAO KHAN CAP - Nguyen Van An +84912345678")
    assert "xet nghiem duong tinh" in text and text.endswith(f"/console/alerts/{alert.id}")


def test_a_province_imports_results_of_its_people_only(sessions, tmp_path):
    with sessions.begin() as session:
        factories.person(session, "+84912345678", province_code="01")
        manager = auth.add_user(session, "manager-27", Role.MANAGER, "27").user
    path = results_file(
        tmp_path, ("0912345678", "2021-06-02", "positive", "CDC"), ("0987654321", "2021-06-02", "positive", "CDC")
    )
    summary = import_results(sessions, manager, path)
    assert (summary.imported, summary.rejected) == (1, 1)
    assert "another province" in summary.first_rejects[0][1]
    with sessions() as session:
        assert session.scalar(select(Person.province_code).where(Person.phone == "+84987654321")) == "27"
        hanoi = session.scalars(select(Person).where(Person.phone == "+84912345678")).one()
        assert hanoi.confirmed_case_on is None, "Hà Nội's resident is untouched"


def test_a_confirmed_case_leaves_f1_follow_up(sessions, tmp_path):
    with sessions.begin() as session:
        an, binh = factories.person(session, "+84912345678"), factories.person(session, "+84987654321")
        listed = factories.contact_list(session, an, date(2021, 6, 1))
        session.add(ContactListMember(contact_list_id=listed.id, person_id=binh.id, exposure_date=date(2021, 6, 1)))
        rules = CampaignRules(follow_up_days=7, timezone="Asia/Ho_Chi_Minh").model_dump(mode="json")
        campaign = Campaign(name="F1", province_code="27", contact_lists=[listed], rules=rules)
        session.add(campaign)
        session.flush()
        transition(session, campaign, "start", datetime(2021, 6, 2, 1, 0, tzinfo=UTC))
        campaign_id = campaign.id
    import_results(sessions, operator(), results_file(tmp_path, ("0912345678", "2021-06-02", "positive", "CDC")))
    with sessions.begin() as session:
        attempts = dict(session.execute(select(OutreachAttempt.person_id, OutreachAttempt.status)).all())
        assert attempts == {an.id: "canceled", binh.id: "scheduled"}, "no more calls to the case as a contact"
        campaign = session.get(Campaign, campaign_id)
        assert plan_day(session, campaign, date(2021, 6, 3), datetime(2021, 6, 3, 1, 0, tzinfo=UTC)) == 1
        planned = session.scalars(select(OutreachAttempt.person_id).where(OutreachAttempt.follow_up_day == 2)).all()
    assert planned == [binh.id]


def test_the_new_cases_contacts_are_derived_from_the_check_ins_at_once(sessions, tmp_path):
    settings = Settings(checkins_dir=tmp_path / "checkins")
    checkins = write_csv(
        tmp_path / "day.csv",
        CHECKIN_HEADER,
        [
            ["CHO", "0912345678", "2021-06-03 08:00", "2021-06-03 09:00"],  # two days before the sample
            ["CHO", "0987000001", "2021-06-03 08:30", ""],
            ["CHO", "0912345678", "2021-05-31 08:00", "2021-06-01 09:00"],  # before the infectious period
            ["CHO", "0987000002", "2021-05-31 08:30", ""],
        ],
    )
    import_checkins(sessions, operator(), checkins, settings)
    summary = import_results(sessions, operator(), results_file(tmp_path, ("0912345678", "2021-06-05", "+", "CDC")))
    derived = derive_f1(sessions, operator(), settings, cases_of(summary.new_cases), "F1 mới", source="results.csv")
    assert [(f1.phone, f1.case_codes) for f1 in derived.f1s] == [("+84987000001", ["F0 0912345678"])]
    assert derived.contact_list.imported == 1


@pytest.mark.processes
def test_the_command_imports_results_and_derives_the_new_cases_contacts(tmp_path):
    url, env = f"sqlite:///{tmp_path / 'store.db'}", {"OUTREACH_CHECKINS_DIR": str(tmp_path / "checkins")}
    results = results_file(tmp_path, ("0912345678", "2021-06-05", "dương tính", "CDC"), ("x", "", "", ""))
    no_checkins = outreach("results", "import", str(results), "--derive-list", "F1", database_url=url, **env)
    assert no_checkins.returncode == 0, no_checkins.stderr
    assert "1 results imported (1 new confirmed cases), 0 already known, 1 rejected" in no_checkins.stdout
    assert "no list derived: no check-ins imported yet" in no_checkins.stdout
    refused = outreach("results", "import", str(tmp_path / "checkins.txt"), database_url=url)
    assert refused.returncode != 0


def test_results_by_api_for_a_managers_province(api, tmp_path):
    with api.sessions.begin() as session:
        manager = auth.add_user(session, "manager-27", Role.MANAGER, "27").token
        tracer = auth.add_user(session, "tracer-27", Role.TRACER, "27").token
    body = "phone,sample_date,result,lab\n0912345678,2021-06-05,positive,CDC\n0912,2021-06-05,positive,CDC\n"

    def post(token, derive=True):
        return httpx.post(
            f"{api.url}/api/v1/results",
            files={"file": ("results.csv", body.encode())},
            data={"derive_list": "F1 mới"} if derive else {},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    assert post(tracer).status_code == 403
    assert post(manager).status_code == 403, "a province may not derive from the whole country's check-ins"
    answer = post(manager, derive=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["new_cases"] == 1 and answer.json()["rejected"] == 1
    assert answer.json()["rejects"][0]["row"] == 3
    assert answer.json()["derived"] is None and answer.json()["not_derived"] is None
    alerts = httpx.get(f"{api.url}/api/v1/alerts", headers={"Authorization": f"Bearer {manager}"}, timeout=10)
    (alert,) = alerts.json()
    assert (alert["level"], alert["declaration_id"], alert["person"]["phone"]) == ("urgent", None, "+84912345678")
    assert alert["lab_result_id"] is not None and alert["phone_verified"] is True
