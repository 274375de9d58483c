"""What the national platforms hold about a person: laboratory test results (the e-testing platform's) and vaccine
doses (the vaccination platform's)."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, enum_column, utcnow
from models.people import Person


class TestResult(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    PENDING = "pending"


class LabResult(Base):
    """One sample's result as a laboratory reported it. Never changed or removed: a later result is a new row."""

    __tablename__ = "lab_results"
    __table_args__ = (UniqueConstraint("person_id", "sample_date", "lab", "result"),)  # an import read twice adds none

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    sample_date: Mapped[date]
    result: Mapped[TestResult] = mapped_column(enum_column(TestResult, 16))
    lab: Mapped[str] = mapped_column(String(200))
    source_file: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    person: Mapped[Person] = relationship()


class VaccinationRecord(Base):
    """The doses the vaccination platform records for a person on one day of its export. Never changed or removed:
    the dialogue confirms the highest count on record instead of asking it."""

    __tablename__ = "vaccination_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    doses: Mapped[int]
    last_dose_date: Mapped[date | None] = mapped_column(comment="none when no dose")
    source_file: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
