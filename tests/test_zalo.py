"""Residents on Zalo through a local Zalo (tests/fakes/zalo.py) and the real engine: linked by the phone they share,
declaring by text and button taps; signatures, retries, the OA token, the reply window and ZNS by phone."""

import asyncio
import hashlib
import hmac
import json
import time
from datetime import UTC, date, datetime, timedelta
from itertools import takewhile
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from app.platform import build_platform, outbound_channels
from campaigns import attempts
from campaigns.channels import ChannelFailed, Contact, Placed, Unreachable
from campaigns.rules import CampaignRules
from connectors.zalo.client import ZaloClient
from connectors.zalo.events import TextEvent
from conversations.engine import Button
from models import (
    AttemptStatus,
    Channel,
    Conversation,
    Declaration,
    InboundEvent,
    OutreachAttempt,
    Person,
    ProviderToken,
    Speaker,
    Turn,
    ZaloUser,
)
from tests import factories
from tests.conftest import RunningApp, run_public_app
from tests.fakes.zalo import FakeZalo, SentMessage, SentZns, zalo_id
from tests.support.waiting import wait_until

pytestmark = pytest.mark.engine
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PHONE = "+84912345678"
TEMPLATE_ID = "7895417a7d3f9461cd2e"
TEMPLATE = {"customer_name": "{name}", "day": "ngày {day}", "link": "{chat_link}"}
T = TypeVar("T")


@pytest.fixture
def zalo():
    fake = FakeZalo(templates={TEMPLATE_ID: set(TEMPLATE)})
    with fake.running():
        yield fake


@pytest.fixture
def app(store_url, engine_url, zalo):
    for running in run_public_app(store_url, engine_url, **zalo.settings()):
        zalo.webhook_url = f"{running.url}/webhooks/zalo"
        yield running


def today() -> date:
    return datetime.now(HANOI).date()


class ZaloResident:
    """A Zalo user speaking through the fake's signed webhooks; each step waits for the bot's answer to arrive."""

    def __init__(self, app: RunningApp, zalo: FakeZalo) -> None:
        self.app, self.zalo, self.user_id = app, zalo, zalo_id()

    def send(self, event: dict[str, Any]) -> None:
        response = self.zalo.deliver(event)
        assert response.status_code == 200, response.text

    def inbox(self) -> list[SentMessage]:
        return self.zalo.messages_to(self.user_id)

    def share_phone(self, phone: str, name: str, **address: Any) -> list[SentMessage]:
        before = len(self.inbox())
        self.send(self.zalo.submit_info_event(self.user_id, phone, name, **address))
        return self.replies(before)

    def say(self, text: str) -> list[SentMessage]:
        before, event = len(self.inbox()), self.zalo.text_event(self.user_id, text)
        self.send(event)
        return self.replies(before, event["message"]["msg_id"])

    def tap(self, title: str) -> list[SentMessage]:
        """A tap on an oa.query button: Zalo posts its payload as the user's text."""
        offered = {button["title"]: button["payload"] for button in self.inbox()[-1].buttons}
        return self.say(offered[title])

    def replies(self, before: int, msg_id: str | None = None) -> list[SentMessage]:
        """The messages after the first `before` once they are exactly what the bot answered `msg_id` (or opened
        the conversation with), as the transcript records it."""

        def arrived() -> list[SentMessage] | None:
            expected, got = self.bot_lines(msg_id), self.inbox()[before:]
            return got if expected and [m.text for m in got] == expected else None

        return wait_until(arrived, f"the bot's answer to {msg_id or 'the shared phone'}")

    def bot_lines(self, msg_id: str | None) -> list[str] | None:
        with self.app.sessions() as session:
            conversation_id = session.scalar(select(ZaloUser.conversation_id).where(ZaloUser.user_id == self.user_id))
            turns = session.scalars(select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.seq))
            turns = list(turns)
        start = 0
        if msg_id is not None:
            said = [t.seq for t in turns if t.external_id == msg_id and t.processed_at is not None]
            if not said:
                return None
            start = said[0]
        return [t.text for t in takewhile(lambda t: t.speaker == Speaker.BOT, (t for t in turns if t.seq > start))]


