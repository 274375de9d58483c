"""Web chat: the resident-facing channel of the browser page at /chat (no user token; the session id is the key).

A phone typed into the page proves nothing: such a chat reveals nothing stored about the number (the greeting uses
the name the resident typed, never the one on file), its declaration is marked unverified, and a phone opens at most
`webchat_sessions_per_phone_per_day` of them a day. A personal link (SMS, ZNS) was sent to the phone: its chat is
verified and greets the resident by the name on file.

POST /api/v1/webchat/sessions                 {"phone": "0912 345 678", "name": "An"}
     -> {"session_id": "...", "replies": [...], "ended": false}
POST /api/v1/webchat/sessions/{id}/messages   {"text": "tôi sốt 38 độ 5"}
     -> {"replies": [{"text": "...", "buttons": [{"title": "...", "payload": "..."}]}], "ended": false}
GET  /api/v1/webchat/sessions/{id}            -> the conversation so far (to restore the page)
"""

import asyncio
import secrets
from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, sessionmaker

from access.auth import hash_token
from app.deps import PlatformDep
from app.schemas import ErrorOut
from bot.vntext import nfc
from conversations.engine import BotMessage
from conversations.service import EngineDown, TurnResult
from ground.phones import InvalidPhone, normalize_phone
from ground.ratelimit import RateLimiter
from ground.settings import Settings
from models import AttemptStatus, Channel, Conversation, OutreachAttempt, Person

router = APIRouter(prefix="/api/v1/webchat", tags=["web chat (residents)"])

ENGINE_DOWN_MESSAGE = (
    "Hệ thống đang bận, xin anh/chị thử lại sau ít phút. Tin nhắn của anh/chị đã được lưu lại. "
    "(The assistant is briefly unavailable; your message is saved and will be answered.)"
)
ERRORS = {code: {"model": ErrorOut} for code in (404, 409, 422, 429, 503)}
TOO_MANY_FROM_ADDRESS = (
    "Có quá nhiều yêu cầu, xin chờ một phút rồi thử lại. (Too many requests from this address; wait a minute.)"
)
TOO_MANY_IN_CHAT = "Anh/chị gửi tin hơi nhanh, xin chờ một lát. (Too many messages in this chat; wait a moment.)"
TOO_MANY_CHATS_TODAY = (
    "Số điện thoại này đã mở {cap} cuộc trò chuyện hôm nay, xin quay lại vào ngày mai. "
    "(This phone has opened {cap} chats today; please come back tomorrow.)"
)
INSERT_OF_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class NewSession(BaseModel):
    phone: str | None = Field(default=None, examples=["0912 345 678"], description="any common Vietnamese form")
    name: str | None = Field(
        default=None,
        max_length=200,
        description="the name the resident gives: a claim, greeted with and kept in the transcript, never stored as "
        "the person's name",
    )
    invite: str | None = Field(
        default=None, max_length=100, description="the key of a personal link sent by SMS, instead of a phone"
    )


class ResidentMessage(BaseModel):
    text: str = Field(
        examples=["tôi sốt 38 độ 5 từ hôm qua"], description="what the resident typed, or the button title"
    )
    payload: str | None = Field(
        default=None, max_length=200, pattern=r"^/[a-z_]+(\{.*\})?$", description="the payload of the button chosen"
    )


class ButtonOut(BaseModel):
    title: str
    payload: str


class ReplyOut(BaseModel):
    text: str
    buttons: list[ButtonOut] = []


class TurnOut(BaseModel):
    replies: list[ReplyOut]
    ended: bool


class SessionOut(TurnOut):
    session_id: str = Field(description="keep it secret: it is the key to this conversation")


class HistoryLine(BaseModel):
    speaker: str
    text: str


class HistoryOut(BaseModel):
    lines: list[HistoryLine]
    ended: bool


