"""Zalo Official Account (+ ZNS): residents chat with the OA; campaigns reach people by OA message or ZNS template.

POST /webhooks/zalo   every Zalo event, signed with X-ZEvent-Signature. Answered 200 at once (Zalo wants an answer
                      within 2 s and retries otherwise) and handled after the answer, each event once. An event
                      stamped outside the freshness window (a replay of an old signed event) is answered 200 too,
                      and nothing is done or stored: any other answer would only make Zalo send it again.

Input: `user_send_text` (typed, or a button's payload) goes to the resident's conversation; `follow` / `unfollow`;
`user_submit_info` (the phone shared from the request_user_info card) links the Zalo user to a person and opens
their conversation; `user_received_message` with a `tracking_id` is a ZNS delivery receipt. Anything else is
acknowledged and ignored.
Output: `ZaloClient` sends consultation (CS) messages and ZNS templates with the OA's rotating access token;
`ZaloChannel` and `ZnsChannel` are the campaigns' outbound channels.
"""

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from weakref import WeakValueDictionary

import httpx
from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.deps import Platform, PlatformDep
from campaigns import attempts
from campaigns.attempts import Outcome
from campaigns.channels import ChannelFailed, Contact, Placed, Unreachable
from connectors.events import first_time
from connectors.webchat import new_invite
from conversations.engine import BotMessage, Button
from conversations.service import EngineDown
from ground.phones import InvalidPhone, normalize_phone
from ground.settings import Settings
from models import (
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Channel,
    Conversation,
    OutreachAttempt,
    Person,
    ProviderToken,
    Speaker,
    Turn,
    ZaloUser,
    utcnow,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["Zalo (webhooks)"], include_in_schema=False)

TOKEN_ROW = "zalo_oa"
MAX_TEXT = 2000  # characters in one CS message
MAX_BUTTONS = 5
EXPIRY_MARGIN = timedelta(minutes=5)  # refresh a little early rather than send with a token about to die
# -216 invalid / -220 expired (OA API), -124 invalid (ZNS): refresh the token once and try again.
TOKEN_ERRORS = frozenset({-216, -220, -124})
# OA API answers that mean this user cannot get a CS message now (not following, inactive, no recent interaction,
# -305 is the 2021-era "cannot respond after 48 hours"): another channel may still reach them.
CS_UNREACHABLE = frozenset({-213, -227, -230, -232, -305})
# ZNS answers about the recipient, not about us: -108 the phone cannot take ZNS, -110 their Zalo app is too old,
# -114 inactive / refuses ZNS, -118 no Zalo account on this phone, -119 account cannot receive ZNS. Another channel
# may reach them; retrying ZNS would not (codes past -112 as Zalo's error guide numbers them, unchecked live).
# Everything else (quota, night-time ban, template, token, unknown errors) is on our side or Zalo's: a failed
# try, retried after the campaign's spacing.
ZNS_UNREACHABLE = frozenset({-108, -110, -114, -118, -119})

ASK_FOR_PHONE = {
    "title": "Trung tâm Kiểm soát bệnh tật",
    "subtitle": "Xin anh/chị chia sẻ số điện thoại để bắt đầu khai báo y tế (miễn phí).",
}
ENGINE_BUSY = "Hệ thống đang bận, tin nhắn của anh/chị đã được lưu lại. Xin anh/chị nhắn lại sau ít phút."
PHONE_UNUSABLE = "Xin lỗi, số điện thoại anh/chị chia sẻ không phải số Việt Nam hợp lệ nên chưa khai báo được."


# ---- What Zalo posts -------------------------------------------------------------------------------------------

# Ids and timestamps exceed 2^53: the body is parsed with integers kept as text, and only text is accepted here
# (a float would be a rounded id).
UserId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]
EventId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
EpochMs = Annotated[str, StringConstraints(strict=True, pattern=r"^\d{1,20}$")]
Detail = Annotated[str, StringConstraints(strip_whitespace=True)] | None


class _Who(BaseModel):
    id: UserId


