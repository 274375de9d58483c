"""Conversations and their transcripts, whatever the channel."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.auth import User
from models.base import Base, enum_column, utcnow
from models.people import Person


class Channel(StrEnum):
    VOICE = "voice"
    ZALO = "zalo"
    ZNS = "zns"
    SMS = "sms"
    WEBCHAT = "webchat"


class Speaker(StrEnum):
    RESIDENT = "resident"
    BOT = "bot"
    AGENT = "agent"  # a human tracer who took over


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    outreach_id: Mapped[int | None] = mapped_column(ForeignKey("outreach_attempts.id", ondelete="SET NULL"))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    engine_sender_id: Mapped[str] = mapped_column(String(64), unique=True, comment="the tracker id in the engine")
    external_ref: Mapped[str | None] = mapped_column(
        String(64), unique=True, comment="the provider's id of this session: the Twilio CallSid of a phone call"
    )
    resident_token_hash: Mapped[str | None] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the resident's secret link or web chat session id"
    )
    phone_verified: Mapped[bool] = mapped_column(
        default=True,
        comment="false when the resident only typed the phone (web chat): nothing proves they hold it. True for a "
        "call to it, a personal link sent to it, or a Zalo user who shared it",
    )
    engine_state: Mapped[dict[str, Any] | None] = mapped_column(
        JSON,
        comment="the engine's slots and active form after the last turn: restores a conversation the engine lost",
    )
    taken_over_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"),
        comment="a tracer writing to the resident as a person: the bot is paused until they hand back",
    )
    taken_over_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    person: Mapped[Person] = relationship()
    taken_over_by: Mapped[User | None] = relationship()
    turns: Mapped[list["Turn"]] = relationship(
        back_populates="conversation", order_by="Turn.seq", cascade="all, delete-orphan"
    )


class Turn(Base):
    """One line of the transcript."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # Webhooks are retried by Twilio and Zalo: a turn keyed on CallSid+sequence or msg_id lands once.
        UniqueConstraint("conversation_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int]
    speaker: Mapped[Speaker] = mapped_column(enum_column(Speaker))
    text: Mapped[str] = mapped_column(Text)
    engine_text: Mapped[str | None] = mapped_column(
        Text, comment="what the engine was given when it differs from what was said (a button's payload)"
    )
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    asr_confidence: Mapped[float | None]
    audio_ref: Mapped[str | None] = mapped_column(String(500))
    intent: Mapped[str | None] = mapped_column(String(64))
    buttons: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON,
        comment="bot turns: quick answers offered [{title, payload}]; keypad digits and Zalo taps map to them",
    )
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(
        comment="resident turns: when the engine answered it; NULL = kept while the engine was down, to replay"
    )

    conversation: Mapped[Conversation] = relationship(back_populates="turns")
