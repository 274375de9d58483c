"""Go.Data daily outcomes and final statuses, campaign progress (rates, alerts, ETA in calling hours) and exports."""

import csv
import io
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import select

from access import auth
from app.routers.campaigns import clock
from app.web import create_app
from campaigns.capacity import capacity_plan
from campaigns.export import COLUMNS, write_xlsx
from campaigns.outcomes import DailyOutcome, FinalStatus, day_counts, follow_up_rows, keep_verdict, person_records
from campaigns.progress import WAITING, attempts_by_status, counted_days, eta, settle
from campaigns.rules import CampaignRules
from ground.settings import Settings
from models import (
    Alert,
    AlertLevel,
    AttemptStatus,
    AuditLog,
    Campaign,
    CampaignStatus,
    ContactList,
    ContactListMember,
    Declaration,
    DeclarationStatus,
    OutreachAttempt,
    Person,
    Role,
)
from tests import factories
from tests.support.net import free_port, serving
from tests.test_cli import outreach

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
_phones = (f"+8491{n:07d}" for n in itertools.count(1))


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2021, 6, day, hour, minute, second, tzinfo=HANOI)  # 3 June 2021 was a Thursday


def june(day: int) -> date:
    return date(2021, 6, day)


def new_campaign(session, follow_up_days: int, started: datetime | None, status=CampaignStatus.RUNNING) -> Campaign:
    contact_list = ContactList(name="F1 Bắc Ninh", province_code="27")
    rules = CampaignRules(follow_up_days=follow_up_days).model_dump(mode="json")
    campaign = Campaign(
        name="F1 BN", province_code="27", status=status, started_at=started, contact_lists=[contact_list], rules=rules
    )
    session.add(campaign)
    session.flush()
    return campaign


def resident(session, campaign: Campaign, name: str, exposure: date, province_code: str = "27") -> Person:
    person = factories.person(session, next(_phones), province_code=province_code, name=name)
    session.add(
        ContactListMember(contact_list_id=campaign.contact_lists[0].id, person_id=person.id, exposure_date=exposure)
    )
    return person


def attempt(
    session,
    campaign: Campaign,
    person: Person,
    day: int,
    status: AttemptStatus,
    tries: int,
    last_outcome: str | None = None,
    due_at: datetime | None = None,
    **fields,
) -> OutreachAttempt:
    session.flush()
    exposure = session.scalar(select(ContactListMember.exposure_date).where(ContactListMember.person_id == person.id))
    row = OutreachAttempt(
        campaign_id=campaign.id,
        person_id=person.id,
        follow_up_day=day,
        follow_up_date=exposure + timedelta(days=day),  # as the planner dates it
        status=status,
        tries=tries,
        last_outcome=last_outcome,
        channel="voice" if tries else None,
        due_at=due_at or at(3, 8),
        **fields,
    )
    session.add(row)
    return row


def declaration(session, campaign: Campaign, person: Person, day: int, **fields) -> Declaration:
    """A declaration of the day, kept on its attempt as the conversation service's assessment keeps it."""
    made = factories.empty_declaration(session, person, campaign_id=campaign.id, follow_up_day=day, **fields)
    keep_verdict(session, made)
    return made


DONE = (AttemptStatus.COMPLETED, 1, "completed")
WELL = {"status": DeclarationStatus.COMPLETE, "symptoms_asked": True}
COUGH = {"status": DeclarationStatus.COMPLETE, "symptoms": ["cough"], "alert_level": AlertLevel.WATCH}