class _Event(BaseModel):
    event_name: str
    timestamp: EpochMs

    @property
    def user_id(self) -> str:
        raise NotImplementedError

    @property
    def key(self) -> str:
        """What makes a retry of this event recognisable (events with a msg_id use it)."""
        return f"{self.event_name}:{self.user_id}:{self.timestamp}"

    def fresh(self, now: datetime, max_age_s: int) -> bool:
        """Sent within `max_age_s` of now, either way: the signature covers the timestamp, so an old event replayed
        keeps its age, and a stamp far ahead would outlive any window."""
        return abs(now.timestamp() * 1000 - int(self.timestamp)) <= max_age_s * 1000

    @property
    def at(self) -> datetime:
        """When the user acted (epoch ms), never later than now: a clock running ahead must not stretch the reply
        window."""
        now_ms = int(utcnow().timestamp() * 1000)
        return datetime.fromtimestamp(min(int(self.timestamp), now_ms) / 1000, UTC)


class _Text(BaseModel):
    msg_id: EventId
    text: Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]


class TextEvent(_Event):
    event_name: Literal["user_send_text"]
    sender: _Who
    message: _Text

    @property
    def user_id(self) -> str:
        return self.sender.id

    @property
    def key(self) -> str:
        return self.message.msg_id


class FollowEvent(_Event):
    event_name: Literal["follow", "unfollow"]
    follower: _Who

    @property
    def user_id(self) -> str:
        return self.follower.id


class _Address(BaseModel):
    user_address: Detail = None
    user_ward: Detail = None
    user_district: Detail = None
    user_city: Detail = None


class _Info(BaseModel):
    phone: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=32)]
    name: Detail = None
    full_address: _Address | None = None
    # The older, flat shape of the same details.
    address: Detail = None
    ward: Detail = None
    district: Detail = None
    city: Detail = None

    def place(self) -> dict[str, str | None]:
        nested = self.full_address
        if nested is not None:
            return {
                "address": nested.user_address,
                "ward": nested.user_ward,
                "district": nested.user_district,
                "province": nested.user_city,
            }
        return {"address": self.address, "ward": self.ward, "district": self.district, "province": self.city}


class SubmitInfoEvent(_Event):
    event_name: Literal["user_submit_info"]
    sender: _Who
    info: _Info

    @property
    def user_id(self) -> str:
        return self.sender.id


class _Delivery(BaseModel):
    msg_id: EventId
    tracking_id: EventId


class _Recipient(BaseModel):
    id: EventId  # the phone, or its SHA-256 when sent by hashed phone


class ZnsReceipt(_Event):
    event_name: Literal["user_received_message"]
    recipient: _Recipient
    message: _Delivery

    @property
    def user_id(self) -> str:
        return self.recipient.id

    @property
    def key(self) -> str:
        return self.message.msg_id


ZaloEvent = TextEvent | FollowEvent | SubmitInfoEvent | ZnsReceipt
_EVENTS: TypeAdapter[ZaloEvent] = TypeAdapter(Annotated[ZaloEvent, Field(discriminator="event_name")])
_RESIDENT_EVENTS = ("user_send_text", "user_submit_info", "follow", "unfollow")
# Events the OA caused itself (its messages echoed, receipts of what it sent) name the OA as their sender.
_SENT_BY_OA = ("oa_send_", "user_received_message", "user_seen_message")


def signed_by(raw: bytes, body: dict[str, Any], header: str | None, oa_secret_key: str) -> str | None:
    """Which id signed the body, 'app_id' or 'oa_id', or None when the signature is missing or wrong.

    X-ZEvent-Signature is `mac=` + SHA-256 (plain, not HMAC) of app_id + the body's exact bytes + timestamp +
    the OA secret key, app_id and timestamp read from the body. Some integrations sign with the OA id instead.
    """
    timestamp = body.get("timestamp")
    if not header or not header.startswith("mac=") or not oa_secret_key or not isinstance(timestamp, str):
        return None
    given = header.removeprefix("mac=").strip().lower().encode()
    for name, first in (("app_id", body.get("app_id")), ("oa_id", _oa_id(body))):
        if isinstance(first, str):
            expected = hashlib.sha256(first.encode() + raw + timestamp.encode() + oa_secret_key.encode())
            if hmac.compare_digest(expected.hexdigest().encode(), given):
                return name
    return None


def _oa_id(body: dict[str, Any]) -> Any:
    if "oa_id" in body:
        return body["oa_id"]
    side = "sender" if str(body.get("event_name", "")).startswith(_SENT_BY_OA) else "recipient"
    party = body.get(side)
    return party.get("id") if isinstance(party, dict) else None


