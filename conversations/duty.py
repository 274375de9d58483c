"""Urgent alerts reach people, not only a page: the province's on-duty roster is told by Zalo or SMS within a minute,
and told again, one person further down the roster, each time the alert stays unacknowledged for the escalation time.

A worker's scheduler calls `notify_due` every few seconds. Several workers may share the store: each alert's round
is claimed with one conditional UPDATE (`next_notification_at`), so one worker sends it.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from access.auth import CAN_HANDLE_ALERTS, audit, validate_province_code
from access.errors import Forbidden, InvalidValue, NotFound
from bot.vntext import fold
from conversations.alerts import reason_vi
from ground.phones import InvalidPhone, normalize_phone
from models import (
    Alert,
    AlertLevel,
    AlertNotification,
    NotificationStatus,
    RosterMember,
    User,
    utcnow,
)

log = logging.getLogger(__name__)
CAN_MANAGE_ROSTER = CAN_HANDLE_ALERTS
# A round is claimed for this long; once a member is told, the next round waits the escalation time. A worker killed
# between its claim and its message leaves the round to another worker a minute later, not to the next escalation.
CLAIM_LEASE = timedelta(seconds=60)


class NotifyFailed(Exception):
    """The provider refused or could not be reached: the next channel, or the next member, is tried."""


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    phone: str
    zalo_user_id: str | None


class Notifier(Protocol):
    """A way to reach a roster member (connectors implement it: Twilio SMS, the Zalo OA)."""

    name: str

    def reaches(self, member: Member) -> bool: ...

    async def send(self, member: Member, text: str) -> str:
        """Send `text`; returns the provider's id of the message. Raises NotifyFailed."""
        ...


@dataclass(frozen=True)
class Round:
    """One alert whose roster must be told now."""

    alert_id: int
    text: str
    members: list[Member]  # on duty, in roster order, starting with the one to tell first
    escalate_after: timedelta


def alert_text(alert: Alert, public_url: str) -> str:
    """Without diacritics: one GSM-7 SMS segment holds 160 characters, against 70 with them."""
    person = alert.person
    where = f", {person.ward}" if person.ward else ""
    reasons = ", ".join(reason_vi(r) for r in alert.reasons)
    text = (
        f"CDC: CANH BAO KHAN CAP - {person.full_name or 'Chua ro ten'} {person.phone}{where}: {reasons}. "
        f"Xem va nhan xu ly: {public_url}/console/alerts/{alert.id}"
    )
    return fold(text).replace(" °C", "C")  # no degree sign in GSM-7


def _claim_rounds(sessions: sessionmaker[Session], now: datetime, every: timedelta, public_url: str) -> list[Round]:
    due = or_(Alert.next_notification_at.is_(None), Alert.next_notification_at <= now)
    with sessions.begin() as session:
        alerts = session.scalars(
            select(Alert)
            .join(Alert.person)
            .where(Alert.level == AlertLevel.URGENT, Alert.acknowledged_at.is_(None), due)
            .order_by(Alert.id)
        ).all()
        rounds = []
        for alert in alerts:
            claimed = session.execute(
                update(Alert).where(Alert.id == alert.id, due).values(next_notification_at=now + CLAIM_LEASE)
            ).rowcount
            if claimed:
                members = _next_members(session, alert)
                if not members:
                    log.warning("urgent alert %s: nobody on duty for province %s", alert.id, alert.person.province_code)
                rounds.append(Round(alert.id, alert_text(alert, public_url), members, every))
        return rounds


def _next_members(session: Session, alert: Alert) -> list[Member]:
    """The on-duty roster of the alert's province, starting after the last member who was told."""
    province = alert.person.province_code
    on_duty = session.scalars(
        select(RosterMember)
        .where(
            RosterMember.on_duty.is_(True),
            RosterMember.province_code == province if province else RosterMember.province_code.is_(None),
        )
        .order_by(RosterMember.position, RosterMember.id)
    ).all()
    members = [Member(m.id, m.name, m.phone, m.zalo_user_id) for m in on_duty]
    last_told = session.scalar(
        select(AlertNotification.member_id)
        .where(AlertNotification.alert_id == alert.id, AlertNotification.status == NotificationStatus.SENT)
        .order_by(AlertNotification.id.desc())
        .limit(1)
    )
    ids = [m.id for m in members]
    start = ids.index(last_told) + 1 if last_told in ids else 0
    return members[start:] + members[:start]