# who, day (0 today, -1 yesterday), attempt (status, tries, last outcome) or None, declarations, outcome
SITUATIONS = [
    ("declared well", -1, DONE, [WELL], DailyOutcome.SEEN_OK),
    ("37.0 °C is no fever", -1, DONE, [{**WELL, "temperature_c": 37.0}], DailyOutcome.SEEN_OK),
    ("declared a cough", -1, DONE, [COUGH], DailyOutcome.SEEN_NOT_OK),
    (
        "fever, then hung up",
        -1,
        (AttemptStatus.FAILED, 3, "dropped"),
        [{"status": DeclarationStatus.IN_PROGRESS, "temperature_c": 38.2, "alert_level": AlertLevel.WATCH}],
        DailyOutcome.SEEN_NOT_OK,
    ),
    ("refused", 0, DONE, [{"status": DeclarationStatus.REFUSED}], DailyOutcome.MISSED),
    ("wrong person with a cough", 0, DONE, [{**COUGH, "status": DeclarationStatus.WRONG_PERSON}], DailyOutcome.MISSED),
    ("no answer, no tries left", 0, (AttemptStatus.FAILED, 3, "no_answer"), [], DailyOutcome.MISSED),
    ("still waiting at midnight", -1, (AttemptStatus.RETRY_WAIT, 1, "busy"), [], DailyOutcome.MISSED),
    (
        "callback due later today",
        0,
        (AttemptStatus.RETRY_WAIT, 1, "callback"),
        [{"status": DeclarationStatus.CALLBACK_REQUESTED}],
        DailyOutcome.NOT_PERFORMED,
    ),
    (
        "callback never kept",
        -1,
        (AttemptStatus.RETRY_WAIT, 1, "callback"),
        [{"status": DeclarationStatus.CALLBACK_REQUESTED}],
        DailyOutcome.MISSED,
    ),
    ("declared the next morning", -1, (AttemptStatus.FAILED, 3, "no_answer"), [WELL], DailyOutcome.SEEN_OK),
    (
        "declared, then opened the chat again",
        -1,
        DONE,
        [WELL, {"status": DeclarationStatus.IN_PROGRESS}],
        DailyOutcome.SEEN_OK,
    ),
    (
        "refused, then a cough by chat",
        0,
        DONE,
        [{"status": DeclarationStatus.REFUSED}, COUGH],
        DailyOutcome.SEEN_NOT_OK,
    ),
    ("never handed to a channel", -1, (AttemptStatus.SCHEDULED, 0, None), [], DailyOutcome.NOT_ATTEMPTED),
    ("waiting for the calling hours", 0, (AttemptStatus.SCHEDULED, 0, None), [], DailyOutcome.NOT_PERFORMED),
    ("never planned", -1, None, [], DailyOutcome.NOT_ATTEMPTED),
    ("not planned yet today", 0, None, [], DailyOutcome.NOT_PERFORMED),
]


def outcomes_by_name(session, campaign: Campaign, today: date) -> dict[str, dict[date, DailyOutcome]]:
    outcomes: dict[str, dict[date, DailyOutcome]] = {}
    for row in follow_up_rows(session, campaign, today):
        outcomes.setdefault(row.name, {})[row.date] = row.outcome
    return outcomes


def test_each_daily_outcome_arises_from_its_situation(sessions):
    """Follow-up day 2 of each person falls on the day the situation names; the campaign runs since 3 June."""
    today = june(5)
    with sessions.begin() as session:
        campaign = new_campaign(session, 3, at(3, 7))
        for name, shift, attempted, declared, _ in SITUATIONS:
            person = resident(session, campaign, name, today + timedelta(days=shift - 2))
            if attempted:
                attempt(session, campaign, person, 2, *attempted)
            for fields in declared:
                declaration(session, campaign, person, 2, **fields)
        session.flush()
        outcomes = outcomes_by_name(session, campaign, today)
    for name, shift, _, _, expected in SITUATIONS:
        assert outcomes[name][today + timedelta(days=shift)] == expected, name


def _tally(counts) -> Counter:
    tally: Counter = Counter()
    for count in counts:
        tally[(count.day, count.outcome, count.attempt_status, count.channel)] += count.follow_ups
        tally[("tried", count.day)] += count.tried
        tally[("reached", count.day)] += count.reached
    return tally