def _replies(messages: list[BotMessage]) -> list[ReplyOut]:
    return [
        ReplyOut(text=m.text, buttons=[ButtonOut(title=b.title, payload=b.payload) for b in m.buttons])
        for m in messages
    ]


def _refuse_if_limited(limiter: RateLimiter, key: str, message: str) -> None:
    if (wait := limiter.retry_after(key)) is not None:
        raise HTTPException(429, message, headers={"Retry-After": str(int(wait) + 1)})


def _throttle(platform: PlatformDep, request: Request) -> None:
    """A flood guard per address, generous: behind carrier NAT one address is a whole district. The client's
    address is the peer's, or the forwarded one when the peer is a trusted proxy (create_app)."""
    client = request.client.host if request.client else "unknown"
    _refuse_if_limited(platform.webchat_ip_limit, client, TOO_MANY_FROM_ADDRESS)


Throttled = Depends(_throttle)


@router.post("/sessions", responses=ERRORS, dependencies=[Throttled])
async def open_session(body: NewSession, platform: PlatformDep) -> SessionOut:
    """A chat opened by phone, or from the personal link of an SMS (then it answers that campaign's outreach)."""
    if body.invite:
        target = await asyncio.to_thread(_invited, platform, body.invite)
    elif body.phone:
        target = await asyncio.to_thread(_typed_phone, platform, body.phone, body.name)
    else:
        raise HTTPException(422, "phone: give a phone number (or the invite of a personal link)")
    try:
        result, token = await platform.conversations.start(**target, channel=Channel.WEBCHAT, token=body.invite)
    except EngineDown:
        raise HTTPException(503, ENGINE_DOWN_MESSAGE) from None
    return SessionOut(session_id=token, replies=_replies(result.replies), ended=result.ended)


def new_invite(sessions: sessionmaker[Session], public_url: str, attempt_id: int) -> str:
    """A personal link to the web chat for an outreach attempt (sent by SMS or ZNS); only its key's hash is kept,
    and the latest link sent for the attempt is the one that opens it."""
    invite = secrets.token_urlsafe(24)
    with sessions.begin() as session:
        session.get(OutreachAttempt, attempt_id).invite_token_hash = hash_token(invite)
    return f"{public_url}/chat?invite={invite}"


def _invited(platform: PlatformDep, invite: str) -> dict[str, int]:
    """The outreach attempt a personal link was sent for; its chat is opened once (the link then resumes it)."""
    if platform.conversations.conversation_for_token(invite) is not None:
        raise HTTPException(409, "this link's chat is open already: resume it with GET /sessions/{invite}")
    with platform.sessions() as session:
        attempt = session.scalar(select(OutreachAttempt).where(OutreachAttempt.invite_token_hash == hash_token(invite)))
        if attempt is None or attempt.status == AttemptStatus.CANCELED:
            raise HTTPException(404, "this link is unknown or has expired")
        return {
            "person_id": attempt.person_id,
            "campaign_id": attempt.campaign_id,
            "outreach_id": attempt.id,
            "follow_up_day": attempt.follow_up_day,
        }


def _typed_phone(platform: PlatformDep, phone: str, name: str | None) -> dict[str, object]:
    """An unverified chat for the person of a typed phone, within the phone's chats of the day.

    Known and unknown phones take the same road (the same statements, the same answer for the same name): whether
    a number is on a list is what must not leak."""
    try:
        phone = normalize_phone(phone)
    except InvalidPhone as error:
        raise HTTPException(422, f"phone: {error}") from None
    settings = platform.settings
    with platform.sessions.begin() as session:
        person_id = _person_for(session, phone)
        opened_today = _unverified_chats_since(session, person_id, _local_midnight(settings))
    if opened_today >= settings.webchat_sessions_per_phone_per_day:
        raise HTTPException(
            429,
            TOO_MANY_CHATS_TODAY.format(cap=settings.webchat_sessions_per_phone_per_day),
            headers={"Retry-After": str(_seconds_to_midnight(settings))},
        )
    return {"person_id": person_id, "phone_verified": False, "claimed_name": _claimed(name)}


