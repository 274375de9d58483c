"""Counts of the commune dashboard kept as each day settles, so that a view never recounts history."""

from datetime import date, datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class AreaDay(Base):
    """One area's figures for one past day (local dates). '' stands for an unknown district or ward, so that the
    unique key holds on every database."""

    __tablename__ = "area_days"
    __table_args__ = (UniqueConstraint("day", "province_code", "district", "ward"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    province_code: Mapped[str] = mapped_column(String(8), comment="'' = residents of no known province")
    district: Mapped[str] = mapped_column(String(100))
    ward: Mapped[str] = mapped_column(String(100))
    reached: Mapped[int] = mapped_column(default=0, comment="people who answered (a declaration that day)")
    symptomatic: Mapped[int] = mapped_column(default=0, comment="people whose declaration that day raised an alert")
    urgent: Mapped[int] = mapped_column(default=0, comment="people whose declaration that day was urgent")
    under_follow_up: Mapped[int] = mapped_column(default=0, comment="Go.Data final status at the end of the day")
    follow_up_completed: Mapped[int] = mapped_column(default=0)
    lost_to_follow_up: Mapped[int] = mapped_column(default=0)


class SettledDay(Base):
    """A day whose figures are kept in area_days (every area's, in one transaction)."""

    __tablename__ = "settled_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    settled_at: Mapped[datetime] = mapped_column(default=utcnow)
