"""Community teams and the instructions a province broadcasts to them; who received, read and answered each one.

A team's list (CSV or XLSX: name, phone, optional zalo_user_id) is the team: importing it again makes the team what
the new file says. A broadcast is queued for every member at once; a worker sends each delivery (connectors/zalo:
by OA message to a member who wrote within the reply window, else by ZNS with a personal link) and Zalo's receipts,
the member's replies and the link's page fill in the rest. A delivery is claimed before it is sent: a worker that
dies after its claim leaves it to another worker once the claim is stale (a message may then go twice; never none).
"""

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload

from access.auth import CAN_MANAGE_LISTS, audit, get_in_scope, hash_token
from access.errors import Forbidden, InvalidValue, NotFound
from bot.vntext import nfc
from campaigns.contact_lists import import_province
from campaigns.listfile import ReadLimits, UnusableFile, header_key, read_table
from ground.phones import InvalidPhone, normalize_phone
from models import Broadcast, BroadcastDelivery, BroadcastReply, DeliveryStatus, Team, TeamMember, User, utcnow

COLUMNS = {
    "name": {"name", "ho ten", "ho va ten", "ten", "full name", "thanh vien"},
    "phone": {"phone", "so dien thoai", "dien thoai", "sdt", "so dt", "mobile"},
    "zalo_user_id": {"zalo user id", "zalo id", "ma zalo", "zalo"},
}
MAX_MEMBERS = 5000
MAX_TEXT = 4000  # characters; the OA splits past 2,000, ZNS members read it whole on the linked page
FIRST_REJECTS = 20
CLAIM_LEASE = timedelta(minutes=2)


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
    status: str  # answered, read, received, sent, failed, queued: the furthest the message got
    channel: str | None
    error: str | None
    sent_at: datetime | None
    received_at: datetime | None
    read_at: datetime | None
    answered_at: datetime | None
    replies: list[str]


@dataclass(frozen=True)
class Report:
    broadcast_id: int
    team_id: int
    team: str
    text: str
    created_at: datetime
    counts: dict[str, int]  # members, sent, failed, queued, received, read, answered
    members: list[MemberReport]


def check_broadcasts(user: User) -> None:
    """Team lists and broadcasts are a provincial centre's tools: its admins and managers."""
    if user.role not in CAN_MANAGE_LISTS:
        raise Forbidden(f"the {user.role.value} role cannot manage teams or broadcast to them")


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
    members, rejects = _read_members(path, limits or ReadLimits(), source_name or path.name)
    if not members:
        reasons = "; ".join(f"row {line}: {reason}" for line, reason in rejects[:3])
        raise UnusableFile(f"{source_name or path.name} has no usable member ({reasons or 'no rows'})")
    team = session.scalar(select(Team).where(Team.name == name, _province_is(province)))
    if team is None:
        team = Team(name=name, province_code=province)
        session.add(team)
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
    detail = {"source": source_name or path.name, "members": summary.members, "rejected": summary.rejected}
    audit(session, user, "team.import", "team", [team.id], detail=detail)
    return summary


def _team_name(name: str) -> str:
    name = nfc(name or "").strip()
    if not 1 <= len(name) <= 200:
        raise InvalidValue("name", "a team's name has 1 to 200 characters")
    return name


def _province_is(province: str | None) -> Any:
    return Team.province_code == province if province else Team.province_code.is_(None)


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
        value = {column: _cell(cells, index) for column, index in where.items()}
        try:
            members_phone = normalize_phone(value["phone"])
            zalo_user_id = value["zalo_user_id"] or None
            if zalo_user_id is not None and not (zalo_user_id.isdigit() and len(zalo_user_id) <= 64):
                raise ValueError("a Zalo user id is the number the OA knows the member by")
            if members_phone in members:
                raise ValueError("this phone is on an earlier row")
        except (InvalidPhone, ValueError) as error:
            rejects.append((line, str(error)))
            continue
        members[members_phone] = ((value["name"] or value["phone"])[:100], zalo_user_id)
    return members, rejects


