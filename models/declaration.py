"""The health declaration: one per conversation, written answer by answer, and the alerts it raises."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamped, enum_column, utcnow
from models.conversation import Channel, Conversation
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


def _iso_datetime(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _iso_date(value: date | None) -> str | None:
    return value.isoformat() if value else None


class Declaration(Timestamped, Base):
    __tablename__ = "declarations"

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
    alert_level: Mapped[AlertLevel] = mapped_column(enum_column(AlertLevel), default=AlertLevel.NONE, index=True)
    alert_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)

    person: Mapped[Person] = relationship()
    conversation: Mapped[Conversation | None] = relationship()

    def as_document(self) -> dict[str, Any]:
        """The declaration exactly as ../shared/declaration.schema.json describes it."""
        person = self.person
        return {
            "id": self.id,
            "person": {
                "phone": person.phone,
                "full_name": person.full_name,
                "birth_year": person.birth_year,
                "province": person.province or person.province_code,
                "ward": person.ward,
            },
            "campaign_id": self.campaign_id,
            "conversation_id": self.conversation_id,
            "channel": self.channel.value,
            "follow_up_day": self.follow_up_day,
            "status": self.status.value,
            "identity_confirmed": self.identity_confirmed,
            "symptoms_asked": self.symptoms_asked,
            "symptoms": list(self.symptoms or []),
            "temperature_c": self.temperature_c,
            "symptom_onset": _iso_date(self.symptom_onset),
            "contact_with_case": self.contact_with_case,
            "test_result": self.test_result,
            "test_date": _iso_date(self.test_date),
            "vaccine_doses": self.vaccine_doses,
            "at_registered_address": self.at_registered_address,
            "needs": self.needs,
            "callback_at": _iso_datetime(self.callback_at),
            "alert": {"level": self.alert_level.value, "reasons": list(self.alert_reasons or [])},
            "created_at": _iso_datetime(self.created_at),
            "updated_at": _iso_datetime(self.updated_at),
        }


class Alert(Base):
    """Something a tracing team must act on (an urgent one within minutes)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declarations.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    level: Mapped[AlertLevel] = mapped_column(enum_column(AlertLevel), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    declaration: Mapped[Declaration] = relationship()