def new_attempt(app: RunningApp, phone: str, channel: str, status: AttemptStatus, **rules: Any) -> int:
    with app.sessions.begin() as session:
        attempt = factories.outreach_attempt(session, phone, **rules)
        attempt.status, attempt.channel = status, channel
        session.flush()
        return attempt.id


def zns_attempt(app: RunningApp, status: AttemptStatus = AttemptStatus.CLAIMED) -> int:
    """A ZNS-first campaign's attempt with the approved template."""
    return new_attempt(
        app,
        PHONE,
        "zns",
        status,
        channels=["zns", "voice"],
        zns_template_id=TEMPLATE_ID,
        zns_template_data=TEMPLATE,
    )


def linked_attempt(app: RunningApp, phone: str, last_message_hours_ago: float) -> tuple[int, str]:
    """A zalo-first campaign's attempt for someone who shared this phone on Zalo and wrote that long ago."""
    attempt_id = new_attempt(app, phone, "zalo", AttemptStatus.CLAIMED, channels=["zalo", "voice"])
    user_id = zalo_id()
    with app.sessions.begin() as session:
        last = datetime.now(UTC) - timedelta(hours=last_message_hours_ago)
        person_id = session.get(OutreachAttempt, attempt_id).person_id
        session.add(ZaloUser(user_id=user_id, person_id=person_id, following=True, last_message_at=last))
    return attempt_id, user_id


def current(app: RunningApp, attempt_id: int) -> OutreachAttempt:
    with app.sessions() as session:
        return session.get(OutreachAttempt, attempt_id)


def contact_of(app: RunningApp, attempt_id: int) -> Contact:
    with app.sessions() as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        return Contact(
            attempt.id,
            attempt.campaign_id,
            attempt.person_id,
            attempt.person.phone,
            attempt.person.full_name,
            attempt.follow_up_day,
            CampaignRules.model_validate(attempt.campaign.rules),
        )


def reach(app: RunningApp, channel: Channel, attempt_id: int) -> Placed:
    """What the dispatcher does, on a loop of its own: the channel gets HTTP clients made on that loop."""

    async def on_own_loop() -> Placed:
        platform = build_platform(app.settings)
        try:
            return await outbound_channels(platform)[channel].reach(contact_of(app, attempt_id))
        finally:
            await platform.aclose_clients()
            platform.db_engine.dispose()

    return asyncio.run(on_own_loop())