def _signed_body(raw: bytes, header: str | None, settings: Settings) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_int=str)
    except ValueError:
        body = None
    secret = settings.zalo_oa_secret_key.get_secret_value()
    signer = signed_by(raw, body, header, secret) if isinstance(body, dict) else None
    if signer is None:
        raise HTTPException(401, "X-ZEvent-Signature does not match this request")
    log.log(logging.INFO if signer == "oa_id" else logging.DEBUG, "Zalo webhook signed with the %s", signer)
    return body


def _event(body: dict[str, Any]) -> ZaloEvent | None:
    try:
        return _EVENTS.validate_python(body)
    except ValidationError as error:
        name = body.get("event_name")
        # A message or shared phone we cannot read deserves attention; other events are simply not ours to handle.
        level = logging.WARNING if name in _RESIDENT_EVENTS else logging.DEBUG
        log.log(level, "Zalo event %s ignored: %s", name, error.errors(include_input=False))
        return None


@router.post("/webhooks/zalo")
async def webhook(request: Request, background: BackgroundTasks, platform: PlatformDep) -> dict[str, bool]:
    """Check the signature, remember the event, answer; the work happens after the answer."""
    raw = await request.body()
    event = _event(_signed_body(raw, request.headers.get("X-ZEvent-Signature"), platform.settings))
    if event is None:
        return {"received": True}
    if not event.fresh(utcnow(), platform.settings.zalo_event_max_age_s):
        log.warning(
            "Zalo %s stamped %s ignored: outside the %d s window (a replay, or a clock far off)",
            event.event_name,
            event.timestamp,
            platform.settings.zalo_event_max_age_s,
        )
        return {"received": True}
    if await asyncio.to_thread(_first_time, platform.sessions, event.key):
        background.add_task(_process, platform, event)
    else:
        log.debug("Zalo retried %s %s: handled already", event.event_name, event.key)
    return {"received": True}


def _first_time(sessions: sessionmaker[Session], key: str) -> bool:
    with sessions.begin() as session:
        return first_time(session, "zalo", key)


async def _process(platform: Platform, event: ZaloEvent) -> None:
    try:
        # One event at a time per user: messages are answered in order and never open two conversations.
        async with platform.zalo.user_lock(event.user_id):
            await HANDLERS[type(event)](platform, event)
    except Exception:  # Zalo has its 200 already: the log is the only place a failure can show
        log.exception("Zalo %s could not be handled", event.event_name)


# ---- Handling each event ---------------------------------------------------------------------------------------


async def _on_follow(platform: Platform, event: FollowEvent) -> None:
    await asyncio.to_thread(_set_following, platform.sessions, event.user_id, event.event_name == "follow")


async def _on_text(platform: Platform, event: TextEvent) -> None:
    """A message (or a button tap) goes to the user's live conversation; else one is opened, or their phone asked."""
    person_id, conversation_id = await asyncio.to_thread(_heard_from, platform.sessions, event.user_id, event.at)
    if person_id is None:
        await platform.zalo.ask_for_phone(event.user_id)
    elif conversation_id is None:
        await _open_for_resident(platform, event.user_id, person_id)
    else:
        await _answer(platform, event.user_id, conversation_id, event.message)


async def _on_submit_info(platform: Platform, event: SubmitInfoEvent) -> None:
    """The user shared their phone from the card: they are that person from now on."""
    try:
        phone = normalize_phone(event.info.phone)
    except InvalidPhone as error:
        log.warning("Zalo user shared an unusable phone: %s", error)
        await platform.zalo.send_text(event.user_id, PHONE_UNUSABLE)
        return
    person_id, conversation_id = await asyncio.to_thread(
        _link_person, platform.sessions, event.user_id, phone, event.info, event.at
    )
    if conversation_id is None:
        await _open_for_resident(platform, event.user_id, person_id)


async def _on_zns_receipt(platform: Platform, event: ZnsReceipt) -> None:
    await asyncio.to_thread(_mark_delivered, platform.sessions, event.message)


HANDLERS: dict[type, Callable[[Platform, Any], Awaitable[None]]] = {
    TextEvent: _on_text,
    FollowEvent: _on_follow,
    SubmitInfoEvent: _on_submit_info,
    ZnsReceipt: _on_zns_receipt,
}