@pytest.mark.parametrize("status", [CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.CANCELED])
def test_progress_kept_day_by_day_adds_up_to_a_full_recount(sessions, status):
    """Days kept as they settle (on 4 June, then on 5 June) plus today counted live give what a pass over every
    follow-up day gives; the kept days are read, not recounted, on the next view."""
    with sessions.begin() as session:
        campaign = new_campaign(session, 3, at(3, 7), status)
        for name, shift, attempted, declared, _ in SITUATIONS:
            person = resident(session, campaign, name, june(5) + timedelta(days=shift - 2))
            if attempted:
                attempt(session, campaign, person, 2, *attempted)
            for fields in declared:
                declaration(session, campaign, person, 2, **fields)
        session.flush()
        assert settle(session, campaign, june(4)) and settle(session, campaign, june(5))
        kept = counted_days(session, campaign, june(5))
        assert not settle(session, campaign, june(5)), "a day is kept once"
        assert _tally(kept) == _tally(day_counts(session, campaign, june(5)))
        assert {june(4), june(5)} <= {c.day for c in kept}
        every_attempt = Counter(a.status.value for a in session.scalars(select(OutreachAttempt)))
        assert attempts_by_status(kept) == every_attempt


@pytest.mark.parametrize(
    ("status", "attempted", "expected"),
    [
        (CampaignStatus.CANCELED, (AttemptStatus.CANCELED, 0, None), DailyOutcome.NOT_ATTEMPTED),
        (CampaignStatus.CANCELED, (AttemptStatus.CANCELED, 1, "no_answer"), DailyOutcome.MISSED),
        (CampaignStatus.CANCELED, (AttemptStatus.CONTACTING, 1, None), DailyOutcome.MISSED),  # no retry follows
        (CampaignStatus.CANCELED, None, None),
        (CampaignStatus.PAUSED, (AttemptStatus.SCHEDULED, 0, None), DailyOutcome.NOT_PERFORMED),
        (CampaignStatus.PAUSED, None, DailyOutcome.NOT_PERFORMED),
    ],
)
def test_a_paused_day_may_still_happen_a_canceled_one_is_over(sessions, status, attempted, expected):
    with sessions.begin() as session:
        campaign = new_campaign(session, 3, at(3, 7), status)
        person = resident(session, campaign, "An", june(3))
        if attempted:
            attempt(session, campaign, person, 2, *attempted)
        session.flush()
        assert outcomes_by_name(session, campaign, june(5)).get("An", {}).get(june(5)) == expected


# One letter a follow-up day from day 1: S seen well, X seen unwell, M missed (no answer, no tries left),
# U planned and never handed to a channel. Days after the letters are not planned.
def follow(session, campaign: Campaign, name: str, exposure: date, days: str) -> None:
    person = resident(session, campaign, name, exposure)
    for day, letter in enumerate(days, start=1):
        if letter in "SX":
            attempt(session, campaign, person, day, *DONE)
            declaration(session, campaign, person, day, **(WELL if letter == "S" else COUGH))
        elif letter == "M":
            attempt(session, campaign, person, day, AttemptStatus.FAILED, 3, "no_answer")
        else:
            attempt(session, campaign, person, day, AttemptStatus.SCHEDULED, 0)


# Follow-up days 1-7; the campaign runs since 1 June; today is 20 June. Exposed on 1 June: over since 8 June.
# Exposed on 15 June: days 16-22 June, today is day 5.
FINALS = [
    ("seen on most days", june(1), "SSSSSMM", FinalStatus.FOLLOW_UP_COMPLETED),
    ("seen on the last day", june(1), "MMSUUMS", FinalStatus.FOLLOW_UP_COMPLETED),
    ("missed the last three days", june(1), "SSSSMMM", FinalStatus.LOST_TO_FOLLOW_UP),
    ("seen too seldom", june(1), "SMSMUMU", FinalStatus.LOST_TO_FOLLOW_UP),
    ("never tried", june(1), "UUUUUUU", FinalStatus.LOST_TO_FOLLOW_UP),
    ("followed", june(15), "SX", FinalStatus.UNDER_FOLLOW_UP),
    ("missed two, one not planned", june(15), "SMM", FinalStatus.UNDER_FOLLOW_UP),
    ("missed three in a row", june(15), "SMMM", FinalStatus.LOST_TO_FOLLOW_UP),
    ("not attempted is no miss", june(15), "UUUU", FinalStatus.UNDER_FOLLOW_UP),
    ("missed around a gap", june(15), "MUMUM", FinalStatus.LOST_TO_FOLLOW_UP),
]