def test_a_resident_shares_their_phone_then_declares_by_text_and_button_taps(app, zalo):
    attempt_id = zns_attempt(app, AttemptStatus.CONTACTING)
    resident = ZaloResident(app, zalo)
    resident.send(zalo.follow_event(resident.user_id))
    resident.send(zalo.text_event(resident.user_id, "xin chào"))
    [card] = wait_until(resident.inbox, "the card asking for their phone")
    assert card.template_type == "request_user_info"

    address = {"user_address": "12 Lý Thái Tổ", "user_ward": "Phường Kinh Bắc", "user_city": "Bắc Ninh"}
    opening = resident.share_phone("84912345678", "An Zalo", full_address=address)
    assert "Nguyễn Văn An" in opening[-1].text, "the name on the F1 list is kept"
    assert [(b["title"], b["type"]) for b in opening[-1].buttons] == [
        ("Đúng", "oa.query.hide"),
        ("Không phải", "oa.query.hide"),
    ]
    resident.tap("Đúng")
    resident.tap("Đồng ý")
    for text in ("Tôi bị sốt và ho khan", "38,5 độ", "Từ hôm qua"):
        resident.say(text)
    resident.tap("Không")
    resident.tap("Âm tính")
    resident.say("Sáng nay")
    resident.tap("2 mũi")
    resident.tap("Có")
    goodbye = resident.tap("Không cần")
    assert goodbye and not goodbye[-1].buttons

    with app.sessions() as session:
        declaration = session.scalar(select(Declaration))
        conversation = session.get(Conversation, declaration.conversation_id)
        said = session.execute(
            select(Turn.text, Turn.engine_text).where(Turn.speaker == Speaker.RESIDENT).order_by(Turn.seq)
        ).all()
        user = session.get(ZaloUser, resident.user_id)
        person = session.get(Person, user.person_id)
    assert (
        declaration.status,
        declaration.identity_confirmed,
        declaration.symptoms,
        declaration.temperature_c,
        declaration.symptom_onset,
        declaration.contact_with_case,
        declaration.test_result,
        declaration.test_date,
        declaration.vaccine_doses,
        declaration.at_registered_address,
        declaration.needs,
    ) == (
        "complete",
        True,
        ["fever", "cough"],
        38.5,
        today() - timedelta(days=1),
        "no",
        "negative",
        today(),
        2,
        True,
        None,
    )
    assert [tuple(row) for row in said] == [
        ("Đúng", "/affirm"),
        ("Đồng ý", "/affirm"),
        ("Tôi bị sốt và ho khan", None),
        ("38,5 độ", None),
        ("Từ hôm qua", None),
        ("Không", "/deny"),
        ("Âm tính", '/inform{"test_result": "negative"}'),
        ("Sáng nay", None),
        ("2 mũi", '/inform{"doses": "2"}'),
        ("Có", "/affirm"),
        ("Không cần", "/deny"),
    ]
    # The conversation answered the campaign's ZNS: the attempt follows it to the end.
    assert (conversation.channel, conversation.outreach_id, declaration.follow_up_day) == ("zalo", attempt_id, 2)
    assert current(app, attempt_id).status == AttemptStatus.COMPLETED
    # Linked by the phone; the F1 list's details kept, the blanks filled from what they shared.
    assert (user.following, person.phone, person.full_name, person.ward, person.address) == (
        True,
        PHONE,
        "Nguyễn Văn An",
        "Phường Suối Hoa",
        "12 Lý Thái Tổ",
    )


def test_the_webhook_is_answered_before_the_reply_is_sent(app, zalo):
    resident = ZaloResident(app, zalo)
    opening = resident.share_phone(
        "0987654321", "Trần Thị Bình", address="5 Ngõ Huế", ward="Phường Đình Bảng", city="Bắc Ninh"
    )  # the older, flat shape; a phone no list has
    assert "Trần Thị Bình" in opening[-1].text
    zalo.hold_messages()
    before, event = len(resident.inbox()), zalo.text_event(resident.user_id, "Vâng, đúng rồi")
    assert zalo.deliver(event).status_code == 200, "answered within Zalo's 2 s"
    # The engine answers after the acknowledgement: its reply reaches Zalo once the webhook has been answered.
    wait_until(lambda: zalo.waiting, "the reply on its way to Zalo")
    assert len(resident.inbox()) == before
    zalo.release_messages()
    assert resident.replies(before, event["message"]["msg_id"])
    with app.sessions() as session:
        person = session.scalar(select(Person))
    assert (person.phone, person.full_name, person.address, person.ward, person.province) == (
        "+84987654321",
        "Trần Thị Bình",
        "5 Ngõ Huế",
        "Phường Đình Bảng",
        "Bắc Ninh",
    )


