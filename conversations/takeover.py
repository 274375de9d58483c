"""A tracer takes over a live web chat or Zalo conversation: the bot pauses for it (the resident's messages are kept
and shown, not sent to the engine), the tracer writes as a person (`agent` turns), and on hand-back the bot asks
again the question the form was at, so the declaration goes on where it stopped."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from access.auth import CAN_HANDLE_ALERTS, audit, in_scope
from access.errors import Conflict, Forbidden, InvalidValue, NotFound
from models import Channel, Conversation, Speaker, Turn, User, utcnow

CAN_TAKE_OVER = CAN_HANDLE_ALERTS
TEXT_CHANNELS = (Channel.WEBCHAT, Channel.ZALO)  # a call cannot be taken over in writing
MAX_AGENT_CHARS = 2000
BACK_TO_THE_BOT = "Cảm ơn anh/chị. Tổng đài tự động xin hỏi tiếp ạ:"


@dataclass(frozen=True)
class Said:
    """A line the platform must also deliver on the conversation's channel (Zalo: an OA message)."""

    conversation_id: int
    channel: Channel
    text: str
    buttons: list[dict[str, str]]


def _live(session: Session, user: User, conversation_id: int) -> Conversation:
    if user.role not in CAN_TAKE_OVER:
        raise Forbidden("Vai trò của bạn không tiếp nhận được cuộc trò chuyện.")
    stmt = in_scope(select(Conversation).join(Conversation.person), user).options(contains_eager(Conversation.person))
    conversation = session.scalar(stmt.where(Conversation.id == conversation_id))
    if conversation is None:
        raise NotFound.in_scope("conversation", conversation_id)
    if conversation.ended_at is not None:
        raise Conflict("Cuộc trò chuyện đã kết thúc.")
    return conversation


def take_over(session: Session, user: User, conversation_id: int, client_ip: str | None = None) -> Conversation:
    conversation = _live(session, user, conversation_id)
    if conversation.channel not in TEXT_CHANNELS:
        raise Conflict("Chỉ tiếp nhận được cuộc trò chuyện web chat hoặc Zalo.")
    if conversation.taken_over_by_id not in (None, user.id):
        raise Conflict("Một cán bộ khác đang tiếp nhận cuộc trò chuyện này.")
    conversation.taken_over_by_id, conversation.taken_over_at = user.id, utcnow()
    audit(session, user, "conversation.take_over", "conversation", [conversation.id], client_ip)
    return conversation


def write(session: Session, user: User, conversation_id: int, text: str, client_ip: str | None = None) -> Said:
    """The tracer's words to the resident, kept in the transcript as an `agent` turn."""
    text = text.strip()
    if not text:
        raise InvalidValue("text", "tin nhắn trống")
    if len(text) > MAX_AGENT_CHARS:
        raise InvalidValue("text", f"tối đa {MAX_AGENT_CHARS} ký tự")
    conversation = _live(session, user, conversation_id)
    if conversation.taken_over_by_id is None:
        raise Conflict("Tiếp nhận cuộc trò chuyện trước khi nhắn cho người dân.")
    _add_turn(session, conversation, Speaker.AGENT, text)
    audit(session, user, "conversation.write", "conversation", [conversation.id], client_ip)
    return Said(conversation.id, conversation.channel, text, [])


def hand_back(session: Session, user: User, conversation_id: int, client_ip: str | None = None) -> Said | None:
    """The bot takes the conversation again and asks its pending question anew (None: it had asked nothing)."""
    conversation = _live(session, user, conversation_id)
    if conversation.taken_over_by_id is None:
        return None
    conversation.taken_over_by_id, conversation.taken_over_at = None, None
    audit(session, user, "conversation.hand_back", "conversation", [conversation.id], client_ip)
    question = session.execute(
        select(Turn.text, Turn.buttons)
        .where(Turn.conversation_id == conversation.id, Turn.speaker == Speaker.BOT)
        .order_by(Turn.seq.desc())
        .limit(1)
    ).first()
    if question is None:
        return None
    text = f"{BACK_TO_THE_BOT}\n{question.text}"
    _add_turn(session, conversation, Speaker.BOT, text, question.buttons)
    return Said(conversation.id, conversation.channel, text, question.buttons or [])


def _add_turn(
    session: Session, conversation: Conversation, speaker: Speaker, text: str, buttons: list | None = None
) -> None:
    seq = (session.scalar(select(func.max(Turn.seq)).where(Turn.conversation_id == conversation.id)) or 0) + 1
    session.add(
        Turn(
            conversation_id=conversation.id,
            seq=seq,
            speaker=speaker,
            text=text,
            buttons=buttons or None,
            channel=conversation.channel,
            processed_at=utcnow(),
        )
    )
    conversation.last_activity_at = utcnow()
    session.flush()
