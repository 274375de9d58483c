"""Web chat: the resident-facing channel of the browser page at /chat (no user token; the session id is the key).

POST /api/v1/webchat/sessions                 {"phone": "0912 345 678", "name": "An"}
     -> {"session_id": "...", "replies": [...], "ended": false}
POST /api/v1/webchat/sessions/{id}/messages   {"text": "tôi sốt 38 độ 5"}
     -> {"replies": [{"text": "...", "buttons": [{"title": "...", "payload": "..."}]}], "ended": false}
GET  /api/v1/webchat/sessions/{id}            -> the conversation so far (to restore the page)
"""

import secrets

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from bot.client import BotMessage
from models import AttemptStatus, Channel, Conversation, OutreachAttempt, Person
from outreach.auth import hash_token
from outreach.conversations import EngineDown, TurnResult
from outreach.deps import PlatformDep
from outreach.phones import InvalidPhone, normalize_phone
from outreach.ratelimit import RateLimiter
from outreach.schemas import ErrorOut

router = APIRouter(prefix="/api/v1/webchat", tags=["web chat (residents)"])

ENGINE_DOWN_MESSAGE = (
    "Hệ thống đang bận, xin anh/chị thử lại sau ít phút. Tin nhắn của anh/chị đã được lưu lại. "
    "(The assistant is briefly unavailable; your message is saved and will be answered.)"
)
ERRORS = {code: {"model": ErrorOut} for code in (404, 409, 422, 429, 503)}


class NewSession(BaseModel):
    phone: str | None = Field(default=None, examples=["0912 345 678"], description="any common Vietnamese form")
    name: str | None = Field(default=None, max_length=200, description="used when the store does not know it")
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
    return [ReplyOut(text=m.text, buttons=[ButtonOut(title=b.title, payload=b.payload) for b in m.buttons])
            for m in messages]  # fmt: skip


def _refuse_if_limited(limiter: RateLimiter, key: str, message: str) -> None:
    if (wait := limiter.retry_after(key)) is not None:
        raise HTTPException(429, message, headers={"Retry-After": str(int(wait) + 1)})


def _throttle(platform: PlatformDep, request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    _refuse_if_limited(platform.webchat_ip_limit, client, "too many requests from this address; wait a minute")


Throttled = Depends(_throttle)


@router.post("/sessions", responses=ERRORS, dependencies=[Throttled])
async def open_session(body: NewSession, platform: PlatformDep) -> SessionOut:
    """A chat opened by phone, or from the personal link of an SMS (then it answers that campaign's outreach)."""
    if body.invite:
        target = _invited(platform, body.invite)
    elif body.phone:
        try:
            target = {"person_id": _person_for(platform, normalize_phone(body.phone), body.name)}
        except InvalidPhone as error:
            raise HTTPException(422, f"phone: {error}") from None
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
        return {"person_id": attempt.person_id, "campaign_id": attempt.campaign_id, "outreach_id": attempt.id,
                "follow_up_day": attempt.follow_up_day}  # fmt: skip


def _person_for(platform: PlatformDep, phone: str, name: str | None) -> int:
    """The resident with this phone; someone new is added (their province is unknown until a list names it)."""
    with platform.sessions.begin() as session:
        person = session.scalar(select(Person).where(Person.phone == phone))
        if person is None:
            person = Person(phone=phone, full_name=(name or "").strip() or None)
            session.add(person)
            session.flush()
        elif not person.full_name and name and name.strip():
            person.full_name = name.strip()
        return person.id


def _conversation(platform: PlatformDep, session_id: str) -> int:
    conversation_id = platform.conversations.conversation_for_token(session_id)
    if conversation_id is None:
        raise HTTPException(404, "no such chat session; open a new one")
    return conversation_id


@router.post("/sessions/{session_id}/messages", responses=ERRORS, dependencies=[Throttled])
async def send_message(session_id: str, body: ResidentMessage, platform: PlatformDep) -> TurnOut:
    text = body.text.strip()
    if not text:
        raise HTTPException(422, "text: the message is empty")
    if len(text) > platform.settings.webchat_max_chars:
        raise HTTPException(422, f"text: at most {platform.settings.webchat_max_chars} characters, got {len(text)}")
    _refuse_if_limited(platform.webchat_session_limit, session_id, "too many messages in this chat; wait a moment")
    conversation_id = _conversation(platform, session_id)
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
