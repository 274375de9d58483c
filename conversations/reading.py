"""What tracing teams read: declarations and transcripts, always within the reader's province and on the audit log."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from access.auth import CAN_READ_TRANSCRIPTS, audit, in_scope
from access.errors import InvalidValue, NotFound
from ground.phones import InvalidPhone, normalize_phone
from models import (
    Alert,
    AlertLevel,
    Conversation,
    Declaration,
    DeclarationChange,
    DeclarationStatus,
    OutreachAttempt,
    Person,
    Turn,
    User,
)

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)  # a date filter beyond these filters nothing
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
    ward: str | None = None
    search: str | None = None  # a phone in any common form, or part of a name
    created_from: date | None = None  # local dates, inclusive
    created_to: date | None = None


class Sort(StrEnum):
    OLDEST_CHANGE = "oldest"  # the API's order: sync with updated_since
    NEWEST_CHANGE = "newest"
    ALERT = "alert"  # urgent first, then newest


_ORDER = {
    Sort.OLDEST_CHANGE: (Declaration.updated_at, Declaration.id),
    Sort.NEWEST_CHANGE: (Declaration.updated_at.desc(), Declaration.id.desc()),
}


@dataclass(frozen=True)
class DeclarationPage:
    rows: list[tuple[Declaration, bool]]  # each declaration with whether its source proved the phone
    total: int


def _scoped_declarations(user: User) -> Select:
    """Declarations with their phone's proof, of the user's province.

    The province is a condition on the declaration's person_id (`+ 0`: not through its index), not on the joined
    person: a province's own declarations are nearly all of them, so the database should walk the declarations in
    the page's order (the updated_at index) and stop at the page, not gather a whole province and sort it. A filter
    on the person (a phone, a name, a ward) still leads the join through its own index."""
    stmt = select(Declaration, PHONE_VERIFIED).join(Declaration.person).outerjoin(Declaration.conversation)
    if user.province_code is not None:
        province = select(Person.id).where(Person.province_code == user.province_code)
        stmt = stmt.where((Declaration.person_id + 0).in_(province))
    corrections = selectinload(Declaration.corrections).joinedload(DeclarationChange.user)
    return stmt.options(contains_eager(Declaration.person), corrections)


def scoped_filtered(user: User, where: DeclarationFilter, timezone: str) -> Select:
    """The declarations of the user's province that match `where`, with their phone's proof."""
    return _filtered(_scoped_declarations(user), where, timezone)


def list_declarations(
    session: Session,
    user: User,
    where: DeclarationFilter,
    limit: int,
    offset: int,
    timezone: str,
    client_ip: str | None = None,
    sort: Sort = Sort.OLDEST_CHANGE,
    count_up_to: int | None = None,
) -> DeclarationPage:
    """Oldest change first unless sorted otherwise, so `updated_since` can be used to sync. `count_up_to`: count the
    matching declarations only that far (a page says "more than 10,000"; an exact count of a million costs a second)."""
    stmt = scoped_filtered(user, where, timezone)
    counted = stmt.with_only_columns(Declaration.id)
    if count_up_to is not None:
        counted = counted.limit(count_up_to + 1)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    if sort == Sort.ALERT:
        rows = _urgent_first(session, stmt, limit, offset)
    else:
        rows = [
            (d, verified) for d, verified in session.execute(stmt.order_by(*_ORDER[sort]).limit(limit).offset(offset))
        ]
    audit(session, user, "declaration.list", "declaration", [d.id for d, _ in rows], client_ip)
    return DeclarationPage(rows, total)


def _urgent_first(session: Session, stmt: Select, limit: int, offset: int) -> list[tuple[Declaration, bool]]:
    """Urgent, then watch, then the rest, newest first within each: one level at a time, each read in the order of
    the (alert_level, updated_at) index, so a page never sorts a province's million declarations."""
    rows: list[tuple[Declaration, bool]] = []
    for level in (AlertLevel.URGENT, AlertLevel.WATCH, AlertLevel.NONE):
        if len(rows) == limit:
            break
        segment = stmt.where(Declaration.alert_level == level)
        newest = segment.order_by(Declaration.updated_at.desc(), Declaration.id.desc())
        found = session.execute(newest.limit(limit - len(rows)).offset(offset)).all()
        rows += [(d, verified) for d, verified in found]
        if found:
            offset = 0
        else:  # the page starts past this level: skip its rows
            skipped = segment.with_only_columns(Declaration.id).limit(offset)
            offset -= session.scalar(select(func.count()).select_from(skipped.subquery())) or 0
    return rows


