"""The capacity plan of a campaign before it starts: for these lists, calling hours and rates, how many contacts
today and on each follow-up day, when today's are done, and how many concurrent lines would finish them by a
chosen hour.

A contact is a person's follow-up day (the first try of it: retries come on top, at most `max_attempts_per_day`).
Calls go out at the slower of two paces: `new_calls_per_second`, and what the lines allow (`max_concurrent_calls`
lines, each busy for `call_seconds` a call; a declaration call lasts about two minutes). Messages go out at
`messages_per_second` and hold no line. A day's contacts are planned on that day; on a holiday they wait for the next
working day's calling hours, as the dispatcher does.

The lists are read once, grouped by exposure date in the database: the plan costs the same for a list of a hundred
and of a hundred thousand people.
"""

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, computed_field
from sqlalchemy import Date, func, literal, select
from sqlalchemy.orm import Session

from campaigns.rules import CampaignRules
from models import Channel, ContactListMember

DEFAULT_CALL_SECONDS = 120


class PlannedDay(BaseModel):
    day: date
    contacts: int
    holiday: bool
    done_at: datetime | None  # when its contacts are done at the campaign's pace (None: nobody that day)


class CapacityPlan(BaseModel):
    today: date
    by_voice: bool  # the first channel is a call (lines matter), else a message
    pace_per_second: float  # contacts started per second
    pace_limited_by: str  # "rate" (new_calls_per_second / messages_per_second) or "lines" (concurrent calls)
    days: list[PlannedDay]  # today and every later follow-up date with contacts, in order
    starts_at: datetime | None  # when today's first contact can go out
    finish_by: datetime  # the hour asked for (today's last calling window's end by default)
    lines_needed: int | None  # concurrent lines that finish today's contacts by finish_by (voice only)
    rate_needed: float | None  # contacts per second that finish them by then (None: no calling time left)

    @computed_field
    @property
    def contacts_today(self) -> int:
        return self.days[0].contacts if self.days and self.days[0].day == self.today else 0

    @computed_field
    @property
    def busiest(self) -> PlannedDay | None:
        return max(self.days, key=lambda d: d.contacts, default=None)


def exposures(session: Session, list_ids: list[int], today: date) -> dict[date, int]:
    """People on the lists by their latest exposure date (today for none, as a campaign started today counts)."""
    latest = (
        select(func.max(func.coalesce(ContactListMember.exposure_date, literal(today, Date))).label("exposure"))
        .where(ContactListMember.contact_list_id.in_(list_ids))
        .group_by(ContactListMember.person_id)
        .subquery()
    )
    rows = session.execute(select(latest.c.exposure, func.count()).group_by(latest.c.exposure))
    return {day if isinstance(day, date) else date.fromisoformat(day): people for day, people in rows}


def capacity_plan(
    session: Session,
    list_ids: list[int],
    rules: CampaignRules,
    now: datetime,
    finish_by: time | None = None,
    call_seconds: int = DEFAULT_CALL_SECONDS,
) -> CapacityPlan:
    zone = ZoneInfo(rules.timezone)
    today = now.astimezone(zone).date()
    contacts: dict[date, int] = {}
    for exposure, people in exposures(session, list_ids, today).items():
        for offset in rules.follow_up_offsets():
            if (day := exposure + timedelta(days=offset)) >= today:
                contacts[day] = contacts.get(day, 0) + people
    by_voice = rules.channels[0] == Channel.VOICE
    line_pace = rules.max_concurrent_calls / call_seconds
    rate = rules.new_calls_per_second if by_voice else rules.messages_per_second
    pace = min(rate, line_pace) if by_voice else rate
    days = [_day(rules, day, contacts[day], now, pace) for day in sorted(contacts)]
    deadline = datetime.combine(today, finish_by or rules.calling_hours[-1].end, zone)
    starts_at = rules.next_allowed(now) if contacts.get(today) else None
    seconds = rules.calling_time(now, deadline).total_seconds()
    due = contacts.get(today, 0)
    rate_needed = round(due / seconds, 4) if seconds > 0 and due else None
    lines = math.ceil(due * call_seconds / seconds) if by_voice and seconds > 0 and due else None
    return CapacityPlan(
        today=today,
        by_voice=by_voice,
        pace_per_second=round(pace, 4),
        pace_limited_by="lines" if by_voice and line_pace < rate else "rate",
        days=days,
        starts_at=starts_at,
        finish_by=deadline,
        lines_needed=lines,
        rate_needed=rate_needed,
    )


def _day(rules: CampaignRules, day: date, contacts: int, now: datetime, pace: float) -> PlannedDay:
    zone = ZoneInfo(rules.timezone)
    begins = max(now, datetime.combine(day, time(0), zone))
    done = rules.done_at(begins, timedelta(seconds=contacts / pace)).astimezone(zone) if contacts else None
    return PlannedDay(day=day, contacts=contacts, holiday=day in rules.holidays, done_at=done)