def test_a_forged_or_missing_signature_is_refused_and_changes_nothing(app, zalo):
    user_id = zalo_id()
    event = zalo.text_event(user_id, "xin chào")
    body, timestamp = json.dumps(event, ensure_ascii=False).encode(), event["timestamp"]
    signed = (zalo.app_id + body.decode() + timestamp).encode()
    forgeries = {
        "missing": None,
        "another secret": "mac=" + hashlib.sha256(signed + b"not-the-secret").hexdigest(),
        "an HMAC": "mac=" + hmac.new(zalo.oa_secret_key.encode(), signed, hashlib.sha256).hexdigest(),
        "another timestamp": zalo.signature(body, str(int(timestamp) + 1)),
    }
    for forgery, signature in forgeries.items():
        response = zalo.post_webhook(body, signature)
        assert (response.status_code, response.json()["error"]) == (401, "unauthorized"), forgery
    changed = body.replace("xin chào".encode(), "tôi khỏe".encode())
    assert zalo.post_webhook(changed, zalo.signature(body, timestamp)).status_code == 401, "body changed"
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ZaloUser)) == 0
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 0
    assert zalo.messages == []

    assert zalo.post_webhook(body, zalo.signature(body, timestamp)).status_code == 200
    assert wait_until(lambda: zalo.messages_to(user_id), "the answer to the genuine event")
    other = zalo.text_event(zalo_id(), "xin chào")
    other_body = json.dumps(other).encode()
    signed_with_oa_id = zalo.signature(other_body, other["timestamp"], first_term=zalo.oa_id)
    assert zalo.post_webhook(other_body, signed_with_oa_id).status_code == 200, "the OA id signs too"


def stamped(event: dict[str, Any], seconds_from_now: float) -> dict[str, Any]:
    return {**event, "timestamp": str(int((time.time() + seconds_from_now) * 1000))}


def test_the_freshness_window_is_counted_either_way_from_now():
    event = TextEvent.model_validate(
        {
            "event_name": "user_send_text",
            "timestamp": "1638259200000",
            "sender": {"id": zalo_id()},
            "message": {"msg_id": "m1", "text": "xin chào"},
        }
    )
    now = datetime(2021, 11, 30, 8, tzinfo=UTC)  # the event's stamp
    for seconds, fresh in ((0, True), (900, True), (-900, True), (901, False), (-901, False), (30 * 86400, False)):
        assert event.fresh(now + timedelta(seconds=seconds), 900) is fresh, seconds


def test_a_validly_signed_event_outside_the_window_is_acknowledged_and_does_nothing(app, zalo):
    """A replay of a signed event captured long ago (or stamped far ahead) must not link a phone, open a
    conversation or answer anyone. It is still answered 200: Zalo retries anything else, and a retry never gets
    younger."""
    user_id = zalo_id()
    replays = {
        "a message 30 days old": stamped(zalo.text_event(user_id, "xin chào"), -30 * 86400),
        "a shared phone 16 minutes old": stamped(zalo.submit_info_event(user_id, "0912345678", "An"), -16 * 60),
        "a follow an hour ahead": stamped(zalo.follow_event(user_id), 3600),
        "a ZNS receipt a day old": stamped(
            zalo.zns_receipt(SentZns("84912345678", TEMPLATE_ID, {}, "1", "z1")), -86400
        ),
    }
    for replay, event in replays.items():
        response = zalo.deliver(event)
        assert (response.status_code, response.json()) == (200, {"received": True}), replay
    with app.sessions() as session:  # the event is remembered before the answer, so a handled one would show here
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 0
        assert session.scalar(select(func.count()).select_from(ZaloUser)) == 0
    assert zalo.messages == []

    resident = ZaloResident(app, zalo)
    resident.send(stamped(zalo.text_event(resident.user_id, "xin chào"), -10 * 60))  # late, inside the window
    [card] = wait_until(resident.inbox, "the card asking for their phone")
    assert card.template_type == "request_user_info"


def test_ids_beyond_2_to_the_53_stay_exact(app, zalo):
    user_id = "2468458835296197922"  # as a float: 2468458835296197632
    event = zalo.text_event(user_id, "xin chào")
    text = json.dumps(event, ensure_ascii=False)
    body = text.replace(f'"{user_id}"', user_id).replace(f'"{event["timestamp"]}"', event["timestamp"]).encode()
    assert f'"id": {user_id}'.encode() in body, "sent as a bare JSON number"
    assert zalo.post_webhook(body, zalo.signature(body, event["timestamp"])).status_code == 200
    wait_until(lambda: zalo.messages_to(user_id), "the card, to the exact user id")
    with app.sessions() as session:
        assert session.scalars(select(ZaloUser.user_id)).all() == [user_id]


