"""Community teams and the instructions a province broadcasts to them; who received, read and answered each one.

A team's list (CSV or XLSX: name, phone, optional zalo_user_id) is the team: importing it again makes the team what
the new file says. A broadcast is queued for every member at once; workers send each delivery (connectors/zalo: by
OA message to a member who wrote within the reply window, else by ZNS with a personal link) and Zalo's receipts, the
member's answer and the link's page fill in the rest.

Deliveries are a state machine (`DeliveryStatus`). A worker claims a few at a time with a conditional UPDATE that
stamps its claim token; every later write about the delivery needs that token, so a worker that outlived its claim
changes nothing another worker did. A claim older than `CLAIM_LEASE` is stale (its worker died): another worker takes
the delivery, and the message may then go twice, never not at all. A failure that may pass (Zalo out of reach, a
quota, an error of ours) queues the delivery again, later each time, and fails it after `MAX_TRIES`; a failure about
the member (no Zalo, refuses ZNS) fails it at once. Failed deliveries can be sent again, queued ones canceled.
"""

import secrets
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from access.auth import CAN_MANAGE_LISTS, CAN_READ_TRANSCRIPTS, audit, hash_token
from access.errors import Conflict, Forbidden, InvalidValue, NotFound
from bot.vntext import nfc
from campaigns.contact_lists import import_province
from campaigns.importer import after_other_imports
from campaigns.listfile import EXACT_FLOATS, ReadLimits, UnusableFile, header_key, read_table
from ground.phones import InvalidPhone, normalize_phone
from models import Broadcast, BroadcastDelivery, BroadcastReply, DeliveryStatus, Team, TeamMember, User, utcnow

COLUMNS = {
    "name": {"name", "ho ten", "ho va ten", "ten", "full name", "thanh vien"},
    "phone": {"phone", "so dien thoai", "dien thoai", "sdt", "so dt", "mobile"},
    "zalo_user_id": {"zalo user id", "zalo id", "ma zalo", "zalo"},
}
MAX_MEMBERS = 5000
MAX_TEXT = 4000  # characters; members read a long one whole on their page
MAX_REPLIES = 20  # answers kept per member and broadcast: the public page cannot grow a report without end
FIRST_REJECTS = 20
CLAIM_LEASE = timedelta(minutes=2)
CLAIM_BATCH = 5  # sent within the lease even when every send waits out its timeouts
RETRY_AFTER = [timedelta(minutes=m) for m in (1, 5, 15, 60, 180)]
MAX_TRIES = len(RETRY_AFTER) + 1
KEPT = (DeliveryStatus.SENT, DeliveryStatus.SENDING)  # a receipt may beat the worker's own record of the send


@dataclass
class TeamImport:
    team_id: int
    members: int
    added: int
    removed: int
    rejected: int
    first_rejects: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery, with what the sender needs to reach the member."""

    delivery_id: int
    claim: str
    team: str
    text: str
    name: str
    phone: str
    zalo_user_id: str | None


@dataclass(frozen=True)
class MemberReport:
    delivery_id: int
    name: str
    phone: str
    status: str  # answered, read, received, sent, failed, queued, canceled: the furthest the message got
    channel: str | None
    error: str | None
    tries: int
    sent_at: datetime | None
    received_at: datetime | None
    read_at: datetime | None
    answered_at: datetime | None
    replies: list[str]


@dataclass(frozen=True)
class Summary:
    broadcast_id: int
    team_id: int
    team: str
    text: str
    created_at: datetime
    counts: dict[str, int]  # members, queued, sent, failed, canceled, received, read, answered


@dataclass(frozen=True)
class Report(Summary):
    members: list[MemberReport]


def check_broadcasts(user: User) -> None:
    """Team lists and broadcasts are a provincial centre's tools: its admins and managers."""
    if user.role not in CAN_MANAGE_LISTS:
        raise Forbidden(f"the {user.role.value} role cannot manage teams or broadcast to them")