def test_each_final_status_arises_from_its_follow_up(sessions):
    with sessions.begin() as session:
        campaign = new_campaign(session, 7, at(1, 7))
        for name, exposure, days, _ in FINALS:
            follow(session, campaign, name, exposure, days)
        resident(session, campaign, "followed up before the campaign began", date(2021, 5, 1))
        session.flush()
        finals = {row.name: row.final_status for row in follow_up_rows(session, campaign, june(20))}
    assert finals == {name: status for name, _, _, status in FINALS}, "no follow-up day before the campaign began"


# Exposed, the days held, the date of the first positive sample: the days shown and the final status (today 20 June).
BECAME_CASES = [
    ("positive on day 3, after three misses", june(1), "MMMMMMM", june(4), [1, 2, 3], FinalStatus.BECAME_CASE),
    ("positive on day 2, still followed", june(15), "SSSS", june(17), [1, 2], FinalStatus.BECAME_CASE),
    ("positive on the last day", june(1), "SSSSSSS", june(8), list(range(1, 8)), FinalStatus.BECAME_CASE),
    ("positive after the follow-up", june(1), "SSSSSSS", june(12), list(range(1, 8)), FinalStatus.FOLLOW_UP_COMPLETED),
]


def test_a_contact_who_became_a_case_leaves_the_follow_up_on_their_sample_day(sessions):
    with sessions.begin() as session:
        campaign = new_campaign(session, 7, at(1, 7))
        for name, exposure, days, positive, _, _ in BECAME_CASES:
            follow(session, campaign, name, exposure, days)
            session.flush()
            person = session.scalar(select(Person).where(Person.full_name == name))
            person.confirmed_case_on = positive
        session.flush()
        rows = list(follow_up_rows(session, campaign, june(20)))
        finals = {row.final_status for row in rows}
        records = {r.person_id: r.final for r in person_records(session, campaign, june(20))}
    for name, _, _, _, shown, final in BECAME_CASES:
        assert [row.follow_up_day for row in rows if row.name == name] == shown, name
        assert {row.final_status for row in rows if row.name == name} == {final}, name
    assert sorted(records.values()) == sorted(final for *_, final in BECAME_CASES)
    assert FinalStatus.BECAME_CASE in finals


@pytest.mark.parametrize(
    ("days", "expected"), [("MS", FinalStatus.FOLLOW_UP_COMPLETED), ("SM", FinalStatus.LOST_TO_FOLLOW_UP)]
)
def test_canceling_ends_the_follow_up(sessions, days, expected):
    with sessions.begin() as session:
        campaign = new_campaign(session, 7, at(1, 7), CampaignStatus.CANCELED)
        follow(session, campaign, "An", june(1), days)
        session.flush()
        rows = list(follow_up_rows(session, campaign, june(4)))
    assert [(row.follow_up_day, row.final_status) for row in rows] == [(1, expected), (2, expected)], (
        "only the days held; none after the cancel"
    )


@dataclass
class ClockedApp:
    """The platform over HTTP, reading progress and exports at the time the test says."""

    url: str
    app: FastAPI

    @property
    def sessions(self):
        return self.app.state.platform.sessions

    def get(self, path: str, token: str, now: datetime) -> httpx.Response:
        self.app.dependency_overrides[clock] = lambda: now
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture
def clocked_api(store_url: str) -> Iterator[ClockedApp]:
    app = create_app(Settings(database_url=store_url, engine_url=f"http://127.0.0.1:{free_port()}"))
    with serving(app) as url:
        yield ClockedApp(url, app)


def user_token(session, name: str, role: Role = Role.TRACER, province: str | None = "27") -> str:
    return auth.add_user(session, name, role, province).token


