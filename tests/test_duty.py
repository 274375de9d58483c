"""Urgent alerts reach the on-duty roster by Zalo or SMS (local fakes of both, on their wire protocols), on SQLite and
PostgreSQL: the first person at once, the next one when nobody acknowledges, never twice for one round, never
another province's people."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from access import auth
from app.platform import build_platform, duty_notifiers
from conversations import alert_queue, duty
from conversations.alerts import assess, raise_alert
from ground.settings import Settings
from models import AlertNotification, NotificationStatus, Role, utcnow
from tests import factories
from tests.fakes.twilio import FakeTwilio
from tests.fakes.zalo import FakeZalo, zalo_id

ESCALATE = timedelta(minutes=10)


@pytest.fixture
def providers():
    twilio, zalo = FakeTwilio(), FakeZalo()
    with twilio.running(), zalo.running():
        yield twilio, zalo


@pytest.fixture
def platform(store_url, providers):
    twilio, zalo = providers
    settings = Settings(
        database_url=store_url, public_base_url="https://cdc.bacninh.example", **twilio.settings(), **zalo.settings()
    )
    platform = build_platform(settings)
    platform.loop = asyncio.new_event_loop()  # the Zalo client's connections live on one loop, as in a worker
    yield platform
    platform.loop.run_until_complete(platform.aclose_clients())
    platform.loop.close()
    platform.db_engine.dispose()


def _roster(platform, *members: tuple[str, str, str | None, str, bool]) -> dict[str, int]:
    """(name, phone, zalo user id, province, on duty) in roster order; returns their ids by name."""
    with platform.sessions.begin() as session:
        operator = auth.operator()
        ids = {}
        for position, (name, phone, zalo_user, province, on_duty) in enumerate(members, start=1):
            member = duty.add_member(
                session,
                operator,
                name=name,
                phone=phone,
                province_code=province,
                zalo_user_id=zalo_user,
                position=position,
            )
            member.on_duty = on_duty
            ids[name] = member.id
        return ids


def _urgent_alert(platform, phone: str = "+84912345678", province: str = "27") -> int:
    with platform.sessions.begin() as session:
        resident = factories.person(session, phone, province_code=province)
        declaration = factories.complete_declaration(session, resident, symptoms=["shortness_of_breath"])
        alert = raise_alert(session, declaration, assess(declaration, False, platform.settings))
        session.flush()
        return alert.id


def _tick(platform, now=None) -> int:
    told = duty.notify_due(platform.sessions, duty_notifiers(platform), platform.settings.public_url, ESCALATE, now)
    return platform.loop.run_until_complete(told)


def _notifications(platform, alert_id: int) -> list[tuple[str, str, NotificationStatus]]:
    with platform.sessions() as session:
        rows = session.scalars(
            select(AlertNotification).where(AlertNotification.alert_id == alert_id).order_by(AlertNotification.id)
        )
        return [(n.member_name, n.channel, n.status) for n in rows]


def test_the_first_on_duty_tracer_gets_an_sms_at_once_and_the_next_one_when_nobody_acknowledges(platform, providers):
    twilio, _ = providers
    _roster(
        platform,
        ("Chị Hoa (nghỉ)", "0911 000 001", None, "27", False),
        ("Anh Minh", "0911 000 002", None, "27", True),
        ("Chị Lan", "0911 000 003", None, "27", True),
        ("Anh Hà Nội", "0911 000 009", None, "01", True),
    )
    alert_id = _urgent_alert(platform)
    assert _tick(platform) == 1
    [sms] = twilio.messages
    assert sms["To"] == ["+84911000002"]
    body = sms["Body"][0]
    assert "CANH BAO KHAN CAP" in body and "Nguyen Van An" in body and "kho tho" in body
    assert f"https://cdc.bacninh.example/console/alerts/{alert_id}" in body
    assert body.isascii() and len(body) <= 160 * 2

    assert _tick(platform) == 0, "told once per round"
    assert _tick(platform, utcnow() + ESCALATE + timedelta(seconds=1)) == 1
    assert [m["To"] for m in twilio.messages] == [["+84911000002"], ["+84911000003"]]
    assert _tick(platform, utcnow() + 2 * ESCALATE + timedelta(seconds=2)) == 1  # back to the top of the roster
    assert twilio.messages[-1]["To"] == ["+84911000002"]
    assert [name for name, _, _ in _notifications(platform, alert_id)] == ["Anh Minh", "Chị Lan", "Anh Minh"]

    with platform.sessions.begin() as session:
        alert_queue.acknowledge(session, auth.operator(), alert_id, utcnow())
    assert _tick(platform, utcnow() + 5 * ESCALATE) == 0


def test_zalo_comes_first_and_a_refusal_falls_back_to_sms_on_record(platform, providers):
    twilio, zalo = providers
    minh = zalo_id()
    _roster(platform, ("Anh Minh", "0911000002", minh, "27", True))
    first = _urgent_alert(platform)
    assert _tick(platform) == 1
    assert len(zalo.messages_to(minh)) == 1 and twilio.messages == []
    zalo.fail_next(-230, "User has not interacted with the OA in the last 7 days")
    second = _urgent_alert(platform, phone="+84912000111")
    assert _tick(platform) == 1
    assert [m["To"] for m in twilio.messages] == [["+84911000002"]]
    assert _notifications(platform, first) == [("Anh Minh", "zalo", NotificationStatus.SENT)]
    assert _notifications(platform, second) == [
        ("Anh Minh", "zalo", NotificationStatus.FAILED),
        ("Anh Minh", "sms", NotificationStatus.SENT),
    ]


def test_watch_alerts_and_other_provinces_tell_nobody_here(platform, providers):
    twilio, _ = providers
    _roster(platform, ("Anh Minh", "0911000002", None, "27", True))
    with platform.sessions.begin() as session:
        resident = factories.person(session, "+84912345678")
        declaration = factories.complete_declaration(session, resident, symptoms=["cough"], temperature_c=37.0)
        assert raise_alert(session, declaration, assess(declaration, False, platform.settings)).level == "watch"
    hanoi = _urgent_alert(platform, phone="+84987654321", province="01")  # Hà Nội has nobody on duty
    assert _tick(platform) == 0 and twilio.messages == []
    assert _notifications(platform, hanoi) == []


def test_two_workers_at_once_send_one_message(platform, providers):
    twilio, _ = providers
    _roster(platform, ("Anh Minh", "0911000002", None, "27", True))
    _urgent_alert(platform)

    notifiers, url = duty_notifiers(platform), platform.settings.public_url

    async def two_workers() -> list[int]:
        return await asyncio.gather(*(duty.notify_due(platform.sessions, notifiers, url, ESCALATE) for _ in "ab"))

    assert sorted(platform.loop.run_until_complete(two_workers())) == [0, 1]
    assert len(twilio.messages) == 1


def test_the_roster_is_managed_within_the_province(platform):
    with platform.sessions.begin() as session:
        tracer = auth.add_user(session, "tracer-bn", Role.TRACER, "27").user
        viewer = auth.add_user(session, "viewer-bn", Role.VIEWER, "27").user
        member = duty.add_member(session, tracer, name="Anh Minh", phone="0911 000 002", province_code="27")
        assert member.phone == "+84911000002"
        with pytest.raises(duty.Forbidden):
            duty.add_member(session, tracer, name="Anh Hà Nội", phone="0911000009", province_code="01")
        with pytest.raises(duty.Forbidden):
            duty.add_member(session, viewer, name="Chị Lan", phone="0911000003", province_code="27")
        with pytest.raises(duty.InvalidValue):
            duty.add_member(session, tracer, name="Chị Lan", phone="12345", province_code="27")
        with pytest.raises(duty.InvalidValue):
            duty.add_member(session, tracer, name="", phone="0911000003", province_code="27")
        assert duty.set_on_duty(session, tracer, member.id, False).on_duty is False
        hanoi = duty.add_member(session, auth.operator(), name="Anh HN", phone="0911000009", province_code="01")
        assert [m.name for m in duty.roster(session, tracer)] == ["Anh Minh"]
        with pytest.raises(duty.NotFound):
            duty.remove_member(session, tracer, hanoi.id)
        duty.remove_member(session, tracer, member.id)
        assert duty.roster(session, tracer) == []


def test_a_worker_killed_between_its_claim_and_its_message_leaves_the_round_to_another_a_minute_later(
    platform, providers
):
    twilio, _ = providers
    _roster(platform, ("Anh Minh", "0911000002", None, "27", True))
    alert_id = _urgent_alert(platform)
    claimed = duty._claim_rounds(platform.sessions, utcnow(), ESCALATE, platform.settings.public_url)
    assert [r.alert_id for r in claimed] == [alert_id]  # ... and the worker dies here, nothing sent
    assert _tick(platform) == 0, "the claim holds for its lease"
    assert _tick(platform, utcnow() + duty.CLAIM_LEASE + timedelta(seconds=1)) == 1
    assert [m["To"] for m in twilio.messages] == [["+84911000002"]]
    assert _tick(platform, utcnow() + duty.CLAIM_LEASE + timedelta(minutes=2)) == 0, "told: the next round waits"