def check_reads_teams(user: User) -> None:
    """Members' phones and their free-text answers are read by those who read transcripts (not viewers)."""
    if user.role not in CAN_READ_TRANSCRIPTS:
        raise Forbidden(f"the {user.role.value} role does not read teams or their answers")


def plain(text: str | None, *, one_line: bool = False) -> str:
    """Text as people meant it: NFC, without invisible format characters (zero-width, direction marks) or control
    characters (line breaks are kept in messages, made spaces in names), trimmed."""
    kept = []
    for char in nfc(text or ""):
        kind = unicodedata.category(char)
        if char in "\n\t":
            kept.append(" " if one_line else char)
        elif kind not in ("Cc", "Cf"):
            kept.append(char)
    cleaned = "".join(kept)
    return " ".join(cleaned.split()) if one_line else cleaned.strip()


# ---- Teams ------------------------------------------------------------------------------------------------------


def import_team(
    session: Session,
    user: User,
    path: Path,
    name: str,
    province: str | None = None,
    *,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> TeamImport:
    """The team `name` of the province becomes the file's members (created when new). A file with no usable member
    changes nothing: a team is never emptied by a wrong file."""
    check_broadcasts(user)
    province = import_province(user, province)
    name = _team_name(name)
    source = source_name or path.name
    members, rejects = _read_members(path, limits or ReadLimits(), source)
    if not members:
        reasons = "; ".join(f"row {line}: {reason}" for line, reason in rejects[:3])
        raise UnusableFile(f"{source} has no usable member ({reasons or 'no rows'})")
    after_other_imports(session)  # one import at a time: the same new team twice at once is one team
    team = _team_named(session, name, province)
    before = {member.phone: member for member in team.members}
    for phone, (member_name, zalo_user_id) in members.items():
        member = before.get(phone) or TeamMember(phone=phone)
        member.name, member.zalo_user_id = member_name, zalo_user_id
        if phone not in before:
            team.members.append(member)
    for phone, member in before.items():
        if phone not in members:
            team.members.remove(member)  # its deliveries keep the name and phone they were sent to
    session.flush()
    summary = TeamImport(
        team.id,
        len(members),
        added=len(members.keys() - before.keys()),
        removed=len(before.keys() - members.keys()),
        rejected=len(rejects),
        first_rejects=rejects[:FIRST_REJECTS],
    )
    detail = {"source": source, "members": summary.members, "rejected": summary.rejected}
    audit(session, user, "team.import", "team", [team.id], detail=detail)
    return summary


def _team_named(session: Session, name: str, province: str | None) -> Team:
    scope = Team.province_code == province if province else Team.province_code.is_(None)
    found = session.scalar(select(Team).where(Team.name == name, scope))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            team = Team(name=name, province_code=province)
            session.add(team)
        return team
    except IntegrityError:  # made meanwhile by an import that did not wait (another process's lock)
        found = session.scalar(select(Team).where(Team.name == name, scope))
        if found is None:
            raise Conflict(f"the team {name!r} is being made by another import: try again") from None
        return found


def _team_name(name: str) -> str:
    name = plain(name, one_line=True)
    if not 1 <= len(name) <= 200:
        raise InvalidValue("name", "a team's name has 1 to 200 characters")
    return name


def _read_members(
    path: Path, limits: ReadLimits, source: str
) -> tuple[dict[str, tuple[str, str | None]], list[tuple[int, str]]]:
    """Phone -> (name, Zalo id) of the usable rows, and the rejected rows' lines and reasons."""
    rows = list(islice(read_table(path, limits), MAX_MEMBERS + 2))
    if not rows:
        raise UnusableFile(f"{source} is empty")
    if len(rows) > MAX_MEMBERS + 1:
        raise UnusableFile(f"{source} has more than {MAX_MEMBERS:,} members; a team is smaller")
    (_, header), *rows = rows
    keys = [header_key(title) for title in header]
    where = {column: next((i for i, key in enumerate(keys) if key in names), None) for column, names in COLUMNS.items()}
    if where["phone"] is None:
        raise UnusableFile(f"{source} has no phone column (columns: name, phone, zalo_user_id)")
    members: dict[str, tuple[str, str | None]] = {}
    rejects = []
    for line, cells in rows:
        try:
            phone, member = _member(cells, where)
            if phone in members:
                raise ValueError("this phone is on an earlier row")
        except (InvalidPhone, ValueError) as error:
            rejects.append((line, str(error)))
            continue
        members[phone] = member
    return members, rejects


def _member(cells: list[Any], where: dict[str, int | None]) -> tuple[str, tuple[str, str | None]]:
    value = {column: cells[i] if i is not None and i < len(cells) else None for column, i in where.items()}
    written_phone = plain(str(value["phone"] or ""), one_line=True)
    phone = normalize_phone(written_phone)
    zalo_user_id = value["zalo_user_id"]
    if isinstance(zalo_user_id, float) and abs(zalo_user_id) >= EXACT_FLOATS:
        raise ValueError("the Zalo user id lost its last digits in a number cell: format that column as text")
    zalo_user_id = plain(str(zalo_user_id or ""), one_line=True) or None
    if zalo_user_id is not None and not (zalo_user_id.isascii() and zalo_user_id.isdigit() and len(zalo_user_id) <= 64):
        raise ValueError("a Zalo user id is the number the OA knows the member by")
    name = plain(str(value["name"] or ""), one_line=True) or written_phone
    return phone, (name[:100], zalo_user_id)


def teams(session: Session, user: User) -> list[Team]:
    """The user's province's teams (a national user: every team), with their members."""
    check_reads_teams(user)
    stmt = select(Team).options(selectinload(Team.members)).order_by(Team.province_code, Team.name)
    if user.province_code:
        stmt = stmt.where(Team.province_code == user.province_code)
    return list(session.scalars(stmt))


def team(session: Session, user: User, team_id: int) -> Team:
    check_reads_teams(user)
    found = session.get(Team, team_id)
    if found is None or (user.province_code and found.province_code != user.province_code):
        raise NotFound.in_scope("team", team_id)
    return found


# ---- Broadcasts ---------------------------------------------------------------------------------------------


def start_broadcast(session: Session, user: User, team_id: int, text: str) -> Broadcast:
    """Queue `text` for every member of the team; the workers send them."""
    check_broadcasts(user)
    found = team(session, user, team_id)
    text = plain(text)
    if not 1 <= len(text) <= MAX_TEXT:
        raise InvalidValue("text", f"a message has 1 to {MAX_TEXT:,} characters (invisible ones not counted)")
    if not found.members:
        raise InvalidValue("team", "the team has no members: import its list first")
    broadcast = Broadcast(team_id=found.id, text=text, created_by_id=user.id)
    broadcast.deliveries = [
        BroadcastDelivery(member_id=m.id, member_name=m.name, member_phone=m.phone, status=DeliveryStatus.QUEUED)
        for m in found.members
    ]
    session.add(broadcast)
    session.flush()
    audit(session, user, "broadcast.start", "broadcast", [broadcast.id], detail={"team": found.id})
    return broadcast


def _broadcast(session: Session, user: User, broadcast_id: int) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or (user.province_code and broadcast.team.province_code != user.province_code):
        raise NotFound.in_scope("broadcast", broadcast_id)
    return broadcast


def cancel(session: Session, user: User, broadcast_id: int) -> int:
    """Cancel the deliveries still waiting to be sent; returns how many."""
    check_broadcasts(user)
    broadcast = _broadcast(session, user, broadcast_id)
    canceled = _move(session, broadcast.id, DeliveryStatus.QUEUED, DeliveryStatus.CANCELED, error="canceled")
    audit(session, user, "broadcast.cancel", "broadcast", [broadcast.id], detail={"deliveries": canceled})
    return canceled


def resend_failed(session: Session, user: User, broadcast_id: int) -> int:
    """Queue the failed deliveries again (a setting fixed, Zalo back); returns how many."""
    check_broadcasts(user)
    broadcast = _broadcast(session, user, broadcast_id)
    queued = _move(session, broadcast.id, DeliveryStatus.FAILED, DeliveryStatus.QUEUED, tries=0, next_attempt_at=None)
    audit(session, user, "broadcast.resend", "broadcast", [broadcast.id], detail={"deliveries": queued})
    return queued


def _move(session: Session, broadcast_id: int, old: DeliveryStatus, new: DeliveryStatus, **values: Any) -> int:
    return session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.broadcast_id == broadcast_id, BroadcastDelivery.status == old)
        .values(status=new, **values)
        .execution_options(synchronize_session=False)
    ).rowcount