def a_busy_morning(session, now: datetime) -> tuple[int, str]:
    """Day 1 for everyone, today: 2 completed (one with a cough), 1 in a call with chest pain, 1 dropped and waiting
    to retry, 1 failed, 6 claimed in the last 10 minutes and ringing, 30 waiting; 3 alerts, one acknowledged."""
    campaign = new_campaign(session, 14, now.replace(hour=7))

    def one(status: AttemptStatus, tries: int, last_outcome: str | None = None, **fields) -> Person:
        person = resident(session, campaign, "An", now.date() - timedelta(days=1))
        attempt(session, campaign, person, 1, status, tries, last_outcome, **{"due_at": now.replace(hour=8), **fields})
        return person

    well, coughing = one(*DONE), one(*DONE)
    declaration(session, campaign, well, 1, **WELL)
    cough = declaration(session, campaign, coughing, 1, **COUGH)
    breathless = one(AttemptStatus.IN_PROGRESS, 1, "answered")
    chest_pain = declaration(
        session,
        campaign,
        breathless,
        1,
        status=DeclarationStatus.IN_PROGRESS,
        symptoms=["chest_pain"],
        alert_level=AlertLevel.URGENT,
    )
    one(AttemptStatus.RETRY_WAIT, 1, "dropped", due_at=now + timedelta(minutes=30))
    one(AttemptStatus.FAILED, 3, "no_answer")
    for minutes in range(1, 7):
        one(AttemptStatus.CONTACTING, 1, claimed_at=now - timedelta(minutes=minutes))
    for _ in range(30):
        one(AttemptStatus.SCHEDULED, 0)
    session.add_all(
        [
            Alert(declaration_id=cough.id, person_id=coughing.id, level=AlertLevel.WATCH),
            Alert(declaration_id=chest_pain.id, person_id=breathless.id, level=AlertLevel.URGENT),
            Alert(declaration_id=cough.id, person_id=coughing.id, level=AlertLevel.WATCH, acknowledged_at=now),
        ]
    )
    return campaign.id, user_token(session, "lan")


@pytest.mark.parametrize(
    ("now", "finish", "spills"),
    [
        (at(3, 11), at(3, 13, 51, 40), False),  # 30 minutes before the lunch break, 21'40" after it
        (at(3, 19, 40), at(4, 8, 31, 40), True),
    ],  # 20 minutes left today, the rest on Friday morning
)
def test_progress_through_the_api(clocked_api, now, finish, spills):
    with clocked_api.sessions.begin() as session:
        campaign_id, token = a_busy_morning(session, now)
    body = clocked_api.get(f"/api/v1/campaigns/{campaign_id}", token, now).json()
    progress = body["progress"]
    assert body["attempts"] == {
        "completed": 2,
        "in_progress": 1,
        "retry_wait": 1,
        "failed": 1,
        "contacting": 6,
        "scheduled": 30,
    }
    assert (progress["today"], progress["reach_rate"]) == ("2021-06-03", round(4 / 11, 4))
    assert progress["completion_rate"] == progress["completion_rate_today"] == round(2 / 41, 4)
    assert progress["open_alerts"] == {"watch": 1, "urgent": 1}
    assert progress["outcomes_today"] == {
        "SEEN_OK": 1,
        "SEEN_NOT_OK": 2,
        "MISSED": 1,
        "NOT_ATTEMPTED": 0,
        "NOT_PERFORMED": 37,
    }
    assert progress["final_statuses"] == {
        "BECAME_CASE": 0,
        "UNDER_FOLLOW_UP": 41,
        "FOLLOW_UP_COMPLETED": 0,
        "LOST_TO_FOLLOW_UP": 0,
    }
    expected_eta = progress["eta"]
    assert (expected_eta["remaining"], expected_eta["rate_per_second"]) == (31, 0.01), "6 claimed in 600 s"
    assert datetime.fromisoformat(expected_eta["at"]) == finish
    assert ("finishes on 2021-06-04" in (expected_eta["reason"] or "")) is spills


def test_eta_never_faster_than_the_campaign_allows_and_says_why_there_is_none(sessions):
    now = at(3, 9)
    with sessions.begin() as session:
        campaign_id, _ = a_busy_morning(session, now)
        campaign = session.get(Campaign, campaign_id)
        campaign.rules = {**campaign.rules, "new_calls_per_second": 0.005}
        slow = eta(session, campaign, now)
        assert (slow.rate_per_second, slow.at) == (0.005, at(3, 10, 43, 20)), "31 attempts at 0.005/s, not 0.01/s"
        assert eta(session, campaign, at(3, 10)).reason == "nothing was claimed in the last 10 minutes"
        assert eta(session, campaign, at(3, 12, 30)).reason == "outside calling hours until 2021-06-03 13:30"
        campaign.status = CampaignStatus.PAUSED
        assert eta(session, campaign, now).reason == "the campaign is paused"
        for row in session.scalars(select(OutreachAttempt).where(OutreachAttempt.status.in_(WAITING))):
            row.status = AttemptStatus.FAILED
        session.flush()
        assert eta(session, campaign, now).reason == "nothing is left to do today"


