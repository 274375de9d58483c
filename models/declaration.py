"""The health declaration: one per conversation, written answer by answer, and the alerts it raises."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.auth import User
from models.base import Base, Timestamped, enum_column, utcnow
from models.conversation import Channel, Conversation
from models.duty import AlertNotification
from models.national import LabResult
from models.people import Person


class DeclarationStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    REFUSED = "refused"
    WRONG_PERSON = "wrong_person"
    CALLBACK_REQUESTED = "callback_requested"
    UNREACHABLE = "unreachable"


class AlertLevel(StrEnum):
    NONE = "none"
    WATCH = "watch"
    URGENT = "urgent"


class Declaration(Timestamped, Base):
    __tablename__ = "declarations"
    __table_args__ = (
        Index("ix_declarations_created_at", "created_at"),  # the dashboard counts a day's answers
        Index("ix_declarations_alert_level_updated_at", "alert_level", "updated_at"),  # urgent first, newest first
        # a campaign's follow-up day's declarations (its outcome, progress, the export)
        Index("ix_declarations_campaign_person_day", "campaign_id", "person_id", "follow_up_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), unique=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    follow_up_day: Mapped[int | None]
    status: Mapped[DeclarationStatus] = mapped_column(
        enum_column(DeclarationStatus), default=DeclarationStatus.IN_PROGRESS, index=True
    )
    identity_confirmed: Mapped[bool | None]
    symptoms_asked: Mapped[bool] = mapped_column(default=False)
    symptoms: Mapped[list[str]] = mapped_column(JSON, default=list)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    symptom_onset: Mapped[date | None]
    contact_with_case: Mapped[str | None] = mapped_column(String(8))
    test_result: Mapped[str | None] = mapped_column(String(16))
    test_date: Mapped[date | None]
    vaccine_doses: Mapped[int | None]
    at_registered_address: Mapped[bool | None]
    needs: Mapped[str | None] = mapped_column(Text)
    callback_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(
        String(16), comment="resident, or relative when someone answered for them (a parent for a child)"
    )
    alert_level: Mapped[AlertLevel] = mapped_column(enum_column(AlertLevel), default=AlertLevel.NONE, index=True)
    alert_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)

    person: Mapped[Person] = relationship()
    conversation: Mapped[Conversation | None] = relationship()
    changes: Mapped[list["DeclarationChange"]] = relationship(
        back_populates="declaration", order_by="DeclarationChange.id", viewonly=True
    )
    corrections: Mapped[list["DeclarationChange"]] = relationship(
        primaryjoin="and_(Declaration.id == foreign(DeclarationChange.declaration_id), "
        "DeclarationChange.source == 'correction')",
        order_by="DeclarationChange.id",
        viewonly=True,
    )


class ChangeSource(StrEnum):
    RESIDENT = "resident"  # an answer the resident gave (the turn that gave it, when the engine answered one)
    CORRECTION = "correction"  # a person of the tracing team corrected it, with a reason


class DeclarationChange(Base):
    """Every value a declaration's field has taken, and where it came from: the declaration holds the latest, this
    history keeps every one, the resident's own answers beside any correction of them (never overwritten)."""

    __tablename__ = "declaration_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[Any] = mapped_column(JSON, nullable=True, comment="the field's value as JSON (dates as ISO text)")
    replaced: Mapped[Any] = mapped_column(JSON, nullable=True, comment="the value it replaced, as JSON")
    source: Mapped[ChangeSource] = mapped_column(enum_column(ChangeSource, 16))
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    declaration: Mapped[Declaration] = relationship(back_populates="changes")
    user: Mapped[User | None] = relationship()


class Alert(Base):
    """Something a tracing team must act on (an urgent one within minutes)."""

    __tablename__ = "alerts"
    __table_args__ = (CheckConstraint("(declaration_id IS NULL) <> (lab_result_id IS NULL)", name="one_source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int | None] = mapped_column(
        ForeignKey("declarations.id", ondelete="CASCADE"), index=True, comment="what the resident said; or"
    )
    lab_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("lab_results.id", ondelete="CASCADE"), index=True, comment="what a laboratory reported"
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    level: Mapped[AlertLevel] = mapped_column(enum_column(AlertLevel), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(index=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    next_notification_at: Mapped[datetime | None] = mapped_column(
        comment="urgent alerts: when the roster is told (again) unless acknowledged; NULL = not yet told"
    )
    acknowledgement_note: Mapped[str | None] = mapped_column(Text, comment="what the tracer who took it did or will do")

    declaration: Mapped[Declaration | None] = relationship()
    lab_result: Mapped[LabResult | None] = relationship()
    person: Mapped[Person] = relationship()
    acknowledged_by: Mapped[User | None] = relationship()
    notifications: Mapped[list["AlertNotification"]] = relationship(order_by="AlertNotification.id", viewonly=True)
