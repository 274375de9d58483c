"""Community COVID teams and the instructions broadcast to them over Zalo: who got each message, read it, answered."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_column, utcnow


class Team(Base):
    """A community team of a province (a ward's COVID team, a village's volunteers)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    province_code: Mapped[str | None] = mapped_column(String(8), index=True, comment="NULL: a national team")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list["TeamMember"]] = relationship(
        back_populates="team", order_by="TeamMember.name", cascade="all, delete-orphan"
    )


# One team of a name per province, and one national team of a name (NULL provinces would never collide).
Index("uq_teams_scope_name", func.coalesce(Team.province_code, ""), Team.name, unique=True)


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(16), comment="E.164: ZNS goes here")
    zalo_user_id: Mapped[str | None] = mapped_column(
        String(64), comment="the member's id as the OA knows it, when the team list gives it"
    )

    team: Mapped[Team] = relationship(back_populates="members")


class Broadcast(Base):
    """One message to a team. Never changed: a correction is a new broadcast."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship()
    deliveries: Mapped[list["BroadcastDelivery"]] = relationship(
        back_populates="broadcast", order_by="BroadcastDelivery.member_name"
    )


class DeliveryStatus(StrEnum):
    """queued -> sending (a worker claimed it) -> sent | failed, or back to queued to be tried again later (Zalo out
    of reach, a quota, an error of ours); queued -> canceled (the broadcast canceled, the member left the team).
    failed -> queued when someone sends the failed ones again. What happens after sending is in the timestamps
    (received_at, read_at, answered_at): Zalo's receipts may arrive in any order, or not at all."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELED = "canceled"


class BroadcastDelivery(Base):
    """A broadcast to one member: by OA message within the reply window, or by ZNS with a personal link."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (UniqueConstraint("broadcast_id", "member_phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("team_members.id", ondelete="SET NULL"))
    member_name: Mapped[str] = mapped_column(String(100), comment="as it was when sent")
    member_phone: Mapped[str] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus, 16), default=DeliveryStatus.QUEUED)
    claimed_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32), comment="the claiming worker's: its writes need it")
    tries: Mapped[int] = mapped_column(default=0, comment="sends that failed for a reason that may pass")
    next_attempt_at: Mapped[datetime | None] = mapped_column(comment="a queued delivery waits until then")
    channel: Mapped[str | None] = mapped_column(String(16), comment="zalo (OA message) or zns")
    zalo_user_id: Mapped[str | None] = mapped_column(String(64), index=True, comment="the OA message's recipient")
    provider_ref: Mapped[str | None] = mapped_column(String(64), index=True, comment="Zalo's message_id or msg_id")
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, comment="the ZNS link's key, hashed")
    error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]

    broadcast: Mapped[Broadcast] = relationship(back_populates="deliveries")
    replies: Mapped[list["BroadcastReply"]] = relationship(order_by="BroadcastReply.id")


class BroadcastReply(Base):
    """What a member answered, by Zalo or on the linked page; each message once."""

    __tablename__ = "broadcast_replies"
    __table_args__ = (UniqueConstraint("delivery_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("broadcast_deliveries.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(16), comment="zalo or link")
    external_id: Mapped[str | None] = mapped_column(String(64), comment="Zalo's msg_id: a retried event adds none")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