@pytest.fixture
def exported(clocked_api) -> dict:
    """A province-27 campaign, days 1-3 from 3 June, read on 6 June: a resident whose name is a formula, one who
    never answered, one of province 01."""
    with clocked_api.sessions.begin() as session:
        campaign = new_campaign(session, 3, at(3, 7))
        follow(session, campaign, '=HYPERLINK("http://evil.example","bấm")', june(2), "SX")
        follow(session, campaign, "Trần Thị Bình", june(2), "MMM")
        outsider = resident(session, campaign, "Lê Văn Cường", june(2), province_code="01")
        attempt(session, campaign, outsider, 1, *DONE)
        tokens = {
            "tracer": user_token(session, "lan"),
            "other": user_token(session, "hoa", province="01"),
            "admin": user_token(session, "root", Role.ADMIN, None),
        }
        return {"id": campaign.id, "tokens": tokens, "now": at(6, 9)}


def test_csv_export(clocked_api, exported):
    response = clocked_api.get(
        f"/api/v1/campaigns/{exported['id']}/export.csv", exported["tokens"]["tracer"], exported["now"]
    )
    assert response.status_code == 200 and response.content.startswith(b"\xef\xbb\xbf"), "a BOM for Excel"
    assert 'filename="campaign-' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == COLUMNS
    assert [(r["name"], r["follow_up_day"], r["outcome"]) for r in rows] == [
        ('\'=HYPERLINK("http://evil.example","bấm")', "1", "SEEN_OK"),
        ('\'=HYPERLINK("http://evil.example","bấm")', "2", "SEEN_NOT_OK"),
        ('\'=HYPERLINK("http://evil.example","bấm")', "3", "NOT_ATTEMPTED"),
        ("Trần Thị Bình", "1", "MISSED"),
        ("Trần Thị Bình", "2", "MISSED"),
        ("Trần Thị Bình", "3", "MISSED"),
    ], "the province-01 resident is left out for a province-27 tracer"
    coughing = rows[1]
    assert coughing["phone"].startswith("'+849") and coughing["date"] == "2021-06-04"
    assert (coughing["attempt_status"], coughing["channel"], coughing["tries"], coughing["last_outcome"]) == (
        "completed",
        "voice",
        "1",
        "completed",
    )
    assert (coughing["declaration_status"], coughing["symptoms"], coughing["alert_level"]) == (
        "complete",
        "cough",
        "watch",
    )
    assert {r["final_status"] for r in rows} == {"FOLLOW_UP_COMPLETED", "LOST_TO_FOLLOW_UP"}
    assert (rows[0]["province"], rows[0]["ward"]) == ("Bắc Ninh", "Phường Suối Hoa")
    with clocked_api.sessions() as session:
        logged = session.scalars(select(AuditLog).where(AuditLog.action == "campaign.export.csv")).all()
    assert [(a.object_type, a.object_ids) for a in logged] == [("campaign", [exported["id"]])]


def test_xlsx_export(clocked_api, exported):
    response = clocked_api.get(
        f"/api/v1/campaigns/{exported['id']}/export.xlsx", exported["tokens"]["admin"], exported["now"]
    )
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    header, *rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert tuple(header) == COLUMNS
    assert len(rows) == 9, "a national admin sees the province-01 resident too"
    first = dict(zip(COLUMNS, rows[0], strict=True))
    assert first["name"] == '\'=HYPERLINK("http://evil.example","bấm")' and first["phone"].startswith("'+849")
    assert (first["date"].date(), first["tries"], first["outcome"]) == (june(3), 1, "SEEN_OK")
    assert all(not isinstance(c.value, str) or not c.value.startswith("=") for row in sheet.iter_rows() for c in row)
    with clocked_api.sessions() as session:
        assert session.scalar(select(AuditLog.action).where(AuditLog.action.like("campaign.export%"))) == (
            "campaign.export.xlsx"
        )


