"""The commune dashboard (the reporting of the Bac Ninh deployment): per province, district and ward, the people
under follow-up, reached and symptomatic today, open alerts by level, Go.Data statuses, and the last 14 days.

Past days are counted once, as they settle (`settle_days`, run by the worker and on a view that finds a day missing),
into `area_days`; a view reads those rows and counts only today, so its cost does not grow with history. Go.Data
statuses are those at the end of yesterday (computing them is a pass over every follow-up day of every running
campaign: once a day, not per view).
"""

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, distinct, func, select
from sqlalchemy.orm import Session

from access.errors import InvalidValue
from campaigns.outcomes import FinalStatus, person_records
from models import (
    Alert,
    AlertLevel,
    AreaDay,
    Campaign,
    CampaignStatus,
    ContactListMember,
    Declaration,
    DeclarationStatus,
    Person,
    SettledDay,
    User,
    campaign_lists,
)

CHART_DAYS = 14
LEVELS = ("province", "district", "ward")
NOT_REACHED = (DeclarationStatus.WRONG_PERSON, DeclarationStatus.UNREACHABLE)
Area = tuple[str, str, str]  # province code, district, ward ('' when unknown)
AREA_COLUMNS = (
    func.coalesce(Person.province_code, ""),
    func.coalesce(Person.district, ""),
    func.coalesce(Person.ward, ""),
)


@dataclass
class AreaFigures:
    under_follow_up: int = 0
    reached_today: int = 0
    symptomatic_today: int = 0
    open_urgent: int = 0
    open_watch: int = 0
    follow_up_completed: int = 0
    lost_to_follow_up: int = 0

    def add(self, other: "AreaFigures") -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclass(frozen=True)
class DayPoint:
    day: date
    reached: int
    symptomatic: int
    urgent: int


@dataclass(frozen=True)
class Dashboard:
    today: date
    level: str
    rows: list[tuple[Area, AreaFigures]]  # sorted by area
    total: AreaFigures
    days: list[DayPoint]  # the last CHART_DAYS days, today last
    go_data_as_of: date | None  # the day whose end the Go.Data statuses are of (None: not counted yet)


def _window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