def claim_due(session: Session, now: datetime, limit: int = CLAIM_BATCH) -> list[Outgoing]:
    """Queued deliveries that are due (and ones whose claim went stale), each claimed by one worker."""
    claimable = or_(
        (BroadcastDelivery.status == DeliveryStatus.QUEUED)
        & or_(BroadcastDelivery.next_attempt_at.is_(None), BroadcastDelivery.next_attempt_at <= now),
        (BroadcastDelivery.status == DeliveryStatus.SENDING) & (BroadcastDelivery.claimed_at < now - CLAIM_LEASE),
    )
    due = session.scalars(
        select(BroadcastDelivery)
        .options(selectinload(BroadcastDelivery.broadcast).selectinload(Broadcast.team))
        .where(claimable)
        .order_by(BroadcastDelivery.next_attempt_at.is_not(None), BroadcastDelivery.id)  # new ones before retries
        .limit(limit)
    ).all()
    claimed = []
    for delivery in due:
        claim = secrets.token_hex(16)
        won = session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.id == delivery.id, claimable)
            .values(status=DeliveryStatus.SENDING, claimed_at=now, claim_token=claim)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not won:
            continue
        member = session.get(TeamMember, delivery.member_id) if delivery.member_id else None
        if member is None or member.team_id != delivery.broadcast.team_id:
            _write(session, delivery.id, claim, status=DeliveryStatus.CANCELED, error="no longer in the team")
            continue
        broadcast = delivery.broadcast
        claimed.append(
            Outgoing(
                delivery.id, claim, broadcast.team.name, broadcast.text, member.name, member.phone, member.zalo_user_id
            )
        )
    return claimed