@pytest.mark.parametrize("path", ["", "/export.csv", "/export.xlsx"])
def test_another_province_sees_no_campaign(clocked_api, exported, path):
    response = clocked_api.get(
        f"/api/v1/campaigns/{exported['id']}{path}", exported["tokens"]["other"], exported["now"]
    )
    assert response.status_code == 404
    with clocked_api.sessions() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action.like("campaign.export%"))) is None


def test_a_full_sheet_goes_on_in_the_next(tmp_path):
    rows = [("+84912345678", f"person {n}") + (None,) * (len(COLUMNS) - 2) for n in range(5)]
    write_xlsx(iter(rows), tmp_path / "out.xlsx", rows_per_sheet=3)
    sheets = load_workbook(tmp_path / "out.xlsx").worksheets
    assert [[row[1] for row in sheet.iter_rows(values_only=True)] for sheet in sheets] == [
        ["name", "person 0", "person 1"],
        ["name", "person 2", "person 3"],
        ["name", "person 4"],
    ]


def test_export_cli(sessions, store_url, tmp_path):
    today = datetime.now(HANOI).date()
    with sessions.begin() as session:
        campaign = new_campaign(session, 2, datetime.now(UTC) - timedelta(days=1))
        follow(session, campaign, "@Nguyễn Văn An", today - timedelta(days=2), "SM")
        campaign_id = campaign.id
    for file_format in ("csv", "xlsx"):
        target = tmp_path / f"out.{file_format}"
        result = outreach(
            "campaign", "export", str(campaign_id), "--format", file_format, "-o", str(target), database_url=store_url
        )
        assert result.returncode == 0, result.stderr
    with (tmp_path / "out.csv").open(encoding="utf-8-sig") as source:
        rows = list(csv.DictReader(source))
    assert [(r["name"], r["outcome"]) for r in rows] == [("'@Nguyễn Văn An", "SEEN_OK"), ("'@Nguyễn Văn An", "MISSED")]
    assert load_workbook(tmp_path / "out.xlsx").worksheets[0].max_row == 3
    with sessions() as session:
        logged = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(a.action, a.user_id, a.detail["via"]) for a in logged] == [
        ("campaign.export.csv", None, "cli"),
        ("campaign.export.xlsx", None, "cli"),
    ]
    unknown = outreach("campaign", "export", "999", "-o", str(tmp_path / "x.csv"), database_url=store_url)
    assert unknown.returncode == 1 and "no campaign 999" in unknown.stderr


def test_capacity_plan_counts_each_day_and_the_lines_that_finish_today_by_an_hour(sessions):
    """Thursday 3 June at 09:00, follow-up days 1-3: 100 people exposed on 1 June, 50 on 2 June, 10 with no date
    (counted from today). Two lines of two-minute calls start one call a minute: slower than the rate allows."""
    now = at(3, 9)
    with sessions.begin() as session:
        campaign = new_campaign(session, 3, None, CampaignStatus.DRAFT)
        for exposure, people in ((june(1), 100), (june(2), 50), (None, 10)):
            for _ in range(people):
                resident(session, campaign, "An", exposure)
        session.flush()
        rules = CampaignRules(follow_up_days=3, new_calls_per_second=0.1, max_concurrent_calls=2, holidays=[june(5)])
        plan = capacity_plan(session, [campaign.contact_lists[0].id], rules, now, finish_by=time(11))
    assert [(d.day, d.contacts, d.holiday) for d in plan.days] == [
        (june(3), 150, False),
        (june(4), 160, False),
        (june(5), 60, True),
        (june(6), 10, False),
    ]
    assert (plan.pace_per_second, plan.pace_limited_by) == (round(2 / 120, 4), "lines")
    assert plan.days[0].done_at == at(3, 11, 30), "150 calls a minute apart from 09:00: the morning window's end"
    assert plan.days[2].done_at.date() == june(6), "a holiday's contacts wait for the next working day"
    assert (plan.lines_needed, plan.rate_needed) == (3, round(150 / 7200, 4)), "by 11:00: two hours for 150 calls"
    assert plan.busiest.day == june(4)


