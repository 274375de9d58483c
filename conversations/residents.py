"""The people residents are in the store, as channels that learn a phone (typed into a page, shared on Zalo) find
them."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.provinces import PROVINCES
from models import AuditLog, Person, VaccinationRecord

INSERT_OF_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def person_with_phone(session: Session, phone: str) -> int:
    """The resident with this phone (E.164); someone new is added (their province is unknown until a list names
    them).

    Insert-if-absent, then read: one road for known and unknown phones, and two requests at once for a new phone
    meet on one row instead of one failing on the unique phone."""
    insert = INSERT_OF_DIALECT[session.get_bind().dialect.name]
    session.execute(insert(Person).values(phone=phone).on_conflict_do_nothing(index_elements=[Person.phone]))
    return session.scalar(select(Person.id).where(Person.phone == phone))


def claim_province(session: Session, person_id: int, staying_at: Any, conversation_id: int) -> None:
    """A resident nobody's province follows says where they are staying: their province (and ward) become the
    person's, so that their alerts reach that province's team instead of national users only. A province already
    on file is never moved by what a resident types (only a list or a national user moves people). Audited."""
    if not isinstance(staying_at, dict) or staying_at.get("province_code") not in PROVINCES:
        return
    person = session.get(Person, person_id)
    if person is None or person.province_code is not None:
        return
    person.province_code = staying_at["province_code"]
    person.province = str(staying_at.get("province") or PROVINCES[person.province_code])[:100]
    person.ward = (str(staying_at["ward"])[:100] or None) if staying_at.get("ward") else person.ward
    session.add(
        AuditLog(
            user_id=None,
            action="person.province_claimed",
            object_type="person",
            object_ids=[person_id],
            detail={"by": "resident", "conversation_id": conversation_id, "said": staying_at},
        )
    )


def recorded_doses(session: Session, person_id: int) -> int | None:
    """The most vaccine doses the vaccination platform records for the person (doses only add up), or None when it
    records none: the dialogue confirms them instead of asking."""
    doses = session.scalar(select(func.max(VaccinationRecord.doses)).where(VaccinationRecord.person_id == person_id))
    return doses or None
