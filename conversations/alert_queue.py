"""The alert queue: declarations a tracing team must act on, urgent ones first, within the handler's province and on
the audit log. Who may handle alerts is the caller's check (`access.auth.CAN_HANDLE_ALERTS`)."""

from datetime import datetime

from sqlalchemy import Select, case, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from access.auth import audit, in_scope
from access.errors import InvalidValue, NotFound
from models import Alert, AlertLevel, Declaration, Person, User


def _scoped_alerts(user: User) -> Select:
    return in_scope(select(Alert).join(Alert.person), user).options(
        contains_eager(Alert.person),
        selectinload(Alert.declaration).selectinload(Declaration.conversation),
        selectinload(Alert.notifications),
    )


def list_alerts(
    session: Session,
    user: User,
    *,
    level: AlertLevel | None = None,
    province: str | None = None,
    acknowledged: bool | None = None,
    limit: int,
    offset: int,
    client_ip: str | None = None,
) -> list[Alert]:
    """Urgent first, then newest first."""
    stmt = _scoped_alerts(user)
    if level is not None:
        stmt = stmt.where(Alert.level == level)
    if province is not None:
        stmt = stmt.where(Person.province_code == province)
    if acknowledged is not None:
        stmt = stmt.where(Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None))
    urgent_first = case((Alert.level == AlertLevel.URGENT, 0), else_=1)
    alerts = list(session.scalars(stmt.order_by(urgent_first, Alert.created_at.desc()).limit(limit).offset(offset)))
    audit(session, user, "alert.list", "alert", [a.id for a in alerts], client_ip)
    return alerts


MAX_NOTE_CHARS = 2000


def get_alert(session: Session, user: User, alert_id: int) -> Alert:
    alert = session.scalar(_scoped_alerts(user).where(Alert.id == alert_id))
    if alert is None:
        raise NotFound.in_scope("alert", alert_id)
    return alert


def acknowledge(
    session: Session,
    user: User,
    alert_id: int,
    now: datetime,
    client_ip: str | None = None,
    note: str | None = None,
) -> Alert:
    """Someone is acting on the alert, with a note of what they do. Acknowledging it again changes nothing: the
    first handler and their note stay on record."""
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidValue("note", f"at most {MAX_NOTE_CHARS} characters")
    alert = get_alert(session, user, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by_id, alert.acknowledgement_note = now, user.id, note
        audit(session, user, "alert.ack", "alert", [alert.id], client_ip)
    return alert


def changed_since(session: Session, user: User, since: datetime, client_ip: str | None = None) -> list[Alert]:
    """Alerts of the user's scope raised, raised further or acknowledged after `since`, oldest change first: what a
    live console has yet to show. Audited like a list (they carry names and phones)."""
    alerts = list(
        session.scalars(_scoped_alerts(user).where(Alert.updated_at > since).order_by(Alert.updated_at, Alert.id))
    )
    if alerts:
        audit(session, user, "alert.push", "alert", [a.id for a in alerts], client_ip)
    return alerts