async def notify_due(
    sessions: sessionmaker[Session],
    notifiers: list[Notifier],
    public_url: str,
    escalate_after: timedelta,
    now: datetime | None = None,
) -> int:
    """Tell the roster of every urgent alert whose round is due; returns the messages sent."""
    rounds = await asyncio.to_thread(_claim_rounds, sessions, now or utcnow(), escalate_after, public_url)
    sent = 0
    for due in rounds:
        sent += await _tell_one(sessions, notifiers, due)
    return sent


async def _tell_one(sessions: sessionmaker[Session], notifiers: list[Notifier], due: Round) -> int:
    """The first member a channel reaches is told; each refusal is recorded and the next channel or member tried."""
    for member in due.members:
        for notifier in (n for n in notifiers if n.reaches(member)):
            try:
                ref = await notifier.send(member, due.text)
            except NotifyFailed as error:
                await asyncio.to_thread(_record, sessions, due, member, notifier.name, None, str(error))
                continue
            await asyncio.to_thread(_record, sessions, due, member, notifier.name, ref, None)
            return 1
    return 0


def _record(
    sessions: sessionmaker[Session], due: Round, member: Member, channel: str, ref: str | None, error: str | None
) -> None:
    with sessions.begin() as session:
        if error is None:
            next_round = utcnow() + due.escalate_after
            session.execute(update(Alert).where(Alert.id == due.alert_id).values(next_notification_at=next_round))
        session.add(
            AlertNotification(
                alert_id=due.alert_id,
                member_id=member.id,
                member_name=member.name,
                channel=channel,
                status=NotificationStatus.FAILED if error else NotificationStatus.SENT,
                provider_ref=ref,
                error=error[:500] if error else None,
            )
        )


def _check_manages(user: User, province_code: str | None) -> None:
    if user.role not in CAN_MANAGE_ROSTER:
        raise Forbidden(f"the {user.role.value} role cannot manage the duty roster")
    if user.province_code is not None and province_code != user.province_code:
        raise Forbidden("a provincial user manages the roster of their own province only")


def add_member(
    session: Session,
    user: User,
    *,
    name: str,
    phone: str,
    province_code: str | None,
    zalo_user_id: str | None = None,
    position: int = 1,
) -> RosterMember:
    _check_manages(user, province_code)
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidValue("name", "tên từ 1 đến 100 ký tự")
    try:
        phone = normalize_phone(phone)
    except InvalidPhone as error:
        raise InvalidValue("phone", str(error)) from None
    if not 1 <= position <= 1000:
        raise InvalidValue("position", "thứ tự từ 1 đến 1000")
    zalo_user_id = (zalo_user_id or "").strip() or None
    if zalo_user_id is not None and (len(zalo_user_id) > 64 or not zalo_user_id.isdigit()):
        raise InvalidValue("zalo_user_id", "mã người dùng Zalo của OA là một dãy số")
    try:
        province_code = validate_province_code(province_code)
    except ValueError as error:
        raise InvalidValue("province", str(error)) from None
    member = RosterMember(
        province_code=province_code, name=name, phone=phone, zalo_user_id=zalo_user_id, position=position
    )
    session.add(member)
    session.flush()
    audit(session, user, "roster.add", "roster_member", [member.id])
    return member


def roster(session: Session, user: User, province_code: str | None = None) -> list[RosterMember]:
    """The roster of the user's province (a national user: of `province_code`, or everyone's)."""
    stmt = select(RosterMember).order_by(RosterMember.province_code, RosterMember.position, RosterMember.id)
    province = user.province_code or province_code
    if province is not None:
        stmt = stmt.where(RosterMember.province_code == province)
    return list(session.scalars(stmt))


def _member(session: Session, user: User, member_id: int) -> RosterMember:
    member = session.get(RosterMember, member_id)
    if member is None or (user.province_code is not None and member.province_code != user.province_code):
        raise NotFound.in_scope("roster member", member_id)
    _check_manages(user, member.province_code)
    return member


def set_on_duty(session: Session, user: User, member_id: int, on_duty: bool) -> RosterMember:
    member = _member(session, user, member_id)
    member.on_duty = on_duty
    audit(session, user, "roster.duty", "roster_member", [member.id], detail={"on_duty": on_duty})
    return member


def remove_member(session: Session, user: User, member_id: int) -> None:
    """Off the roster; the notifications they were sent keep their name."""
    member = _member(session, user, member_id)
    audit(session, user, "roster.remove", "roster_member", [member.id], detail={"name": member.name})
    session.delete(member)