async def open_conversation(platform: Platform, user_id: str, person_id: int, **campaign: int) -> str | None:
    """Open the person's conversation on Zalo, send the bot's opening, then route the user's messages to it.

    The user follows the conversation only once the opening is sent: after a failed send their next message opens
    a fresh one rather than answering a question they never saw. Returns the id of the last message sent.
    """
    result, _ = await platform.conversations.start(person_id, Channel.ZALO, **campaign)
    message_id = await platform.zalo.send_replies(user_id, result.replies)
    await asyncio.to_thread(_follow_conversation, platform.sessions, user_id, result.conversation_id)
    return message_id


async def _open_for_resident(platform: Platform, user_id: str, person_id: int) -> None:
    """The resident wrote first: the opening answers them, on behalf of the campaign waiting for them if any."""
    campaign = await asyncio.to_thread(_waiting_attempt, platform.sessions, person_id)
    try:
        await open_conversation(platform, user_id, person_id, **campaign)
    except EngineDown:
        await platform.zalo.send_text(user_id, ENGINE_BUSY)


async def _answer(platform: Platform, user_id: str, conversation_id: int, message: _Text) -> None:
    text, payload = await asyncio.to_thread(_as_button_tap, platform.sessions, conversation_id, message.text)
    try:
        result = await platform.conversations.handle(
            conversation_id, text, engine_text=payload, external_id=message.msg_id
        )
    except EngineDown:  # the turn is kept and replayed when the engine is back
        await platform.zalo.send_text(user_id, ENGINE_BUSY)
        return
    await platform.zalo.send_replies(user_id, result.replies)


# ---- The store side (run in threads) ---------------------------------------------------------------------------


def _zalo_user(session: Session, user_id: str) -> ZaloUser:
    user = session.get(ZaloUser, user_id)
    if user is None:
        user = ZaloUser(user_id=user_id)
        session.add(user)
    return user


def _live_conversation(session: Session, user: ZaloUser) -> int | None:
    conversation = session.get(Conversation, user.conversation_id) if user.conversation_id else None
    return conversation.id if conversation is not None and conversation.ended_at is None else None


def _note_message(user: ZaloUser, at: datetime) -> None:
    """The reply window runs from the user's latest message; a late retry never moves it back."""
    if user.last_message_at is None or at > user.last_message_at:
        user.last_message_at = at


def _set_following(sessions: sessionmaker[Session], user_id: str, following: bool) -> None:
    with sessions.begin() as session:
        _zalo_user(session, user_id).following = following


def _heard_from(sessions: sessionmaker[Session], user_id: str, at: datetime) -> tuple[int | None, int | None]:
    """Note the message; returns the user's person and live conversation, when they have them."""
    with sessions.begin() as session:
        user = _zalo_user(session, user_id)
        _note_message(user, at)
        return user.person_id, _live_conversation(session, user)


def _link_person(
    sessions: sessionmaker[Session], user_id: str, phone: str, info: _Info, at: datetime
) -> tuple[int, int | None]:
    """The person with this phone (added when unknown) is the user's; returns them and their live conversation."""
    with sessions.begin() as session:
        person = session.scalar(select(Person).where(Person.phone == phone))
        if person is None:
            person = Person(phone=phone)
            session.add(person)
        _fill_blanks(person, full_name=info.name, **info.place())
        session.flush()
        user = _zalo_user(session, user_id)
        _note_message(user, at)
        if user.person_id != person.id:  # another person's phone now: the old conversation is not theirs
            user.person_id, user.conversation_id = person.id, None
        return person.id, _live_conversation(session, user)


def _fill_blanks(person: Person, **details: str | None) -> None:
    """What the resident shared fills only what the store lacks: names and addresses from F1 lists are kept."""
    for field, value in details.items():
        if value and not getattr(person, field):
            setattr(person, field, value[: Person.__table__.c[field].type.length])


