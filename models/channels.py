"""What the channels must remember between webhooks: Zalo followers, provider tokens, events already handled."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamped, utcnow
from models.people import Person


class ZaloUser(Timestamped, Base):
    """A Zalo user as the Official Account knows them (ids are strings: they exceed 2^53)."""

    __tablename__ = "zalo_users"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True, comment="the OA-scoped user id (sender.id)")
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True, comment="linked by the phone they shared"
    )
    following: Mapped[bool] = mapped_column(default=False)
    last_message_at: Mapped[datetime | None] = mapped_column(
        comment="the resident's last message: the OA may reply within the reply window after it"
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), comment="the conversation their messages go to"
    )

    person: Mapped[Person | None] = relationship()


class ProviderToken(Base):
    """An access token of a provider's API, with its rotating refresh token (Zalo OA)."""

    __tablename__ = "provider_tokens"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundEvent(Base):
    """A webhook already handled, so a provider's retry of it changes nothing (Zalo msg_id, Twilio callbacks)."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("source", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
