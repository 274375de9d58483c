"""Taking over a live conversation from the declaration page: the bot pauses, the tracer writes, the bot goes on.
The page follows the conversation live by asking for the lines after the ones it shows."""

import logging
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from access.auth import CAN_READ_TRANSCRIPTS, audit
from access.errors import Forbidden, NotFound
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, FormDep, SignedDep
from app.deps import PlatformDep, SessionDep
from app.platform import Platform
from app.schemas import Id
from connectors.zalo.client import ZaloError
from conversations import takeover
from conversations.reading import read_transcript
from conversations.service import bot_message
from models import Channel, Declaration, Turn
from voice.recordings import ROUTE as RECORDINGS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _back(session: Session, conversation_id: int, note: str = "") -> Response:
    declaration_id = session.scalar(select(Declaration.id).where(Declaration.conversation_id == conversation_id))
    return RedirectResponse(f"/console/declarations/{declaration_id}{note}#transcript", status_code=303)


def _deliver(platform: Platform, said: takeover.Said | None) -> bool:
    """Send a line on the conversation's channel where the resident does not fetch it (Zalo); False when refused.
    A web chat page fetches new lines itself."""
    if said is None or said.channel != Channel.ZALO:
        return True
    message = bot_message(said.text, said.buttons)
    try:
        anyio.from_thread.run(platform.zalo_conversations.say, said.conversation_id, message)
    except ZaloError as error:
        log.warning("conversation %s: Zalo refused a line (%s)", said.conversation_id, error)
        return False
    return True


@router.post("/conversations/{conversation_id}/take-over")
def take_over(conversation_id: Id, signed: FormDep, session: SessionDep, ip: ClientIpDep) -> Response:
    takeover.take_over(session, signed.user, conversation_id, ip)
    return _back(session, conversation_id)


@router.post("/conversations/{conversation_id}/messages")
def write(
    conversation_id: Id,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    text: Annotated[str, Form(max_length=takeover.MAX_AGENT_CHARS * 2)] = "",
) -> Response:
    said = takeover.write(session, signed.user, conversation_id, text, ip)
    session.commit()  # kept before it is sent: the transcript holds what the tracer wrote, whatever Zalo says
    delivered = _deliver(platform, said)
    return _back(session, conversation_id, "" if delivered else "?undelivered=1")


@router.post("/conversations/{conversation_id}/hand-back")
def hand_back(
    conversation_id: Id, signed: FormDep, session: SessionDep, platform: PlatformDep, ip: ClientIpDep
) -> Response:
    said = takeover.hand_back(session, signed.user, conversation_id, ip)
    session.commit()
    delivered = _deliver(platform, said)
    return _back(session, conversation_id, "" if delivered else "?undelivered=1")


@router.get("/conversations/{conversation_id}/lines")
def lines(
    request: Request,
    conversation_id: Id,
    signed: SignedDep,
    session: SessionDep,
    ip: ClientIpDep,
    after: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """The transcript's lines after line `after`, as HTML the page appends (a live transcript)."""
    if signed.user.role not in CAN_READ_TRANSCRIPTS:
        raise Forbidden("Vai trò của bạn không xem được hội thoại.")
    conversation, _ = read_transcript(session, signed.user, conversation_id, ip, audited=False)
    new = [turn for turn in conversation.turns if turn.seq > after]
    if new:
        audit(session, signed.user, "transcript.read", "conversation", [conversation.id], ip, {"after": after})
    views = request.app.state.console_views
    return JSONResponse(
        {
            "lines": [{"seq": turn.seq, "html": views.fragment("turn.html", {"turn": turn})} for turn in new],
            "with_a_person": conversation.taken_over_by_id is not None,
            "ended": conversation.ended_at is not None,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/recordings/{name}")
def recording(name: str, signed: SignedDep, session: SessionDep, platform: PlatformDep, ip: ClientIpDep) -> Response:
    """A resident's recorded answer, for users who may read its transcript (the same scope); audited."""
    if signed.user.role not in CAN_READ_TRANSCRIPTS:
        raise Forbidden("Vai trò của bạn không xem được hội thoại.")
    url = f"{RECORDINGS}/{name}"
    conversation_id = session.scalar(select(Turn.conversation_id).where(Turn.audio_ref == url).limit(1))
    if conversation_id is None:
        raise NotFound.in_scope("recording", name)
    read_transcript(session, signed.user, conversation_id, ip, audited=False)  # refuses another province's
    audit(session, signed.user, "recording.read", "conversation", [conversation_id], ip, {"recording": name})
    path = platform.recordings.file(name)
    if path is None:
        return PlainTextResponse("Bản ghi âm này đã hết thời hạn lưu giữ và đã được xoá.", status_code=410)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, no-store"})