def test_a_retried_webhook_is_handled_once(app, zalo):
    resident = ZaloResident(app, zalo)
    hello = zalo.text_event(resident.user_id, "xin chào")
    resident.send(hello)
    resident.send(hello)  # Zalo retries an event it thinks went unanswered: the same bytes again
    shared = zalo.submit_info_event(resident.user_id, "0912345678", "An")
    resident.send(shared)
    resident.send(shared)
    opening = resident.replies(1)  # after exactly one card: events of a user are handled in order
    assert resident.inbox()[0].template_type == "request_user_info"
    before, event = len(resident.inbox()), zalo.text_event(resident.user_id, "Vâng, đúng rồi")
    resident.send(event)
    resident.send(event)  # retried while the first delivery is being handled
    answer = resident.replies(before, event["message"]["msg_id"])
    resident.send(event)  # and again after it was answered
    second = resident.say("Được")
    assert len(resident.inbox()) == 1 + len(opening) + len(answer) + len(second), "nothing was answered twice"
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1
        said = session.scalars(select(Turn.text).where(Turn.speaker == Speaker.RESIDENT).order_by(Turn.seq)).all()
    assert said == ["Vâng, đúng rồi", "Được"]


def test_a_refused_token_is_refreshed_once_and_the_reply_sent_once(app, zalo):
    resident = ZaloResident(app, zalo)
    resident.share_phone("0912345678", "An")
    assert zalo.refreshes == 1, "the first message took the refresh token from the settings"
    zalo.expire_access_token()
    requests_before = zalo.cs_requests
    replies = resident.say("Vâng, đúng rồi")
    assert zalo.refreshes == 2
    assert zalo.cs_requests == requests_before + 1 + len(replies), "one refused, then each reply once"
    with app.sessions() as session:
        stored = session.get(ProviderToken, "zalo_oa")
    assert (stored.access_token, stored.refresh_token) == (zalo.access_token, zalo.refresh_token)
    assert stored.expires_at > datetime.now(UTC) + timedelta(hours=24)


def test_concurrent_sends_share_one_refresh(app, zalo):
    """A refresh token works once: a second refresh at the same time would fail and lose the message."""
    user_id = zalo_id()

    async def send_three() -> None:
        client = ZaloClient(app.settings, app.sessions)
        try:
            await asyncio.gather(*(client.send_text(user_id, f"tin {n}") for n in range(3)))
        finally:
            await client.aclose()

    asyncio.run(send_three())
    assert zalo.refreshes == 1
    zalo.expire_access_token()
    asyncio.run(send_three())
    assert zalo.refreshes == 2
    assert sorted(m.text for m in zalo.messages_to(user_id)) == ["tin 0", "tin 0", "tin 1", "tin 1", "tin 2", "tin 2"]


def test_a_long_reply_is_split_with_the_buttons_under_its_end(app, zalo):
    user_id = zalo_id()
    buttons = tuple(Button(f"{n} mũi", f'/inform{{"doses": "{n}"}}') for n in range(7))

    async def send() -> None:
        client = ZaloClient(app.settings, app.sessions)
        try:
            await client.send_text(user_id, "a" * 4500, buttons)
        finally:
            await client.aclose()

    asyncio.run(send())
    sent = zalo.messages_to(user_id)
    assert [len(m.text) for m in sent] == [2000, 2000, 500]
    assert [m.buttons for m in sent[:2]] == [[], []] and len(sent[-1].buttons) == 5


