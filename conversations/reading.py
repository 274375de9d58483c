"""What tracing teams read: declarations and transcripts, always within the reader's province and on the audit log."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session, contains_eager, selectinload

from access.auth import audit, in_scope
from access.errors import InvalidValue, NotFound
from ground.phones import InvalidPhone, normalize_phone
from models import AlertLevel, Conversation, Declaration, DeclarationStatus, Person, User

# A declaration without a conversation was made by the platform itself (nobody typed a phone for it).
PHONE_VERIFIED = func.coalesce(Conversation.phone_verified, true())


@dataclass(frozen=True)
class DeclarationFilter:
    phone: str | None = None  # any common form: 0912 345 678, 84912345678, +84...
    campaign_id: int | None = None
    status: DeclarationStatus | None = None
    alert_level: AlertLevel | None = None
    phone_verified: bool | None = None
    updated_since: datetime | None = None  # without an offset, read in the platform's time zone


@dataclass(frozen=True)
class DeclarationPage:
    rows: list[tuple[Declaration, bool]]  # each declaration with whether its source proved the phone
    total: int


def _scoped_declarations(user: User) -> Select:
    """Declarations with their phone's proof, of the user's province."""
    stmt = select(Declaration, PHONE_VERIFIED).join(Declaration.person).outerjoin(Declaration.conversation)
    return in_scope(stmt, user).options(contains_eager(Declaration.person))


def list_declarations(
    session: Session,
    user: User,
    where: DeclarationFilter,
    limit: int,
    offset: int,
    timezone: str,
    client_ip: str | None = None,
) -> DeclarationPage:
    """Oldest change first, so `updated_since` can be used to sync."""
    stmt = _scoped_declarations(user)
    if where.phone is not None:
        stmt = stmt.where(Person.phone == _phone(where.phone))
    if where.campaign_id is not None:
        stmt = stmt.where(Declaration.campaign_id == where.campaign_id)
    if where.status is not None:
        stmt = stmt.where(Declaration.status == where.status)
    if where.alert_level is not None:
        stmt = stmt.where(Declaration.alert_level == where.alert_level)
    if where.phone_verified is not None:
        stmt = stmt.where(PHONE_VERIFIED.is_(where.phone_verified))
    if where.updated_since is not None:
        stmt = stmt.where(Declaration.updated_at >= _aware(where.updated_since, timezone))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = stmt.order_by(Declaration.updated_at, Declaration.id).limit(limit).offset(offset)
    rows = [(declaration, verified) for declaration, verified in session.execute(page)]
    audit(session, user, "declaration.list", "declaration", [d.id for d, _ in rows], client_ip)
    return DeclarationPage(rows, total)


def read_declaration(
    session: Session, user: User, declaration_id: int, client_ip: str | None = None
) -> tuple[Declaration, bool]:
    """A declaration with whether its source proved the phone."""
    row = session.execute(_scoped_declarations(user).where(Declaration.id == declaration_id)).first()
    if row is None:
        raise NotFound.in_scope("declaration", declaration_id)
    declaration, verified = row
    audit(session, user, "declaration.read", "declaration", [declaration.id], client_ip)
    return declaration, verified


def read_transcript(
    session: Session, user: User, conversation_id: int, client_ip: str | None = None
) -> tuple[Conversation, int | None]:
    """A conversation with its turns, and the id of the declaration it gave (None: none yet)."""
    stmt = in_scope(
        select(Conversation).join(Conversation.person).where(Conversation.id == conversation_id), user
    ).options(contains_eager(Conversation.person), selectinload(Conversation.turns))
    conversation = session.scalar(stmt)
    if conversation is None:
        raise NotFound.in_scope("conversation", conversation_id)
    declaration_id = session.scalar(select(Declaration.id).where(Declaration.conversation_id == conversation.id))
    audit(session, user, "transcript.read", "conversation", [conversation.id], client_ip)
    return conversation, declaration_id


def _phone(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except InvalidPhone as error:
        raise InvalidValue("phone", str(error)) from None


def _aware(moment: datetime, zone: str) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
