"""Webhooks handled once: providers retry (Twilio on timeouts, Zalo until it gets a 200 within 2 s)."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import InboundEvent


def first_time(session: Session, source: str, event_id: str) -> bool:
    """Remember a webhook; False when it was handled before, even by a concurrent request (the unique key decides)."""
    try:
        with session.begin_nested():
            session.add(InboundEvent(source=source, event_id=event_id[:128]))
    except IntegrityError:
        return False
    return True