def _cell(cells: list[Any], index: int | None) -> str:
    if index is None or index >= len(cells) or cells[index] is None:
        return ""
    value = cells[index]
    return nfc(str(int(value) if isinstance(value, float) and value.is_integer() else value)).strip()


def teams(session: Session, user: User) -> list[Team]:
    """The user's province's teams (a national user: every team), with their members."""
    stmt = select(Team).options(selectinload(Team.members)).order_by(Team.province_code, Team.name)
    if user.province_code:
        stmt = stmt.where(Team.province_code == user.province_code)
    return list(session.scalars(stmt))


def team(session: Session, user: User, team_id: int) -> Team:
    return get_in_scope(session, user, Team, team_id, "team")


# ---- Broadcasts ---------------------------------------------------------------------------------------------


def start_broadcast(session: Session, user: User, team_id: int, text: str) -> Broadcast:
    """Queue `text` for every member of the team; the worker sends them."""
    check_broadcasts(user)
    found = team(session, user, team_id)
    text = nfc(text or "").strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise InvalidValue("text", f"a message has 1 to {MAX_TEXT:,} characters")
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


def broadcasts(session: Session, user: User, team_id: int) -> list[Broadcast]:
    found = team(session, user, team_id)
    return list(session.scalars(select(Broadcast).where(Broadcast.team_id == found.id).order_by(Broadcast.id.desc())))