def test_capacity_plan_through_the_api_only_for_lists_in_scope(clocked_api):
    now = at(3, 9)
    with clocked_api.sessions.begin() as session:
        campaign = new_campaign(session, 14, None, CampaignStatus.DRAFT)
        for _ in range(3):
            resident(session, campaign, "An", june(1))
        theirs = ContactList(name="F1 Hà Nội", province_code="01")
        session.add(theirs)
        session.flush()
        ids = (campaign.contact_lists[0].id, theirs.id)
        token = user_token(session, "lan", Role.MANAGER)
    clocked_api.app.dependency_overrides[clock] = lambda: now
    ask = {"contact_list_ids": [ids[0]], "finish_by": "10:00"}
    answer = httpx.post(
        f"{clocked_api.url}/api/v1/campaigns/capacity-plan", json=ask, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["contacts_today"], answer.json()["lines_needed"]) == (3, 1)
    refused = httpx.post(
        f"{clocked_api.url}/api/v1/campaigns/capacity-plan",
        json={**ask, "contact_list_ids": [ids[1]]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 422 and str(ids[1]) in refused.text, "another province's list is not planned"


def test_two_workers_keeping_the_same_days_keep_them_once(sessions, store_url):
    """Two planning jobs settle a campaign at once: on PostgreSQL the second waits for the first's rows and then keeps
    nothing. (SQLite's driver makes a savepoint opened outside a transaction a transaction of its own: the first's
    days are committed as soon as they are kept, so the second finds them.)"""
    with sessions.begin() as session:
        campaign = new_campaign(session, 3, at(3, 7))
        for name, shift, attempted, declared, _ in SITUATIONS:
            person = resident(session, campaign, name, june(5) + timedelta(days=shift - 2))
            if attempted:
                attempt(session, campaign, person, 2, *attempted)
            for fields in declared:
                declaration(session, campaign, person, 2, **fields)
        campaign_id = campaign.id
    first, second = sessions(), sessions()
    assert settle(first, first.get(Campaign, campaign_id), june(5))
    outcome: list[bool] = []
    waiting = threading.Thread(target=lambda: outcome.append(_settle_and_commit(second, campaign_id)))
    waiting.start()
    if store_url.startswith("postgresql"):
        waiting.join(1)
        assert waiting.is_alive(), "the second waits for the first's rows"
    first.commit()
    waiting.join(30)
    first.close()
    assert outcome == [False], "the second keeps nothing"
    with sessions() as session:
        kept = counted_days(session, session.get(Campaign, campaign_id), june(5))
        assert _tally(kept) == _tally(day_counts(session, session.get(Campaign, campaign_id), june(5)))


def _settle_and_commit(session, campaign_id: int) -> bool:
    with session:
        kept = settle(session, session.get(Campaign, campaign_id), june(5))
        session.commit()
        return kept


@pytest.mark.parametrize(
    ("rules", "why"),
    [
        ({"holidays": [str(june(1) + timedelta(days=n)) for n in range(367)]}, "a year of holidays leaves no window"),
        ({"new_calls_per_second": 1e-9}, "a plan of centuries: seconds of CPU per view"),
        ({"messages_per_second": 1e-300}, "the same for messages"),
        (
            {"channels": ["zns"], "zns_template_id": "1", "zns_template_data": {"a": "{name:>999999999}"}},
            "a billion-wide field builds a gigabyte per message",
        ),
        ({"channels": ["zns"], "zns_template_id": "1", "zns_template_data": {"a": "{name!r}"}}, "a conversion"),
        ({"channels": ["zns"], "zns_template_id": "1", "zns_template_data": {"a": "{name.__class__}"}}, "attributes"),
    ],
)
def test_rules_that_would_stall_or_break_the_planner_are_refused(rules, why):
    with pytest.raises(ValidationError):
        CampaignRules.model_validate(rules)


def test_a_year_of_holidays_still_leaves_a_calling_window():
    holidays = [june(3) + timedelta(days=n) for n in range(366)]
    rules = CampaignRules(holidays=[*holidays[1:], holidays[0]], new_calls_per_second=0.001)
    assert rules.holidays == holidays, "in order"
    assert CampaignRules(holidays=[june(3), june(3)]).holidays == [june(3)], "each once"
    assert rules.next_allowed(at(3, 9)) == at(3, 8).replace(year=2022, day=4, month=6), "the day after the last"
    assert rules.done_at(at(3, 9), timedelta(hours=1)).year == 2022
