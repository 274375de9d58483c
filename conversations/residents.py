"""The people residents are in the store, as channels that learn a phone (typed into a page, shared on Zalo) find
them."""

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Person

INSERT_OF_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def person_with_phone(session: Session, phone: str) -> int:
    """The resident with this phone (E.164); someone new is added (their province is unknown until a list names
    them).

    Insert-if-absent, then read: one road for known and unknown phones, and two requests at once for a new phone
    meet on one row instead of one failing on the unique phone."""
    insert = INSERT_OF_DIALECT[session.get_bind().dialect.name]
    session.execute(insert(Person).values(phone=phone).on_conflict_do_nothing(index_elements=[Person.phone]))
    return session.scalar(select(Person.id).where(Person.phone == phone))