def _distinct_people(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(distinct(case((condition, Declaration.person_id))))


def _answers(session: Session, day: date, zone: ZoneInfo, province: str | None = None) -> dict[Area, tuple]:
    """(reached, symptomatic, urgent) people per area, from the declarations begun on `day`."""
    start, end = _window(day, zone)
    stmt = (
        select(
            *AREA_COLUMNS,
            _distinct_people(Declaration.status.not_in(NOT_REACHED)),
            _distinct_people(Declaration.alert_level != AlertLevel.NONE),
            _distinct_people(Declaration.alert_level == AlertLevel.URGENT),
        )
        .join(Declaration.person)
        .where(Declaration.created_at >= start, Declaration.created_at < end)
        .group_by(*AREA_COLUMNS)
    )
    if province is not None:  # on the declaration (not through its person_id index): the day's index leads
        stmt = stmt.where((Declaration.person_id + 0).in_(select(Person.id).where(Person.province_code == province)))
    return {tuple(row[:3]): tuple(row[3:]) for row in session.execute(stmt)}


def _go_data(session: Session, day: date) -> dict[Area, tuple[int, int, int]]:
    """(under follow-up, completed, lost) people per area at the end of `day`, over the running campaigns."""
    counts: dict[Area, list[int]] = defaultdict(lambda: [0, 0, 0])
    index = {FinalStatus.UNDER_FOLLOW_UP: 0, FinalStatus.FOLLOW_UP_COMPLETED: 1, FinalStatus.LOST_TO_FOLLOW_UP: 2}
    for campaign in session.scalars(
        select(Campaign).where(Campaign.status.in_((CampaignStatus.RUNNING, CampaignStatus.PAUSED)))
    ):
        rows = session.execute(
            select(Person.id, *AREA_COLUMNS)
            .join(ContactListMember, ContactListMember.person_id == Person.id)
            .join(campaign_lists, campaign_lists.c.contact_list_id == ContactListMember.contact_list_id)
            .where(campaign_lists.c.campaign_id == campaign.id)
        )
        areas = {row[0]: tuple(row[1:]) for row in rows}
        for record in person_records(session, campaign, day):
            if record.final in index:  # a contact who became a case is followed as a case, not counted here
                counts[areas.get(record.person_id, ("", "", ""))][index[record.final]] += 1
    return {area: tuple(values) for area, values in counts.items()}


def settle_days(session: Session, timezone: str, today: date, days: int = CHART_DAYS) -> int:
    """Keep the figures of each of the last `days` days before `today` that are not kept yet (yesterday's with the
    Go.Data statuses at its end). Returns the days settled. Idempotent; concurrent workers may both compute a day,
    the unique day key keeps one."""
    zone = ZoneInfo(timezone)
    wanted = [today - timedelta(days=back) for back in range(days - 1, 0, -1)]
    settled = set(session.scalars(select(SettledDay.day).where(SettledDay.day.in_(wanted))))
    missing = [day for day in wanted if day not in settled]
    for day in missing:
        answers = _answers(session, day, zone)
        go_data = _go_data(session, day) if day == today - timedelta(days=1) else {}
        for area in answers.keys() | go_data.keys():
            reached, symptomatic, urgent = answers.get(area, (0, 0, 0))
            under, completed, lost = go_data.get(area, (0, 0, 0))
            session.add(
                AreaDay(
                    day=day,
                    province_code=area[0],
                    district=area[1],
                    ward=area[2],
                    reached=reached,
                    symptomatic=symptomatic,
                    urgent=urgent,
                    under_follow_up=under,
                    follow_up_completed=completed,
                    lost_to_follow_up=lost,
                )
            )
        session.add(SettledDay(day=day))
        session.flush()
    return len(missing)


def _key(area: Area, level: str) -> Area:
    depth = LEVELS.index(level) + 1
    return area[:depth] + ("",) * (3 - depth)


def dashboard(
    session: Session, user: User, timezone: str, now: datetime, level: str = "ward", province: str | None = None
) -> Dashboard:
    """The dashboard of the user's province (a national user: of `province`, or of the country)."""
    if level not in LEVELS:
        raise InvalidValue("level", f"one of {', '.join(LEVELS)}")
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    province = user.province_code or province
    settle_days(session, timezone, today)
    figures: dict[Area, AreaFigures] = defaultdict(AreaFigures)
    answered_today = _answers(session, today, zone, province)
    for area, (reached, symptomatic, _urgent) in answered_today.items():
        row = figures[_key(area, level)]
        row.reached_today += reached
        row.symptomatic_today += symptomatic
    for area, level_, count in _open_alerts(session, province):
        row = figures[_key(area, level)]
        if level_ == AlertLevel.URGENT:
            row.open_urgent += count
        else:
            row.open_watch += count
    yesterday = today - timedelta(days=1)
    kept = select(AreaDay).where(AreaDay.day == yesterday)
    if province is not None:
        kept = kept.where(AreaDay.province_code == province)
    for area_day in session.scalars(kept):
        row = figures[_key((area_day.province_code, area_day.district, area_day.ward), level)]
        row.under_follow_up += area_day.under_follow_up
        row.follow_up_completed += area_day.follow_up_completed
        row.lost_to_follow_up += area_day.lost_to_follow_up
    total = AreaFigures()
    for row in figures.values():
        total.add(row)
    days = _chart(session, today, province, answered_today)
    as_of = yesterday if session.get(SettledDay, yesterday) else None
    return Dashboard(today, level, sorted(figures.items()), total, days, as_of)


def _open_alerts(session: Session, province: str | None) -> list[tuple[Area, AlertLevel, int]]:
    stmt = (
        select(*AREA_COLUMNS, Alert.level, func.count())
        .join(Alert.person)
        .where(Alert.acknowledged_at.is_(None), Alert.level != AlertLevel.NONE)
        .group_by(*AREA_COLUMNS, Alert.level)
    )
    if province is not None:
        stmt = stmt.where(Person.province_code == province)
    return [(tuple(row[:3]), row[3], row[4]) for row in session.execute(stmt)]


def _chart(session: Session, today: date, province: str | None, answered_today: dict[Area, tuple]) -> list[DayPoint]:
    first = today - timedelta(days=CHART_DAYS - 1)
    stmt = (
        select(AreaDay.day, func.sum(AreaDay.reached), func.sum(AreaDay.symptomatic), func.sum(AreaDay.urgent))
        .where(AreaDay.day >= first, AreaDay.day < today)
        .group_by(AreaDay.day)
    )
    if province is not None:
        stmt = stmt.where(AreaDay.province_code == province)
    kept = {row[0]: DayPoint(*row) for row in session.execute(stmt)}
    if answered_today:
        kept[today] = DayPoint(today, *(sum(column) for column in zip(*answered_today.values(), strict=True)))
    span = [first + timedelta(days=n) for n in range(CHART_DAYS)]
    return [kept.get(day) or DayPoint(day, 0, 0, 0) for day in span]