def claim_due(session: Session, now: datetime, limit: int = 100) -> list[Outgoing]:
    """Queued deliveries (and ones whose claim went stale), each claimed by one worker with a conditional UPDATE."""
    claimable = or_(
        BroadcastDelivery.status == DeliveryStatus.QUEUED,
        (BroadcastDelivery.status == DeliveryStatus.SENDING) & (BroadcastDelivery.claimed_at < now - CLAIM_LEASE),
    )
    due = session.scalars(
        select(BroadcastDelivery)
        .options(selectinload(BroadcastDelivery.broadcast).selectinload(Broadcast.team))
        .where(claimable)
        .order_by(BroadcastDelivery.id)
        .limit(limit)
    ).all()
    claimed = []
    for delivery in due:
        won = session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.id == delivery.id, claimable)
            .values(status=DeliveryStatus.SENDING, claimed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won:
            member = session.get(TeamMember, delivery.member_id) if delivery.member_id else None
            broadcast = delivery.broadcast
            claimed.append(
                Outgoing(
                    delivery.id,
                    broadcast.team.name,
                    broadcast.text,
                    delivery.member_name,
                    delivery.member_phone,
                    member.zalo_user_id if member else None,
                )
            )
    return claimed


def new_link(session: Session, delivery_id: int) -> str:
    """The key of a personal link to the message (sent by ZNS); only its hash is kept."""
    key = secrets.token_urlsafe(24)
    session.get(BroadcastDelivery, delivery_id).link_token_hash = hash_token(key)
    return key


def record_sent(
    session: Session, delivery_id: int, channel: str, provider_ref: str, zalo_user_id: str | None = None
) -> None:
    delivery = session.get(BroadcastDelivery, delivery_id)
    delivery.status, delivery.channel, delivery.provider_ref = DeliveryStatus.SENT, channel, provider_ref[:64]
    delivery.zalo_user_id, delivery.sent_at, delivery.error = zalo_user_id, utcnow(), None


def record_failed(session: Session, delivery_id: int, error: str) -> None:
    delivery = session.get(BroadcastDelivery, delivery_id)
    delivery.status, delivery.error = DeliveryStatus.FAILED, error[:500]


def mark_received(session: Session, at: datetime, *, delivery_id: int | None = None, ref: str | None = None) -> bool:
    """A delivery receipt, by the delivery's id (ZNS tracking id) or Zalo's message id (OA message)."""
    found = _delivery(session, delivery_id, [ref] if ref else [])
    for delivery in found:
        delivery.received_at = delivery.received_at or at
    return bool(found)


def mark_read(session: Session, refs: list[str], at: datetime) -> bool:
    """The member saw these OA messages (a message seen was received, whatever the receipts say)."""
    found = _delivery(session, None, refs)
    for delivery in found:
        delivery.received_at = delivery.received_at or at
        delivery.read_at = delivery.read_at or at
    return bool(found)


def _delivery(session: Session, delivery_id: int | None, refs: list[str]) -> list[BroadcastDelivery]:
    if delivery_id is not None:
        found = session.get(BroadcastDelivery, delivery_id)
        return [found] if found is not None and found.status == DeliveryStatus.SENT else []
    if not refs:
        return []
    return list(session.scalars(select(BroadcastDelivery).where(BroadcastDelivery.provider_ref.in_(refs))))


def awaiting_reply(
    session: Session, zalo_user_id: str, since: datetime, quoted: str | None = None, *, quoted_only: bool = False
) -> int | None:
    """The broadcast delivery a Zalo user's message answers: the one it quotes, else (unless `quoted_only`) the
    latest sent to them by OA message since `since` (the reply window)."""
    stmt = select(BroadcastDelivery.id).where(
        BroadcastDelivery.zalo_user_id == zalo_user_id, BroadcastDelivery.status == DeliveryStatus.SENT
    )
    if quoted and (found := session.scalar(stmt.where(BroadcastDelivery.provider_ref == quoted))):
        return found
    if quoted_only:
        return None
    return session.scalar(stmt.where(BroadcastDelivery.sent_at >= since).order_by(BroadcastDelivery.id.desc()).limit(1))


def delivery_of_link(session: Session, key: str) -> BroadcastDelivery:
    delivery = session.scalar(select(BroadcastDelivery).where(BroadcastDelivery.link_token_hash == hash_token(key)))
    if delivery is None:
        raise NotFound("this link is not valid")
    return delivery


def record_reply(
    session: Session, delivery_id: int, text: str, via: str, at: datetime, external_id: str | None = None
) -> bool:
    """A member's answer; False when this message was recorded before (a retried webhook)."""
    text = nfc(text or "").strip()
    if not text:
        raise InvalidValue("text", "an answer cannot be empty")
    if len(text) > MAX_TEXT:
        raise InvalidValue("text", f"an answer has at most {MAX_TEXT:,} characters")
    if external_id and session.scalar(
        select(BroadcastReply.id).where(
            BroadcastReply.delivery_id == delivery_id, BroadcastReply.external_id == external_id
        )
    ):
        return False
    delivery = session.get(BroadcastDelivery, delivery_id)
    session.add(BroadcastReply(delivery_id=delivery_id, text=text, via=via, external_id=external_id, received_at=at))
    delivery.received_at = delivery.received_at or at
    delivery.read_at = delivery.read_at or at
    delivery.answered_at = delivery.answered_at or at
    return True


def read_by_link(session: Session, delivery: BroadcastDelivery, at: datetime) -> None:
    delivery.received_at = delivery.received_at or at
    delivery.read_at = delivery.read_at or at


# ---- The report -------------------------------------------------------------------------------------------------


def report(session: Session, user: User, broadcast_id: int) -> Report:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or (user.province_code and broadcast.team.province_code != user.province_code):
        raise NotFound.in_scope("broadcast", broadcast_id)
    rows = [_member_report(delivery) for delivery in broadcast.deliveries]
    counts = Counter(row.status for row in rows)
    reached = {
        "received": sum(1 for row in rows if row.received_at),
        "read": sum(1 for row in rows if row.read_at),
        "answered": sum(1 for row in rows if row.answered_at),
    }
    figures = {"members": len(rows), "queued": counts["queued"], "failed": counts["failed"]}
    figures["sent"] = len(rows) - figures["queued"] - figures["failed"]
    return Report(
        broadcast.id,
        broadcast.team_id,
        broadcast.team.name,
        broadcast.text,
        broadcast.created_at,
        figures | reached,
        rows,
    )


def _member_report(delivery: BroadcastDelivery) -> MemberReport:
    if delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
        status = "queued"
    elif delivery.status == DeliveryStatus.FAILED:
        status = "failed"
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
        delivery.sent_at,
        delivery.received_at,
        delivery.read_at,
        delivery.answered_at,
        [reply.text for reply in delivery.replies],
    )