def _person_for(session: Session, phone: str) -> int:
    """The resident with this phone; someone new is added (their province is unknown until a list names it).

    Insert-if-absent, then read: one road for known and unknown phones, and two chats opened at once for a new
    phone meet on one row instead of one failing on the unique phone."""
    insert = INSERT_OF_DIALECT[session.get_bind().dialect.name]
    session.execute(insert(Person).values(phone=phone).on_conflict_do_nothing(index_elements=[Person.phone]))
    return session.scalar(select(Person.id).where(Person.phone == phone))


def _claimed(name: str | None) -> str | None:
    """The typed name as the greeting will say it: one Unicode form, single spaces, or None."""
    words = nfc(name).split() if name else []
    return " ".join(words) or None


def _unverified_chats_since(session: Session, person_id: int, since: datetime) -> int:
    """Chats opened by typing this phone since `since`, counted in the store: the cap holds across API replicas.
    Personal-link chats do not count: a stranger must not learn, from the cap, that a link was sent."""
    return session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.person_id == person_id,
            Conversation.channel == Channel.WEBCHAT,
            Conversation.phone_verified.is_(False),
            Conversation.started_at >= since,
        )
    )


def _local_midnight(settings: Settings) -> datetime:
    zone = ZoneInfo(settings.timezone)
    return datetime.combine(datetime.now(zone).date(), time(), zone)


def _seconds_to_midnight(settings: Settings) -> int:
    zone = ZoneInfo(settings.timezone)
    next_midnight = _local_midnight(settings) + timedelta(days=1)
    return max(int((next_midnight - datetime.now(zone)).total_seconds()), 1)


def _conversation(platform: PlatformDep, session_id: str) -> int:
    conversation_id = platform.conversations.conversation_for_token(session_id)
    if conversation_id is None:
        raise HTTPException(404, "no such chat session; open a new one")
    return conversation_id


def _chat_within_limit(session_id: str, platform: PlatformDep) -> int:
    """The session's conversation, within its messages a minute (a sync dependency: the store and the limit
    storage are asked from the thread pool, never on the event loop)."""
    conversation_id = _conversation(platform, session_id)
    # Keyed by the conversation, not the session id: a shared limit store never holds a resident's secret.
    _refuse_if_limited(platform.webchat_session_limit, f"conversation:{conversation_id}", TOO_MANY_IN_CHAT)
    return conversation_id


@router.post("/sessions/{session_id}/messages", responses=ERRORS, dependencies=[Throttled])
async def send_message(
    body: ResidentMessage, platform: PlatformDep, conversation_id: Annotated[int, Depends(_chat_within_limit)]
) -> TurnOut:
    text = body.text.strip()
    if not text:
        raise HTTPException(422, "text: the message is empty")
    if len(text) > platform.settings.webchat_max_chars:
        raise HTTPException(422, f"text: at most {platform.settings.webchat_max_chars} characters, got {len(text)}")
    try:
        result: TurnResult = await platform.conversations.handle(conversation_id, text, engine_text=body.payload)
    except EngineDown:
        raise HTTPException(503, ENGINE_DOWN_MESSAGE) from None
    return TurnOut(replies=_replies(result.replies), ended=result.ended)


@router.get("/sessions/{session_id}", responses=ERRORS, dependencies=[Throttled])
def history(session_id: str, platform: PlatformDep) -> HistoryOut:
    conversation_id = _conversation(platform, session_id)
    with platform.sessions() as session:
        conversation = session.scalar(
            select(Conversation).where(Conversation.id == conversation_id).options(selectinload(Conversation.turns))
        )
        lines = [HistoryLine(speaker=t.speaker.value, text=t.text) for t in conversation.turns]
        return HistoryOut(lines=lines, ended=conversation.ended_at is not None)