def _waiting_attempt(sessions: sessionmaker[Session], person_id: int) -> dict[str, int]:
    """The running campaign's attempt whose ZNS or Zalo message is waiting for this person's answer, if any."""
    with sessions() as session:
        attempt = session.scalars(
            select(OutreachAttempt)
            .join(Campaign)
            .where(
                OutreachAttempt.person_id == person_id,
                OutreachAttempt.status == AttemptStatus.CONTACTING,
                OutreachAttempt.channel.in_((Channel.ZNS.value, Channel.ZALO.value)),
                Campaign.status == CampaignStatus.RUNNING,
            )
            .order_by(OutreachAttempt.updated_at.desc())
            .limit(1)
        ).first()
    if attempt is None:
        return {}
    return {"campaign_id": attempt.campaign_id, "outreach_id": attempt.id, "follow_up_day": attempt.follow_up_day}


def _follow_conversation(sessions: sessionmaker[Session], user_id: str, conversation_id: int) -> None:
    with sessions.begin() as session:
        _zalo_user(session, user_id).conversation_id = conversation_id


def _as_button_tap(sessions: sessionmaker[Session], conversation_id: int, text: str) -> tuple[str, str | None]:
    """A tap arrives as the button's payload typed by the user: store its title, give the engine its payload."""
    with sessions() as session:
        offered = session.scalars(
            select(Turn.buttons)
            .where(Turn.conversation_id == conversation_id, Turn.speaker == Speaker.BOT)
            .order_by(Turn.seq.desc())
            .limit(1)
        ).first()
    for button in offered or ():
        if button["payload"] == text:
            return button["title"], text
    return text, None


def _mark_delivered(sessions: sessionmaker[Session], delivery: _Delivery) -> None:
    """A ZNS delivery receipt: its tracking id is the outreach attempt's id (see ZnsChannel)."""
    if not (delivery.tracking_id.isascii() and delivery.tracking_id.isdigit()):
        log.debug("ZNS receipt of a message this platform did not track: %s", delivery.tracking_id)
        return
    with sessions.begin() as session:
        attempts.record_report(session, int(delivery.tracking_id), delivery.msg_id, Outcome.DELIVERED, utcnow())


# ---- Sending ---------------------------------------------------------------------------------------------------


class ZaloError(RuntimeError):
    """Zalo refused a call (`code` from its envelope) or could not be reached (`code` None)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"Zalo {code}: {message}" if code is not None else f"Zalo: {message}")
        self.code = code


@dataclass(frozen=True)
class _Tokens:
    access_token: str
    refresh_token: str
    expires_at: datetime


def _tokens_from(answer: Any) -> _Tokens:
    """The OAuth answer: the new pair and `expires_in` (seconds, as a string), or Zalo's error."""
    if not isinstance(answer, dict) or not {"access_token", "refresh_token", "expires_in"} <= answer.keys():
        error = answer if isinstance(answer, dict) else {}
        reason = error.get("error_description") or error.get("error_name") or error.get("message") or "no token"
        code = error.get("error")
        raise ZaloError(code if isinstance(code, int) else None, f"refreshing the OA access token: {reason}")
    expires_at = utcnow() + timedelta(seconds=int(answer["expires_in"]))
    return _Tokens(str(answer["access_token"]), str(answer["refresh_token"]), expires_at)


def in_reply_window(last_message_at: datetime | None, now: datetime, hours: int) -> bool:
    return last_message_at is not None and now - last_message_at < timedelta(hours=hours)


def _pieces(text: str) -> list[str]:
    return [text[start : start + MAX_TEXT] for start in range(0, len(text), MAX_TEXT)] or [text]


def _with_buttons(buttons: tuple[Button, ...]) -> dict[str, Any]:
    """Quick answers: an `oa.query.hide` button sends its payload back as the user's text, without showing it."""
    if not buttons:
        return {}
    # Zalo shows at most five; a resident can still type any other answer.
    shown = [{"title": b.title, "type": "oa.query.hide", "payload": b.payload} for b in buttons[:MAX_BUTTONS]]
    return {"attachment": {"type": "template", "payload": {"buttons": shown}}}


