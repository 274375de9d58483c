"""The dispatcher in test time: a campaign over a small F1 list runs through a fake telephone channel with an injected
clock (calling hours, pacing, retries, fallback, daily follow-ups, pause and cancel, live conversations, claims left
by a dead worker); then real `outreach worker` processes on PostgreSQL, one killed mid-run, against a local Twilio."""

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import Contact, Placed, Unreachable
from campaigns.dispatch import Dispatcher
from campaigns.importer import import_contacts
from campaigns.lifecycle import new_campaign, plan_running_campaigns, transition
from campaigns.rules import CampaignRules
from ground.settings import PROJECT_ROOT
from ground.store import make_engine, make_session_factory
from models import AttemptStatus, Campaign, Channel, ContactList, ContactListMember, Conversation, OutreachAttempt
from models.migrate import upgrade
from tests import factories
from tests.fakes.twilio import FakeTwilio
from tests.support.waiting import wait_until
from tests.test_import import MESSY

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
EXPOSED = date(2021, 6, 1)


def hanoi(day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    return datetime(2021, 6, day, hour, minute, tzinfo=HANOI) + timedelta(seconds=second)


class Clock:
    """Test time: `sleep` lets the tasks already started run, then moves the clock on."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self.now += timedelta(seconds=seconds)


class Telephone:
    """A fake telephone channel: records each call with the test time it was placed at."""

    def __init__(self, clock: Clock, name: str = "voice", unreachable: set[str] = frozenset()) -> None:
        self.clock, self.name, self.unreachable = clock, name, unreachable
        self.calls: list[tuple[datetime, Contact]] = []

    async def reach(self, contact: Contact) -> Placed:
        if contact.phone in self.unreachable:
            raise Unreachable("no such subscriber")
        self.calls.append((self.clock(), contact))
        return Placed(f"{self.name}-{len(self.calls)}")

    def phones(self) -> list[str]:
        return [contact.phone for _, contact in self.calls]


def start_campaign(sessions, phones: list[str], now: datetime, exposed: date = EXPOSED, **rules) -> int:
    with sessions.begin() as session:
        people = [factories.person(session, phone) for phone in phones]
        contacts = ContactList(name="F1 của BN1234", province_code="27")
        session.add(contacts)
        session.flush()
        session.add_all(
            ContactListMember(contact_list_id=contacts.id, person_id=p.id, exposure_date=exposed) for p in people
        )
        campaign = new_campaign("Bắc Ninh", [contacts], CampaignRules.model_validate(rules))
        session.add(campaign)
        session.flush()
        transition(session, campaign, "start", now)
        return campaign.id


def report(sessions, provider_ref: str, outcome: Outcome, now: datetime) -> None:
    """What the channel's webhook would do when the call ends."""
    with sessions.begin() as session:
        attempt = session.scalar(select(OutreachAttempt).where(OutreachAttempt.provider_ref == provider_ref))
        attempts.record(attempt, CampaignRules.model_validate(attempt.campaign.rules), outcome, now)


def statuses(sessions) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(select(OutreachAttempt).order_by(OutreachAttempt.id)).all()
        return {f"{a.person.phone}/{a.follow_up_day}": a.status.value for a in rows}


def run(dispatcher: Dispatcher, clock: Clock, until: datetime, step: timedelta = timedelta(seconds=1)) -> None:
    """Ticks every `step` of test time (or as soon as the previous tick's sends are done) until `until`."""
    while clock.now < until:
        started = clock.now
        asyncio.run(dispatcher.tick())
        clock.now = max(clock.now, started + step)


PHONES = ["+84912000001", "+84912000002", "+84912000003", "+84912000004"]


def test_a_campaign_runs_in_test_time_with_hours_pacing_retries_and_daily_follow_ups(sessions):
    clock = Clock(hanoi(2, 7, 0))
    phone = Telephone(clock)
    start_campaign(
        sessions,
        PHONES,
        clock.now,
        channels=["voice"],
        follow_up_days=2,
        max_attempts_per_day=2,
        retry_spacing_minutes=60,
        new_calls_per_second=2,
    )
    dispatcher = Dispatcher(sessions, {"voice": phone}, "worker-1", clock=clock, sleep=clock.sleep)

    run(dispatcher, clock, hanoi(2, 7, 59), step=timedelta(minutes=7))
    assert phone.calls == [], "nobody is called before 08:00"
    clock.now = hanoi(2, 8, 0)
    run(dispatcher, clock, hanoi(2, 8, 0, 5))
    times = [when for when, _ in phone.calls]
    assert phone.phones() == PHONES
    assert [(t - times[0]).total_seconds() for t in times] == [0, 0.5, 1.0, 1.5], "2 new calls per second"

    # The first answers and declares, the second is busy, the third does not answer, the fourth hangs up midway.
    for ref, outcome in zip(
        ["voice-1", "voice-2", "voice-3", "voice-4"],
        [Outcome.COMPLETED, Outcome.BUSY, Outcome.NO_ANSWER, Outcome.DROPPED],
        strict=True,
    ):
        report(sessions, ref, outcome, hanoi(2, 8, 1))
    run(dispatcher, clock, hanoi(2, 8, 59), step=timedelta(minutes=4))
    assert len(phone.calls) == 4, "nobody is called again before the retry spacing"
    clock.now = hanoi(2, 9, 1)
    run(dispatcher, clock, hanoi(2, 9, 1, 5))
    assert phone.phones()[4:] == PHONES[1:], "the three unreached are retried after an hour"
    for ref in ("voice-5", "voice-6", "voice-7"):
        report(sessions, ref, Outcome.NO_ANSWER, hanoi(2, 9, 2))
    clock.now = hanoi(2, 10, 30)
    run(dispatcher, clock, hanoi(2, 10, 30, 5))
    assert len(phone.calls) == 7, "two tries a day at most"
    assert list(statuses(sessions).values()) == ["completed", "failed", "failed", "failed"]

    # The next day: the daily job plans day 2 for everyone, and everyone is called once more.
    clock.now = hanoi(3, 6, 0)
    with sessions.begin() as session:
        assert plan_running_campaigns(session, clock.now) == 4
        assert plan_running_campaigns(session, clock.now) == 0, "planning twice plans nothing more"
    clock.now = hanoi(3, 8, 0)
    run(dispatcher, clock, hanoi(3, 8, 0, 5))
    assert Counter(phone.phones()[7:]) == Counter(PHONES) and all(c.follow_up_day == 2 for _, c in phone.calls[7:])
    # Day 3 is past the follow-up: nothing more is planned.
    with sessions.begin() as session:
        assert plan_running_campaigns(session, hanoi(4, 6, 0)) == 0


def test_a_messy_imported_list_is_followed_from_each_persons_own_exposure_date(sessions, tmp_path):
    path = tmp_path / "f1.csv"
    path.write_bytes(MESSY.encode("utf-8-sig"))
    summary = import_contacts(sessions, path, "F1 của BN1234", province="27")
    assert (summary.imported, summary.duplicates, summary.rejected) == (3, 1, 5)
    clock = Clock(hanoi(3, 7, 0))
    phone = Telephone(clock)
    with sessions.begin() as session:
        campaign = new_campaign(
            "BN1234", [session.get(ContactList, summary.list_id)], CampaignRules(channels=["voice"], follow_up_days=2)
        )
        session.add(campaign)
        session.flush()
        transition(session, campaign, "start", clock.now)
    dispatcher = Dispatcher(sessions, {"voice": phone}, "worker-1", clock=clock, sleep=clock.sleep)
    called: dict[int, list[tuple[str, int]]] = {}
    for day in (3, 4, 5, 6):
        clock.now = hanoi(day, 6, 0)
        with sessions.begin() as session:
            plan_running_campaigns(session, clock.now)
        before = len(phone.calls)
        clock.now = hanoi(day, 8, 0)
        run(dispatcher, clock, hanoi(day, 8, 0, 5))
        called[day] = sorted((c.name, c.follow_up_day) for _, c in phone.calls[before:])
    an, binh, cuong = "Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"  # An's newest row says exposed on 3/6
    assert called == {3: [(cuong, 1), (binh, 1)], 4: [(cuong, 2), (an, 1), (binh, 2)], 5: [(an, 2)], 6: []}


def test_calls_stay_under_the_concurrency_limit(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Telephone(clock)
    start_campaign(sessions, PHONES, clock.now, channels=["voice"], new_calls_per_second=10, max_concurrent_calls=2)
    dispatcher = Dispatcher(sessions, {"voice": phone}, "worker-1", clock=clock, sleep=clock.sleep)
    run(dispatcher, clock, hanoi(2, 9, 0, 3))
    assert len(phone.calls) == 2
    report(sessions, "voice-1", Outcome.COMPLETED, clock.now)
    run(dispatcher, clock, clock.now + timedelta(seconds=3))
    assert len(phone.calls) == 3, "one call ended: one more starts"


def test_an_unreachable_channel_hands_over_to_the_next_at_once(sessions):
    clock = Clock(hanoi(2, 9, 0))
    voice, sms = Telephone(clock, unreachable={PHONES[0]}), Telephone(clock, name="sms")
    start_campaign(sessions, PHONES[:2], clock.now, channels=["voice", "sms"])
    dispatcher = Dispatcher(sessions, {"voice": voice, "sms": sms}, "worker-1", clock=clock, sleep=clock.sleep)
    run(dispatcher, clock, hanoi(2, 9, 0, 3))
    assert (voice.phones(), sms.phones()) == ([PHONES[1]], [PHONES[0]])
    with sessions() as session:
        fallen = session.scalar(select(OutreachAttempt).where(OutreachAttempt.channel == "sms"))
        assert fallen.status == AttemptStatus.CONTACTING and "no such subscriber" in fallen.last_error


def test_no_channel_left_fails_the_day_with_the_reason(sessions):
    clock = Clock(hanoi(2, 9, 0))
    start_campaign(sessions, PHONES[:1], clock.now, channels=["voice", "sms"])
    dispatcher = Dispatcher(
        sessions, {"voice": Telephone(clock, unreachable={PHONES[0]})}, "w", clock=clock, sleep=clock.sleep
    )
    run(dispatcher, clock, hanoi(2, 9, 0, 2))
    with sessions() as session:
        attempt = session.scalar(select(OutreachAttempt))
        assert attempt.status == AttemptStatus.FAILED and "not set up" in attempt.last_error


def test_pause_stops_new_calls_at_once_resume_continues_cancel_never_calls(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Telephone(clock)
    campaign_id = start_campaign(sessions, PHONES, clock.now, channels=["voice"], new_calls_per_second=1)
    dispatcher = Dispatcher(sessions, {"voice": phone}, "worker-1", clock=clock, sleep=clock.sleep)
    run(dispatcher, clock, hanoi(2, 9, 0, 1))
    assert len(phone.calls) == 1

    def change(action: str) -> None:
        with sessions.begin() as session:
            transition(session, session.get(Campaign, campaign_id), action, clock.now)

    change("pause")
    run(dispatcher, clock, clock.now + timedelta(seconds=5))
    assert len(phone.calls) == 1
    change("resume")
    run(dispatcher, clock, clock.now + timedelta(seconds=1))
    assert len(phone.calls) == 2, "resumed where it stopped"
    change("cancel")
    run(dispatcher, clock, clock.now + timedelta(seconds=5))
    assert len(phone.calls) == 2
    assert Counter(statuses(sessions).values()) == {"contacting": 2, "canceled": 2}


def test_a_paused_claim_is_given_back_unsent(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Telephone(clock)
    campaign_id = start_campaign(sessions, PHONES[:2], clock.now, channels=["voice"], new_calls_per_second=1)

    async def pause_while_waiting(seconds: float) -> None:
        await clock.sleep(seconds)  # the first claim's call starts; then the campaign is paused
        with sessions.begin() as session:
            transition(session, session.get(Campaign, campaign_id), "pause", clock.now)

    dispatcher = Dispatcher(
        sessions, {"voice": phone}, "w", clock=clock, sleep=pause_while_waiting, interval=timedelta(seconds=2)
    )
    asyncio.run(dispatcher.tick())
    assert len(phone.calls) == 1, "the second claim's slot came after the pause"
    assert sorted(statuses(sessions).values()) == ["contacting", "scheduled"]


def test_someone_in_a_live_conversation_is_not_called(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Telephone(clock)
    start_campaign(sessions, PHONES[:1], clock.now, channels=["voice"])
    with sessions.begin() as session:
        conversation = factories.conversation(
            session, session.scalar(select(OutreachAttempt)).person, channel=Channel.WEBCHAT
        )
        conversation.last_activity_at = clock.now - timedelta(minutes=2)
        conversation_id = conversation.id
    dispatcher = Dispatcher(sessions, {"voice": phone}, "w", clock=clock, sleep=clock.sleep)
    run(dispatcher, clock, hanoi(2, 9, 0, 3))
    assert phone.calls == [], "they are chatting on the web right now"
    with sessions.begin() as session:
        session.get(Conversation, conversation_id).ended_at = clock.now
    run(dispatcher, clock, clock.now + timedelta(seconds=2))
    assert phone.phones() == PHONES[:1]


class Recorder(Telephone):
    """A telephone that can say what it sent since a moment (as Twilio's call list does)."""

    async def reached_since(self, contact: Contact, since: datetime) -> Placed | None:
        sent = [i for i, (when, c) in enumerate(self.calls, 1) if c.phone == contact.phone and when >= since]
        return Placed(f"{self.name}-{sent[-1]}") if sent else None


def test_claims_left_by_a_dead_worker_are_recovered_without_calling_twice(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Recorder(clock)
    start_campaign(sessions, PHONES[:3], clock.now, channels=["voice"])
    with sessions.begin() as session:  # a worker claimed all three, called the first, and died
        for attempt in session.scalars(select(OutreachAttempt)).all():
            attempt.status, attempt.claimed_by, attempt.claimed_at = AttemptStatus.CLAIMED, "dead", clock.now
    asyncio.run(phone.reach(contact_for(sessions, PHONES[0])))
    clock.now += timedelta(minutes=3)
    dispatcher = Dispatcher(sessions, {"voice": phone}, "alive", clock=clock, sleep=clock.sleep)
    run(dispatcher, clock, clock.now + timedelta(seconds=3))
    assert Counter(phone.phones()) == Counter(PHONES[:3]), "each called exactly once"
    with sessions() as session:
        first = session.scalar(select(OutreachAttempt).order_by(OutreachAttempt.id))
        assert (first.status, first.provider_ref) == ("contacting", "voice-1")


def test_a_dead_workers_claim_on_a_channel_that_cannot_tell_is_not_sent_again(sessions):
    clock = Clock(hanoi(2, 9, 0))
    phone = Telephone(clock)
    start_campaign(sessions, PHONES[:1], clock.now, channels=["voice"])
    with sessions.begin() as session:
        attempt = session.scalar(select(OutreachAttempt))
        attempt.status, attempt.claimed_by, attempt.claimed_at = AttemptStatus.CLAIMED, "dead", clock.now
    clock.now += timedelta(minutes=3)
    run(
        Dispatcher(sessions, {"voice": phone}, "alive", clock=clock, sleep=clock.sleep),
        clock,
        clock.now + timedelta(seconds=2),
    )
    assert phone.calls == []
    with sessions() as session:
        assert session.scalar(select(OutreachAttempt)).last_outcome == "interrupted"


def contact_for(sessions, phone: str) -> Contact:
    with sessions() as session:
        attempt = session.scalars(select(OutreachAttempt)).all()
        row = next(a for a in attempt if a.person.phone == phone)
        return Contact(
            row.id,
            row.campaign_id,
            row.person_id,
            phone,
            None,
            row.follow_up_day,
            CampaignRules.model_validate(row.campaign.rules),
        )


# ---- Real workers on PostgreSQL ----------------------------------------------------------------------------------


def worker(store_url: str, twilio: FakeTwilio, heartbeat: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "OUTREACH_DATABASE_URL": store_url,
        "OUTREACH_ENGINE_URL": "http://127.0.0.1:9",
        "OUTREACH_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "OUTREACH_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "OUTREACH_TWILIO_FROM_NUMBER": "+15005550006",
        "OUTREACH_TWILIO_API_BASE_URL": twilio.url,
        "OUTREACH_DISPATCH_CLAIM_TIMEOUT_S": "3",
        "OUTREACH_HEARTBEAT_FILE": str(heartbeat),
        "OUTREACH_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [str(PROJECT_ROOT / ".venv" / "bin" / "outreach"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
def test_two_workers_and_a_kill_contact_everyone_exactly_once(postgres, tmp_path):
    store_url = postgres.create_database("dispatch_kill")
    db = make_engine(store_url)
    upgrade(db)
    sessions = make_session_factory(db)
    phones = [f"+8491300{i:04d}" for i in range(60)]
    zone = factories.zone_at_midday()
    yesterday = datetime.now(ZoneInfo(zone)).date() - timedelta(days=1)
    start_campaign(
        sessions,
        phones,
        datetime.now(UTC),
        yesterday,
        channels=["voice"],
        new_calls_per_second=8,
        max_concurrent_calls=100,
        timezone=zone,
        calling_hours=[{"start": "00:00", "end": "23:59:59"}],
    )
    twilio = FakeTwilio()
    with twilio.running() as twilio.url:
        workers = [worker(store_url, twilio, tmp_path / "beat"), worker(store_url, twilio, tmp_path / "beat")]
        try:
            wait_until(lambda: len(twilio.calls_made) >= 10, "the workers to start calling", timeout=60)
            workers[0].send_signal(signal.SIGKILL)  # mid-run: it holds claims whose slots have not come yet
            workers[0].wait()
            workers.append(worker(store_url, twilio, tmp_path / "beat"))  # the restarted worker
            wait_until(lambda: len(twilio.calls_made) >= len(phones), "everyone to be called", timeout=60)
            time.sleep(4)  # past the claim timeout: any double call would have happened by now
        finally:
            for process in workers:
                process.terminate()
            errors = [process.communicate(timeout=20)[1] for process in workers[1:]]
    called = Counter(call["to"] for call in twilio.calls_made)
    assert sorted(called) == sorted(phones), errors
    assert max(called.values()) == 1, "someone was called twice"
    assert set(statuses(sessions).values()) == {"contacting"}
    db.dispose()
