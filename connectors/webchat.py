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
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from bot.vntext import nfc
from conversations.engine import BotMessage, Button
from conversations.service import ConversationService, EngineDown, TurnResult
from ground.phones import InvalidPhone, normalize_phone
from ground.ratelimit import RateLimiter
from ground.settings import Settings
from models import Channel

ENGINE_DOWN_MESSAGE = (
    "Hệ thống đang bận, xin anh/chị thử lại sau ít phút. Tin nhắn của anh/chị đã được lưu lại. "
    "(The assistant is briefly unavailable; your message is saved and will be answered.)"
)
ERROR_CODES = (404, 409, 422, 429, 503)  # every route may answer these, in the app's error envelope
TOO_MANY_FROM_ADDRESS = (
    "Có quá nhiều yêu cầu, xin chờ một phút rồi thử lại. (Too many requests from this address; wait a minute.)"
)
TOO_MANY_IN_CHAT = "Anh/chị gửi tin hơi nhanh, xin chờ một lát. (Too many messages in this chat; wait a moment.)"
TOO_MANY_CHATS_TODAY = (
    "Số điện thoại này đã mở {cap} cuộc trò chuyện hôm nay, xin quay lại vào ngày mai. "
    "(This phone has opened {cap} chats today; please come back tomorrow.)"
)


@dataclass(frozen=True)
class WebchatLimits:
    per_address: RateLimiter  # requests a minute from one client address
    per_chat: RateLimiter  # messages a minute in one chat


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


class ChatReplies(BaseModel):
    """What the bot answered to one message of the resident, and whether the conversation has ended."""

    replies: list[ReplyOut]
    ended: bool
    seq: int = Field(0, description="the number of the conversation's latest line, for `GET ...?after=`")


class SessionOut(ChatReplies):
    session_id: str = Field(description="keep it secret: it is the key to this conversation")


class HistoryLine(BaseModel):
    speaker: str = Field(description="resident, bot, or agent (a tracer of the health centre)")
    text: str
    buttons: list[ButtonOut] = []


class HistoryOut(BaseModel):
    lines: list[HistoryLine]
    ended: bool
    seq: int = Field(description="the number of the latest line: ask `?after=` it for what comes next")
    with_a_person: bool = Field(description="a tracer of the health centre is writing (the bot is paused)")