def _write(session: Session, delivery_id: int, claim: str, **values: Any) -> bool:
    """A write about a claimed delivery, made only while the claim is still the writer's."""
    return bool(
        session.execute(
            update(BroadcastDelivery)
            .where(
                BroadcastDelivery.id == delivery_id,
                BroadcastDelivery.claim_token == claim,
                BroadcastDelivery.status == DeliveryStatus.SENDING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def still_mine(session: Session, outgoing: Outgoing) -> bool:
    """Renew the claim just before sending; False when another worker took the delivery over meanwhile."""
    return _write(session, outgoing.delivery_id, outgoing.claim, claimed_at=utcnow())


def new_link(session: Session, outgoing: Outgoing) -> str | None:
    """The key of a personal link to the message (only its hash is kept); None when the claim is lost."""
    key = secrets.token_urlsafe(24)
    return key if _write(session, outgoing.delivery_id, outgoing.claim, link_token_hash=hash_token(key)) else None


def record_sent(
    session: Session, outgoing: Outgoing, channel: str, provider_ref: str, zalo_user_id: str | None = None
) -> None:
    _write(
        session,
        outgoing.delivery_id,
        outgoing.claim,
        status=DeliveryStatus.SENT,
        channel=channel,
        provider_ref=provider_ref[:64],
        zalo_user_id=zalo_user_id,
        sent_at=utcnow(),
        error=None,
    )


def record_failed(session: Session, outgoing: Outgoing, error: str) -> None:
    """A failure about the member: trying again would not help."""
    _write(session, outgoing.delivery_id, outgoing.claim, status=DeliveryStatus.FAILED, error=error[:500])


def retry_later(session: Session, outgoing: Outgoing, error: str, *, counted: bool = True) -> None:
    """A failure that may pass: queued again, later each time; failed after MAX_TRIES. A delivery the worker never
    tried (it stopped the batch on an outage) goes back uncounted."""
    delivery = session.get(BroadcastDelivery, outgoing.delivery_id)
    tries = delivery.tries + (1 if counted else 0)
    if tries >= MAX_TRIES:
        failed = f"gave up after {tries} tries: {error}"[:500]
        _write(session, outgoing.delivery_id, outgoing.claim, status=DeliveryStatus.FAILED, tries=tries, error=failed)
        return
    wait = RETRY_AFTER[tries - 1] if tries else timedelta(0)
    _write(
        session,
        outgoing.delivery_id,
        outgoing.claim,
        status=DeliveryStatus.QUEUED,
        tries=tries,
        next_attempt_at=utcnow() + wait,
        error=error[:500] if counted else delivery.error,
        claim_token=None,
    )


def mark_received(
    session: Session, at: datetime, *, delivery_id: int | None = None, ref: str | None = None, user_id: str = ""
) -> bool:
    """A delivery receipt: by the delivery's id (a ZNS tracking id), or by Zalo's id of the OA message sent to
    `user_id`."""
    found = _deliveries(session, delivery_id, [ref] if ref else [], user_id)
    for delivery in found:
        delivery.received_at = delivery.received_at or at
    return bool(found)


def mark_read(session: Session, user_id: str, refs: list[str], at: datetime) -> bool:
    """The member saw these OA messages (a message seen was received, whatever the receipts say)."""
    found = _deliveries(session, None, refs, user_id)
    for delivery in found:
        delivery.received_at = delivery.received_at or at
        delivery.read_at = delivery.read_at or at
    return bool(found)


def _deliveries(session: Session, delivery_id: int | None, refs: list[str], user_id: str) -> list[BroadcastDelivery]:
    if delivery_id is not None:
        found = session.get(BroadcastDelivery, delivery_id)
        return [found] if found is not None and found.status in KEPT else []
    if not refs:
        return []
    return list(
        session.scalars(
            select(BroadcastDelivery).where(
                BroadcastDelivery.provider_ref.in_(refs), BroadcastDelivery.zalo_user_id == user_id
            )
        )
    )


def awaiting_reply(
    session: Session, zalo_user_id: str, since: datetime, quoted: str | None = None, *, quoted_only: bool = False
) -> int | None:
    """The broadcast delivery a Zalo user's message answers: the one it quotes; else (unless `quoted_only`) the
    latest sent to them by OA message since `since` (the reply window) that they have not answered yet. Their
    messages after that first answer are theirs again (a declaration, a question to the OA)."""
    stmt = select(BroadcastDelivery.id).where(
        BroadcastDelivery.zalo_user_id == zalo_user_id, BroadcastDelivery.status == DeliveryStatus.SENT
    )
    if quoted and (found := session.scalar(stmt.where(BroadcastDelivery.provider_ref == quoted))):
        return found
    if quoted_only:
        return None
    unanswered = stmt.where(BroadcastDelivery.sent_at >= since, BroadcastDelivery.answered_at.is_(None))
    return session.scalar(unanswered.order_by(BroadcastDelivery.id.desc()).limit(1))


def delivery_of_link(session: Session, key: str) -> BroadcastDelivery:
    delivery = session.scalar(select(BroadcastDelivery).where(BroadcastDelivery.link_token_hash == hash_token(key)))
    if delivery is None:
        raise NotFound("this link is not valid")
    return delivery


def record_reply(
    session: Session, delivery_id: int, text: str, via: str, at: datetime, external_id: str | None = None
) -> bool:
    """A member's answer; False when this message was recorded before (a retried webhook)."""
    text = plain(text)
    if not text:
        raise InvalidValue("text", "an answer cannot be empty")
    if len(text) > MAX_TEXT:
        raise InvalidValue("text", f"an answer has at most {MAX_TEXT:,} characters")
    given = select(func.count()).where(BroadcastReply.delivery_id == delivery_id)
    if external_id and session.scalar(given.where(BroadcastReply.external_id == external_id)):
        return False
    if session.scalar(given) >= MAX_REPLIES:
        raise InvalidValue("text", f"{MAX_REPLIES} answers are kept for one message: call the centre for more")
    delivery = session.get(BroadcastDelivery, delivery_id)
    session.add(BroadcastReply(delivery_id=delivery_id, text=text, via=via, external_id=external_id, received_at=at))
    read_by_link(session, delivery, at)
    delivery.answered_at = delivery.answered_at or at
    return True


def read_by_link(session: Session, delivery: BroadcastDelivery, at: datetime) -> None:
    delivery.received_at = delivery.received_at or at
    delivery.read_at = delivery.read_at or at


# ---- What became of a broadcast ------------------------------------------------------------------------------


def summaries(session: Session, user: User, team_id: int) -> list[Summary]:
    """A team's broadcasts, newest first, with their counts (counted by the database, however many members)."""
    found = team(session, user, team_id)
    d = BroadcastDelivery
    counted = {
        "members": func.count(d.id),
        **{status: _count(d.status == status) for status in ("queued", "sending", "sent", "failed", "canceled")},
        "received": _count(d.received_at.is_not(None)),
        "read": _count(d.read_at.is_not(None)),
        "answered": _count(d.answered_at.is_not(None)),
    }
    rows = session.execute(
        select(Broadcast, *(column.label(name) for name, column in counted.items()))
        .join(d, d.broadcast_id == Broadcast.id)
        .where(Broadcast.team_id == found.id)
        .group_by(Broadcast.id)
        .order_by(Broadcast.id.desc())
    )
    return [_summary(row.Broadcast, _figures({name: getattr(row, name) for name in counted})) for row in rows]


def _count(condition: Any) -> Any:
    return func.count().filter(condition)


def _figures(counts: dict[str, int]) -> dict[str, int]:
    """Counts by status as the report says them: a delivery being sent is still waiting."""
    figures = dict(counts)
    figures["queued"] += figures.pop("sending")
    return figures


def _summary(broadcast: Broadcast, counts: dict[str, int]) -> Summary:
    return Summary(broadcast.id, broadcast.team_id, broadcast.team.name, broadcast.text, broadcast.created_at, counts)


def report(session: Session, user: User, broadcast_id: int) -> Report:
    check_reads_teams(user)
    broadcast = _broadcast(session, user, broadcast_id)
    deliveries = session.scalars(
        select(BroadcastDelivery)
        .options(selectinload(BroadcastDelivery.replies))
        .where(BroadcastDelivery.broadcast_id == broadcast.id)
        .order_by(BroadcastDelivery.member_name, BroadcastDelivery.id)
    )
    rows = [_member_report(delivery) for delivery in deliveries]
    statuses = Counter(row.status for row in rows)
    counts = {
        "members": len(rows),
        **{status: statuses[status] for status in ("queued", "failed", "canceled")},
        "received": sum(1 for row in rows if row.received_at),
        "read": sum(1 for row in rows if row.read_at),
        "answered": sum(1 for row in rows if row.answered_at),
    }
    counts["sent"] = counts["members"] - counts["queued"] - counts["failed"] - counts["canceled"]
    return Report(**vars(_summary(broadcast, counts)), members=rows)


def _member_report(delivery: BroadcastDelivery) -> MemberReport:
    if delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
        status = "queued"
    elif delivery.status in (DeliveryStatus.FAILED, DeliveryStatus.CANCELED):
        status = delivery.status.value
    else:
        reached = [("answered", delivery.answered_at), ("read", delivery.read_at), ("received", delivery.received_at)]
        status = next((name for name, at in reached if at), "sent")
    return MemberReport(
        delivery.id,
        delivery.member_name,
        delivery.member_phone,
        status,
        delivery.channel,
        delivery.error,
        delivery.tries,
        delivery.sent_at,
        delivery.received_at,
        delivery.read_at,
        delivery.answered_at,
        [reply.text for reply in delivery.replies],
    )