def _filtered(stmt: Select, where: DeclarationFilter, timezone: str) -> Select:
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
    if where.ward:
        stmt = stmt.where(Person.ward == where.ward)
    if where.search:
        stmt = stmt.where(_matching(where.search))
    zone = ZoneInfo(timezone)
    # Days outside these hold no declaration, and at the calendar's ends a local midnight has no UTC (or next) day.
    if where.created_from is not None and where.created_from > FIRST_DAY:
        stmt = stmt.where(Declaration.created_at >= datetime.combine(where.created_from, time(), zone))
    if where.created_to is not None and where.created_to < LAST_DAY:
        next_day = where.created_to + timedelta(days=1)
        stmt = stmt.where(Declaration.created_at < datetime.combine(next_day, time(), zone))
    return stmt


def _matching(search: str) -> ColumnElement[bool]:
    """A phone in any common form matches that phone; anything else, the names holding it."""
    try:
        return Person.phone == normalize_phone(search)
    except InvalidPhone:
        escaped = search.replace("\x00", "").strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return Person.full_name.ilike(f"%{escaped}%", escape="\\")


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


@dataclass(frozen=True)
class DeclarationDetail:
    """A declaration as a tracer reviews it."""

    declaration: Declaration
    phone_verified: bool
    changes: list[DeclarationChange]  # every value each field took and where it came from, oldest first
    turns: list[Turn] | None  # None: the reader's role does not read transcripts
    alerts: list[Alert]
    attempt: OutreachAttempt | None  # the campaign's contact for this follow-up day, when a campaign reached out


def declaration_detail(
    session: Session, user: User, declaration_id: int, client_ip: str | None = None
) -> DeclarationDetail:
    declaration, verified = read_declaration(session, user, declaration_id, client_ip)
    changes = session.scalars(
        select(DeclarationChange)
        .where(DeclarationChange.declaration_id == declaration.id)
        .options(joinedload(DeclarationChange.user))
        .order_by(DeclarationChange.id)
    ).all()
    turns = None
    if user.role in CAN_READ_TRANSCRIPTS and declaration.conversation_id is not None:
        turns = list(
            session.scalars(select(Turn).where(Turn.conversation_id == declaration.conversation_id).order_by(Turn.seq))
        )
        audit(session, user, "transcript.read", "conversation", [declaration.conversation_id], client_ip)
    alerts = session.scalars(
        select(Alert)
        .where(Alert.declaration_id == declaration.id)
        .options(joinedload(Alert.acknowledged_by))
        .order_by(Alert.id)
    ).all()
    attempt = None
    if declaration.campaign_id is not None and declaration.follow_up_day is not None:
        attempt = session.scalar(
            select(OutreachAttempt).where(
                OutreachAttempt.campaign_id == declaration.campaign_id,
                OutreachAttempt.person_id == declaration.person_id,
                OutreachAttempt.follow_up_day == declaration.follow_up_day,
            )
        )
    return DeclarationDetail(declaration, verified, list(changes), turns, list(alerts), attempt)


def read_transcript(
    session: Session, user: User, conversation_id: int, client_ip: str | None = None, audited: bool = True
) -> tuple[Conversation, int | None]:
    """A conversation with its turns, and the id of the declaration it gave (None: none yet). `audited=False`: the
    caller audits what it shows (a live page audits only the new lines it is sent)."""
    stmt = in_scope(
        select(Conversation).join(Conversation.person).where(Conversation.id == conversation_id), user
    ).options(contains_eager(Conversation.person), selectinload(Conversation.turns))
    conversation = session.scalar(stmt)
    if conversation is None:
        raise NotFound.in_scope("conversation", conversation_id)
    declaration_id = session.scalar(select(Declaration.id).where(Declaration.conversation_id == conversation.id))
    if audited:
        audit(session, user, "transcript.read", "conversation", [conversation.id], client_ip)
    return conversation, declaration_id


def _phone(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except InvalidPhone as error:
        raise InvalidValue("phone", str(error)) from None


def _aware(moment: datetime, zone: str) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