def router(conversations: ConversationService, limits: WebchatLimits, settings: Settings) -> APIRouter:
    """The residents' chat API; every request counts against its address's limit."""
    chat = WebChat(conversations, limits, settings)
    routes = APIRouter(
        prefix="/api/v1/webchat", tags=["web chat (residents)"], dependencies=[Depends(chat.throttle_address)]
    )

    @routes.post("/sessions")
    async def open_session(body: NewSession) -> SessionOut:
        """A chat opened by phone, or from the personal link of an SMS (then it answers that campaign's outreach)."""
        return await chat.open_session(body)

    @routes.post("/sessions/{session_id}/messages")
    async def send_message(
        body: ResidentMessage, conversation_id: Annotated[int, Depends(chat.conversation_within_limit)]
    ) -> ChatReplies:
        return await chat.send_message(conversation_id, body)

    @routes.get("/sessions/{session_id}")
    def history(session_id: str, after: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> HistoryOut:
        """The conversation's lines (after line `after`): a page shows the history, then what a tracer writes."""
        transcript = conversations.transcript(chat.conversation(session_id), after)
        lines = [
            HistoryLine(speaker=line.speaker.value, text=line.text, buttons=_buttons(line.buttons))
            for line in transcript.lines
        ]
        return HistoryOut(
            lines=lines, ended=transcript.ended, seq=transcript.seq, with_a_person=transcript.with_a_person
        )

    return routes


def _buttons(buttons: tuple[Button, ...]) -> list[ButtonOut]:
    return [ButtonOut(title=b.title, payload=b.payload) for b in buttons]


def _replies(messages: list[BotMessage]) -> list[ReplyOut]:
    return [ReplyOut(text=m.text, buttons=_buttons(m.buttons)) for m in messages]


def _refuse_if_limited(limiter: RateLimiter, key: str, message: str) -> None:
    if (wait := limiter.retry_after(key)) is not None:
        raise HTTPException(429, message, headers={"Retry-After": str(int(wait) + 1)})


class WebChat:
    """What the chat's routes do, on top of the conversation service."""

    def __init__(self, conversations: ConversationService, limits: WebchatLimits, settings: Settings) -> None:
        self.conversations = conversations
        self.limits = limits
        self.settings = settings

    def throttle_address(self, request: Request) -> None:
        """A flood guard per address, generous: behind carrier NAT one address is a whole district. The client's
        address is the peer's, or the forwarded one when the peer is a trusted proxy (create_app)."""
        client = request.client.host if request.client else "unknown"
        _refuse_if_limited(self.limits.per_address, client, TOO_MANY_FROM_ADDRESS)

    def conversation(self, session_id: str) -> int:
        conversation_id = self.conversations.conversation_for_token(session_id)
        if conversation_id is None:
            raise HTTPException(404, "no such chat session; open a new one")
        return conversation_id

    def conversation_within_limit(self, session_id: str) -> int:
        """The session's conversation, within its messages a minute (a sync dependency: the store and the limit
        storage are asked from the thread pool, never on the event loop)."""
        conversation_id = self.conversation(session_id)
        # Keyed by the conversation, not the session id: a shared limit store never holds a resident's secret.
        _refuse_if_limited(self.limits.per_chat, f"conversation:{conversation_id}", TOO_MANY_IN_CHAT)
        return conversation_id

    async def open_session(self, body: NewSession) -> SessionOut:
        if body.invite:
            opening = await asyncio.to_thread(self._invited, body.invite)
        elif body.phone:
            opening = await asyncio.to_thread(self._typed_phone, body.phone, body.name)
        else:
            raise HTTPException(422, "phone: give a phone number (or the invite of a personal link)")
        try:
            result, token = await self.conversations.start(channel=Channel.WEBCHAT, token=body.invite, **opening)
        except EngineDown:
            raise HTTPException(503, ENGINE_DOWN_MESSAGE) from None
        seq = await asyncio.to_thread(self.conversations.last_seq, result.conversation_id)
        return SessionOut(session_id=token, replies=_replies(result.replies), ended=result.ended, seq=seq)

    async def send_message(self, conversation_id: int, body: ResidentMessage) -> ChatReplies:
        text = body.text.strip()
        if not text:
            raise HTTPException(422, "text: the message is empty")
        if len(text) > self.settings.webchat_max_chars:
            raise HTTPException(422, f"text: at most {self.settings.webchat_max_chars} characters, got {len(text)}")
        try:
            result: TurnResult = await self.conversations.handle(conversation_id, text, engine_text=body.payload)
        except EngineDown:
            raise HTTPException(503, ENGINE_DOWN_MESSAGE) from None
        seq = await asyncio.to_thread(self.conversations.last_seq, conversation_id)
        return ChatReplies(replies=_replies(result.replies), ended=result.ended, seq=seq)

    def _invited(self, invite: str) -> dict[str, Any]:
        """The outreach attempt a personal link was sent for; its chat is opened once (the link then resumes it)."""
        if self.conversations.conversation_for_token(invite) is not None:
            raise HTTPException(409, "this link's chat is open already: resume it with GET /sessions/{invite}")
        outreach = self.conversations.outreach.invited(invite)
        if outreach is None:
            raise HTTPException(404, "this link is unknown or has expired")
        return {"person_id": outreach.person_id, "outreach": outreach}

    def _typed_phone(self, phone: str, name: str | None) -> dict[str, Any]:
        """An unverified chat for the person of a typed phone, within the phone's chats of the day.

        Known and unknown phones take the same road (the same statements, the same answer for the same name):
        whether a number is on a list is what must not leak."""
        try:
            phone = normalize_phone(phone)
        except InvalidPhone as error:
            raise HTTPException(422, f"phone: {error}") from None
        cap = self.settings.webchat_sessions_per_phone_per_day
        person_id, opened_today = self.conversations.person_for_typed_phone(phone, _local_midnight(self.settings))
        if opened_today >= cap:
            raise HTTPException(
                429,
                TOO_MANY_CHATS_TODAY.format(cap=cap),
                headers={"Retry-After": str(_seconds_to_midnight(self.settings))},
            )
        return {"person_id": person_id, "phone_verified": False, "claimed_name": _claimed(name)}


def _claimed(name: str | None) -> str | None:
    """The typed name as the greeting will say it: one Unicode form, single spaces, or None."""
    words = nfc(name).split() if name else []
    return " ".join(words) or None


def _local_midnight(settings: Settings) -> datetime:
    zone = ZoneInfo(settings.timezone)
    return datetime.combine(datetime.now(zone).date(), time(), zone)


def _seconds_to_midnight(settings: Settings) -> int:
    zone = ZoneInfo(settings.timezone)
    next_midnight = _local_midnight(settings) + timedelta(days=1)
    return max(int((next_midnight - datetime.now(zone)).total_seconds()), 1)