def test_the_zalo_channel_writes_only_inside_the_reply_window(app, zalo):
    inside, inside_user = linked_attempt(app, "+84912000001", last_message_hours_ago=47)
    outside, outside_user = linked_attempt(app, "+84912000002", last_message_hours_ago=49)

    placed = reach(app, Channel.ZALO, inside)
    opening = zalo.messages_to(inside_user)
    assert placed.provider_ref == opening[-1].message_id and "Nguyễn Văn An" in opening[-1].text
    with app.sessions() as session:
        conversation = session.get(Conversation, session.get(ZaloUser, inside_user).conversation_id)
    assert (conversation.channel, conversation.outreach_id) == ("zalo", inside), "their replies go to the campaign"

    with pytest.raises(Unreachable, match="48 h reply window") as refused:
        reach(app, Channel.ZALO, outside)
    assert zalo.messages_to(outside_user) == []
    with app.sessions.begin() as session:  # what the dispatcher does with Unreachable
        attempt = session.get(OutreachAttempt, outside)
        rules = CampaignRules.model_validate(attempt.campaign.rules)
        assert attempts.fall_back(attempt, rules, str(refused.value), datetime.now(UTC)) == "voice"
    moved = current(app, outside)
    assert (moved.status, moved.channel, moved.last_error) == (
        "scheduled",
        "voice",
        "zalo: their last Zalo message is older than the 48 h reply window",
    )


def test_zalo_refusing_a_closed_window_makes_the_person_unreachable(app, zalo):
    attempt_id, user_id = linked_attempt(app, PHONE, last_message_hours_ago=1)
    zalo.fail_next(-230, "User has not interacted with the OA in the past 7 days")
    with pytest.raises(Unreachable, match="-230"):
        reach(app, Channel.ZALO, attempt_id)
    with app.sessions() as session:
        assert session.get(ZaloUser, user_id).conversation_id is None, "their next message opens a fresh conversation"


def test_zns_carries_the_tracking_id_and_84_phone_and_its_receipt_updates_the_attempt(app, zalo):
    attempt_id = zns_attempt(app)
    placed = reach(app, Channel.ZNS, attempt_id)
    with app.sessions.begin() as session:  # the dispatcher records the hand-over
        attempts.handed_over(session.get(OutreachAttempt, attempt_id), "zns", placed.provider_ref, datetime.now(UTC))
    [sent] = zalo.zns
    assert (sent.phone, sent.template_id, sent.tracking_id, sent.msg_id) == (
        "84912345678",
        TEMPLATE_ID,
        str(attempt_id),
        placed.provider_ref,
    )
    link = sent.template_data.pop("link")
    assert sent.template_data == {"customer_name": "Nguyễn Văn An", "day": "ngày 2"}
    assert link.startswith(f"{app.url}/chat?invite="), "a personal link to the web chat"
    opened = httpx.post(f"{app.url}/api/v1/webchat/sessions", json={"invite": link.split("invite=")[1]}, timeout=30)
    assert opened.status_code == 200 and "Nguyễn Văn An" in opened.json()["replies"][-1]["text"]
    assert current(app, attempt_id).last_outcome is None

    receipt = zalo.zns_receipt(sent)
    for _ in range(2):  # Zalo may retry the receipt
        response = zalo.deliver(receipt, zns=True)
        assert response.status_code == 200, response.text
    delivered = wait_until(lambda: (a := current(app, attempt_id)).last_outcome == "delivered" and a, "the receipt")
    assert (delivered.status, delivered.tries) == ("contacting", 1)


def test_zns_refusals_about_the_person_move_on_others_count_as_a_failed_try(app, zalo):
    attempt_id = zns_attempt(app)
    refusals = [
        (-108, "Phone number invalid", Unreachable),
        (-118, "Zalo account not existed", Unreachable),
        (-144, "Daily quota exceeded", ChannelFailed),
    ]
    for code, message, raised in refusals:
        zalo.fail_next(code, message)
        with pytest.raises(raised, match=str(code)):
            reach(app, Channel.ZNS, attempt_id)
    assert zalo.zns == []