class ZaloClient:
    """The OA's side of the conversation: CS messages and ZNS templates, with the OA's rotating access token.

    The token pair lives in the store (row "zalo_oa"), bootstrapped from the zalo_refresh_token setting. A refresh
    token works once, so refreshes are serialised and the new pair is committed before it is used.
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._http = httpx.AsyncClient(timeout=10.0)
        self._refreshing = asyncio.Lock()
        self._user_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def user_lock(self, user_id: str) -> asyncio.Lock:
        """One exchange with a user at a time; a lock lives only while someone holds or awaits it."""
        lock = self._user_locks.get(user_id)
        if lock is None:
            lock = self._user_locks[user_id] = asyncio.Lock()
        return lock

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_replies(self, user_id: str, messages: list[BotMessage]) -> str | None:
        """The bot's messages in order; returns the id of the last one sent."""
        message_id = None
        for message in messages:
            message_id = await self.send_text(user_id, message.text, message.buttons)
        return message_id

    async def send_text(self, user_id: str, text: str, buttons: tuple[Button, ...] = ()) -> str:
        """A CS message (split past 2,000 characters, the buttons under the last piece)."""
        *first, last = _pieces(text)
        for piece in first:
            await self._send_cs(user_id, {"text": piece})
        return await self._send_cs(user_id, {"text": last, **_with_buttons(buttons)})

    async def ask_for_phone(self, user_id: str) -> str:
        """The request_user_info card: the user's answer arrives as a user_submit_info event."""
        card = {"template_type": "request_user_info", "elements": [ASK_FOR_PHONE]}
        return await self._send_cs(user_id, {"attachment": {"type": "template", "payload": card}})

    async def send_zns(self, phone: str, template_id: str, template_data: dict[str, str], tracking_id: str) -> str:
        """A ZNS template to a phone in the 84xxxxxxxxx form; returns Zalo's msg_id."""
        body = {"phone": phone, "template_id": template_id, "template_data": template_data, "tracking_id": tracking_id}
        data = await self._call(f"{self.settings.zalo_zns_base_url.rstrip('/')}/message/template", body)
        return str(data.get("msg_id"))

    async def _send_cs(self, user_id: str, message: dict[str, Any]) -> str:
        url = f"{self.settings.zalo_api_base_url.rstrip('/')}/v3.0/oa/message/cs"
        data = await self._call(url, {"recipient": {"user_id": user_id}, "message": message})
        return str(data.get("message_id"))

    async def _call(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        token = await self._access_token()
        try:
            return await self._post(url, body, token)
        except ZaloError as error:
            if error.code not in TOKEN_ERRORS:
                raise
            log.info("Zalo refused the OA access token (%s): refreshing it", error.code)
            return await self._post(url, body, await self._refresh(stale=token))

    async def _post(self, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """One API call; Zalo's envelope says `error` 0 on success, anything else is a failure even with HTTP 200."""
        try:
            response = await self._http.post(url, json=body, headers={"access_token": token})
            envelope = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloError(None, f"{url}: {error.__class__.__name__} {error}") from error
        code = envelope.get("error") if isinstance(envelope, dict) else None
        if response.status_code != 200 or code is None:
            raise ZaloError(None, f"{url} answered HTTP {response.status_code}")
        if int(code) != 0:
            raise ZaloError(int(code), str(envelope.get("message", "")))
        return envelope.get("data") or {}

    async def _access_token(self) -> str:
        stored = await asyncio.to_thread(self._stored_tokens)
        if stored is None or stored.expires_at <= utcnow() + EXPIRY_MARGIN:
            return await self._refresh(stale=stored.access_token if stored else None)
        return stored.access_token

    async def _refresh(self, stale: str | None) -> str:
        """A new token pair, stored before use. Whoever waited on the lock uses the pair the first caller got."""
        async with self._refreshing:
            stored = await asyncio.to_thread(self._stored_tokens)
            if stored is not None and stored.access_token != stale:
                return stored.access_token
            refresh_token = stored.refresh_token if stored else self.settings.zalo_refresh_token.get_secret_value()
            if not refresh_token:
                raise ZaloError(None, "no OA refresh token: set OUTREACH_ZALO_REFRESH_TOKEN")
            tokens = await self._exchange(refresh_token)
            await asyncio.to_thread(self._store_tokens, tokens)
            return tokens.access_token

    async def _exchange(self, refresh_token: str) -> _Tokens:
        url = f"{self.settings.zalo_oauth_base_url.rstrip('/')}/v4/oa/access_token"
        form = {"refresh_token": refresh_token, "app_id": self.settings.zalo_app_id, "grant_type": "refresh_token"}
        try:
            response = await self._http.post(
                url, data=form, headers={"secret_key": self.settings.zalo_app_secret_key.get_secret_value()}
            )
            return _tokens_from(response.json())
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloError(None, f"refreshing the OA access token: {error.__class__.__name__} {error}") from error

    def _stored_tokens(self) -> _Tokens | None:
        with self.sessions() as session:
            row = session.get(ProviderToken, TOKEN_ROW)
            return _Tokens(row.access_token, row.refresh_token, row.expires_at) if row else None

    def _store_tokens(self, tokens: _Tokens) -> None:
        with self.sessions.begin() as session:
            row = session.get(ProviderToken, TOKEN_ROW) or ProviderToken(provider=TOKEN_ROW)
            row.access_token, row.refresh_token, row.expires_at = (
                tokens.access_token,
                tokens.refresh_token,
                tokens.expires_at,
            )
            session.add(row)


# ---- The campaigns' outbound channels --------------------------------------------------------------------------


def _channel_error(error: ZaloError, unreachable: frozenset[int]) -> Exception:
    return Unreachable(str(error)) if error.code in unreachable else ChannelFailed(str(error))


@dataclass(frozen=True)
class ZaloChannel:
    """Opens the conversation by OA message with a person who wrote to the OA recently (OutboundChannel).

    CS messages are replies: only within the reply window after the user's last message. Outside it, or with no
    Zalo user linked to the person, the attempt moves on to the campaign's next channel.
    """

    platform: Platform
    name: str = "zalo"

    async def reach(self, contact: Contact) -> Placed:
        user_id = await asyncio.to_thread(self._user_in_window, contact.person_id)
        try:
            async with self.platform.zalo.user_lock(user_id):
                message_id = await open_conversation(
                    self.platform,
                    user_id,
                    contact.person_id,
                    campaign_id=contact.campaign_id,
                    outreach_id=contact.attempt_id,
                    follow_up_day=contact.follow_up_day,
                )
        except EngineDown as error:
            raise ChannelFailed(f"the dialogue engine is down: {error}") from error
        except ZaloError as error:
            raise _channel_error(error, CS_UNREACHABLE) from error
        return Placed(message_id)

    def _user_in_window(self, person_id: int) -> str:
        hours = self.platform.settings.zalo_reply_window_hours
        with self.platform.sessions() as session:
            user = session.scalars(
                select(ZaloUser)
                .where(ZaloUser.person_id == person_id)
                .order_by(ZaloUser.last_message_at.desc().nulls_last())
                .limit(1)
            ).first()
        if user is None:
            raise Unreachable("no Zalo user has shared this person's phone with the OA")
        if not in_reply_window(user.last_message_at, utcnow(), hours):
            raise Unreachable(f"their last Zalo message is older than the {hours} h reply window")
        return user.user_id


@dataclass(frozen=True)
class ZnsChannel:
    """Sends the campaign's ZNS template to the person's phone (OutboundChannel); the receipt comes by webhook.

    The tracking id is the attempt's id, so the delivery receipt finds its attempt.
    """

    platform: Platform
    name: str = "zns"

    async def reach(self, contact: Contact) -> Placed:
        rules = contact.rules
        link = await asyncio.to_thread(
            new_invite, self.platform.sessions, self.platform.settings.public_url, contact.attempt_id
        )
        values = self._values(contact, link)
        try:
            data = {key: template.format_map(values) for key, template in rules.zns_template_data.items()}
        except (KeyError, ValueError) as error:
            raise ChannelFailed(f"zns_template_data may use {sorted(values)} only: {error!r}") from error
        phone = contact.phone.removeprefix("+")  # 84xxxxxxxxx: the form old and new ZNS rules both accept
        try:
            msg_id = await self.platform.zalo.send_zns(phone, rules.zns_template_id, data, str(contact.attempt_id))
        except ZaloError as error:
            raise _channel_error(error, ZNS_UNREACHABLE) from error
        return Placed(msg_id)

    @staticmethod
    def _values(contact: Contact, chat_link: str) -> dict[str, str]:
        return {
            "name": contact.name or "anh/chị",
            "phone": "0" + contact.phone.removeprefix("+84"),
            "day": str(contact.follow_up_day),
            "chat_link": chat_link,  # personal: opening it answers this attempt
        }
