"""People between provinces: the one way a person leaves a province's scope is a national user moving them, on the
record (an import never does it for a provincial user; see campaigns/importer.py)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from access.auth import audit, check_moves_people, in_scope
from access.errors import InvalidValue, NotFound
from campaigns.provinces import PROVINCES
from ground.phones import InvalidPhone, normalize_phone
from models import Person, User


def person_in_scope(session: Session, user: User, person_id: int) -> Person:
    person = session.scalar(in_scope(select(Person).where(Person.id == person_id), user))
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def person_by_phone(session: Session, user: User, phone: str) -> Person:
    """The person of a phone in any common form (0912 345 678, 84912345678, +84...)."""
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as error:
        raise InvalidValue("phone", str(error)) from None
    person = session.scalar(in_scope(select(Person).where(Person.phone == e164), user))
    if person is None:
        raise NotFound(f"no person with phone {e164}")
    return person


def move_person(
    session: Session, user: User, person: Person, code: str, reason: str | None, client_ip: str | None = None
) -> str | None:
    """Give `person` to province `code`, written to the audit log; returns the province before. Moving a person to
    the province they are in changes nothing and records nothing."""
    check_moves_people(user)
    if code not in PROVINCES:
        raise InvalidValue(
            "province_code", f"unknown province code '{code}' (two-digit GSO code, e.g. 01 Hà Nội, 27 Bắc Ninh)"
        )
    before = person.province_code
    if before != code:
        person.province_code, person.province = code, PROVINCES[code]
        detail = {"from": before, "to": code, "reason": reason}
        audit(session, user, "person.move", "person", [person.id], client_ip, detail)
    return before
