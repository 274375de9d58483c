"""Residents and the contact (F1) lists they arrive on."""

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamped, utcnow


class Person(Timestamped, Base):
    """One resident, keyed by phone: every list, campaign and channel meets on this row."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True, comment="E.164, e.g. +84912345678")
    full_name: Mapped[str | None] = mapped_column(String(200))
    birth_year: Mapped[int | None]
    address: Mapped[str | None] = mapped_column(String(500))
    province_code: Mapped[str | None] = mapped_column(String(8), index=True, comment="scopes who may see the row")
    province: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100), comment="optional: districts were abolished in 2025")
    ward: Mapped[str | None] = mapped_column(String(100), index=True)
    confirmed_case_on: Mapped[date | None] = mapped_column(
        comment="first positive sample's date: a case (F0) since, no longer an F1 to follow"
    )

    memberships: Mapped[list["ContactListMember"]] = relationship(back_populates="person")


class ContactList(Base):
    """An imported F1 list, e.g. today's close contacts of one source case."""

    __tablename__ = "contact_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    province_code: Mapped[str | None] = mapped_column(String(8), index=True)
    source_case: Mapped[str | None] = mapped_column(String(100), comment="the F0 code the contacts are traced from")
    exposure_date: Mapped[date | None]
    source_file: Mapped[str | None] = mapped_column(String(500), comment="the file's name as uploaded")
    rejects_file: Mapped[str | None] = mapped_column(String(500), comment="CSV of the rows refused, with reasons")
    imported: Mapped[int | None] = mapped_column(comment="people new to the store (None: imported before counts)")
    duplicates: Mapped[int | None] = mapped_column(comment="rows merged into another row of the same person")
    rejected: Mapped[int | None] = mapped_column(comment="rows refused, each in the rejects file with its reason")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    members: Mapped[list["ContactListMember"]] = relationship(back_populates="contact_list")


class ContactListMember(Base):
    """A person's place on a list: a person may be on several lists, each with its own exposure."""

    __tablename__ = "contact_list_members"
    __table_args__ = (UniqueConstraint("contact_list_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_list_id: Mapped[int] = mapped_column(ForeignKey("contact_lists.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    exposure_date: Mapped[date | None]
    source_case: Mapped[str | None] = mapped_column(String(100))
    source_line: Mapped[int | None] = mapped_column(comment="line in the imported file")

    contact_list: Mapped[ContactList] = relationship(back_populates="members")
    person: Mapped[Person] = relationship(back_populates="memberships")
