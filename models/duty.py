"""Who is on duty to answer urgent alerts, and every message that told them of one."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_column, utcnow


class RosterMember(Base):
    """A tracer who may be called on for a province's urgent alerts, in the order of `position`."""

    __tablename__ = "roster_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str | None] = mapped_column(
        String(8), index=True, comment="NULL: residents of no known province"
    )
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(16), comment="E.164: SMS goes here")
    zalo_user_id: Mapped[str | None] = mapped_column(String(64), comment="the member's id as the OA knows it")
    position: Mapped[int] = mapped_column(default=1, comment="who is told first (lowest), then next on escalation")
    on_duty: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationStatus(StrEnum):
    SENT = "sent"  # the provider took it
    FAILED = "failed"  # refused by every channel the member has: the next member is told at once


class AlertNotification(Base):
    """One message telling a roster member of an urgent alert."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("roster_members.id", ondelete="SET NULL"))
    member_name: Mapped[str] = mapped_column(String(100), comment="as it was when sent")
    channel: Mapped[str] = mapped_column(String(16), comment="sms or zalo")
    status: Mapped[NotificationStatus] = mapped_column(enum_column(NotificationStatus, 16))
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    member: Mapped[RosterMember | None] = relationship()
