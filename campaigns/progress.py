"""How far a campaign has got: reach and completion, open alerts, outcomes today, by day and by channel, final
statuses, and when today's work will be done at the pace the dispatcher keeps.

Progress is counted from days kept as they settle, never recounted over every attempt on a view: once a date is
over, its follow-up days are counted once (`settle`, run by the worker's planning job, and by a view that finds the
days before today not kept yet) into `campaign_days`, by date, channel, attempt status and Go.Data outcome; a view
reads those rows and counts only today's follow-up days live (`today_counts`), so its cost does not grow with the
campaign's history. A past day keeps the counts it had when it was settled: a declaration that arrives after that (a
callback kept the next morning) is in the export and the person's record, not in the kept day. Final statuses are
those counted at the last settlement (normally just after midnight: the end of yesterday), as Go.Data reports them
daily.

Rates are over outreach attempts (one per person and follow-up day; a retry updates the same row):

- reach rate: attempts that reached someone (`outcomes.REACHED_*`) over attempts tried at least once;
- completion rate: completed attempts over attempts planned, overall and for today's follow-up days.

ETA: the attempts still waiting (scheduled, retry_wait, claimed) and due before tomorrow in the campaign's time zone
(overdue ones included: the dispatcher takes them first), at the pace of the last 10 minutes (attempts claimed per
second) but never faster than the campaign allows (new_calls_per_second when its first channel is voice,
messages_per_second otherwise), counting calling hours only: when today's windows close first, the ETA falls on a
later working day and the reason says so. There is no ETA when nothing is left, the campaign is not running or
nothing was claimed in the last 10 minutes; the reason says which (and, outside calling hours, when they reopen).
"""

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.outcomes import (
    DailyOutcome,
    DayCount,
    FinalStatus,
    day_counts,
    local_today,
    person_records,
    today_counts,
)
from campaigns.rules import CampaignRules
from models import (
    Alert,
    AlertLevel,
    AttemptStatus,
    Campaign,
    CampaignDay,
    CampaignSettlement,
    CampaignStatus,
    Channel,
    Declaration,
    OutreachAttempt,
    utcnow,
)

RATE_WINDOW = timedelta(minutes=10)
WAITING = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT, AttemptStatus.CLAIMED)


EtaWhy = Literal["nothing_left", "not_running", "outside_calling_hours", "standing_still", "after_today"]


class Eta(BaseModel):
    remaining: int = Field(description="attempts still waiting that are due today (overdue ones included)")
    at: datetime | None = Field(description="when the last of them should be claimed, in the campaign's time zone")
    rate_per_second: float | None = Field(description="the pace used: attempts claimed per second")
    reason: str | None = Field(description="why there is no ETA, or why it falls after today")
    why: EtaWhy | None = Field(None, description="the reason as a code, for pages that say it in their language")
    opens_at: datetime | None = Field(None, description="outside calling hours: when they open again")


class DayOutcomes(BaseModel):
    day: date
    outcomes: dict[str, int] = Field(description="people's follow-up days of that date by Go.Data daily outcome")


class ChannelFigures(BaseModel):
    attempts: int = Field(description="attempts whose latest try went through this channel")
    reached: int
    completed: int


class Progress(BaseModel):
    today: date = Field(description="today in the campaign's time zone")
    reach_rate: float | None = Field(description="attempts that reached someone / attempts tried at least once")
    completion_rate: float | None = Field(description="completed attempts / attempts planned, every day so far")
    completion_rate_today: float | None = Field(description="the same for today's follow-up days")
    open_alerts: dict[str, int] = Field(description="unacknowledged alerts on this campaign's declarations, by level")
    outcomes_today: dict[str, int] = Field(description="today's follow-up days by Go.Data daily outcome")
    outcomes_by_day: list[DayOutcomes] = Field(description="every date with follow-up days, up to today")
    by_channel: dict[str, ChannelFigures] = Field(description="attempts by the channel of their latest try")
    final_statuses: dict[str, int] = Field(description="people by Go.Data final status, at `final_statuses_at`")
    final_statuses_at: datetime | None = Field(description="when they were counted: the last settlement of the days")
    eta: Eta


def progress(session: Session, campaign: Campaign, now: datetime, counts: list[DayCount] | None = None) -> Progress:
    """The campaign's progress at `now`, from its counted days (counted here unless the caller has them)."""
    today = local_today(CampaignRules.model_validate(campaign.rules), now)
    counts = counts if counts is not None else counted_days(session, campaign, today)
    kept = session.get(CampaignSettlement, campaign.id)
    of_today = [count for count in counts if count.day == today]
    return Progress(
        today=today,
        reach_rate=_ratio(sum(c.reached for c in counts), sum(c.tried for c in counts)),
        completion_rate=_completion(counts),
        completion_rate_today=_completion(of_today),
        open_alerts=_zeros(AlertLevel.WATCH, AlertLevel.URGENT) | open_alerts(session, campaign.id),
        outcomes_today=_by_outcome(of_today),
        outcomes_by_day=_by_day(counts),
        by_channel=_by_channel(counts),
        final_statuses=_zeros(*FinalStatus) | (kept.final_statuses if kept else {}),
        final_statuses_at=kept.settled_at if kept else None,
        eta=eta(session, campaign, now),
    )


def attempts_by_status(counts: list[DayCount]) -> dict[str, int]:
    """Outreach attempts by status, from the counted days (days never planned have none)."""
    tally: Counter[str] = Counter()
    for count in counts:
        if count.attempt_status:
            tally[count.attempt_status] += count.follow_ups
    return dict(tally)


def counted_days(session: Session, campaign: Campaign, today: date) -> list[DayCount]:
    """The campaign's follow-up days counted by date: the days before today as kept (kept first if they are not
    yet), and today's counted live (with today's days not planned yet, when the campaign is paused, as not
    performed)."""
    settle(session, campaign, today)
    kept = session.get(CampaignSettlement, campaign.id)
    stored = session.execute(
        select(
            CampaignDay.day,
            CampaignDay.channel,
            CampaignDay.attempt_status,
            CampaignDay.outcome,
            CampaignDay.follow_ups,
            CampaignDay.tried,
            CampaignDay.reached,
        ).where(CampaignDay.campaign_id == campaign.id, CampaignDay.day < today)
    )
    counts = [DayCount(*row[:3], DailyOutcome(row[3]), *row[4:]) for row in stored]
    live = today_counts(session, campaign, today)
    counts += live
    due = kept.follow_ups_next_day if kept and kept.settled_through == today - timedelta(days=1) else 0
    unplanned = due - sum(count.follow_ups for count in live)
    if unplanned > 0 and campaign.status != CampaignStatus.CANCELED:
        ended = campaign.status == CampaignStatus.COMPLETED
        outcome = DailyOutcome.NOT_ATTEMPTED if ended else DailyOutcome.NOT_PERFORMED
        counts.append(DayCount(today, "", "", outcome, unplanned, 0, 0))
    return counts


def settle(session: Session, campaign: Campaign, today: date) -> bool:
    """Keep the campaign's follow-up days of the dates before `today` not kept yet, with the final statuses of now
    and the number of follow-up days today. Returns whether it kept anything. One pass over the campaign's
    follow-up days, once a day; idempotent, and a concurrent worker's settlement of the same days wins quietly."""
    if campaign.started_at is None:
        return False
    kept = session.get(CampaignSettlement, campaign.id)
    if kept is not None and kept.settled_through >= today - timedelta(days=1):
        return False
    since = kept.settled_through if kept else date.min
    rows: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    follow_ups_today = 0
    for count in day_counts(session, campaign, today):
        if count.day == today:
            follow_ups_today += count.follow_ups
        elif since < count.day < today:
            row = rows[(count.day, count.channel, count.attempt_status, count.outcome)]
            for index, value in enumerate((count.follow_ups, count.tried, count.reached)):
                row[index] += value
    finals = Counter(record.final.value for record in person_records(session, campaign, today))
    try:
        with session.begin_nested():
            session.add_all(
                CampaignDay(
                    campaign_id=campaign.id,
                    day=day,
                    channel=channel,
                    attempt_status=status,
                    outcome=outcome,
                    follow_ups=follow_ups,
                    tried=tried,
                    reached=reached,
                )
                for (day, channel, status, outcome), (follow_ups, tried, reached) in rows.items()
            )
            if kept is None:
                kept = CampaignSettlement(campaign_id=campaign.id)
                session.add(kept)
            kept.settled_through = today - timedelta(days=1)
            kept.follow_ups_next_day = follow_ups_today
            kept.final_statuses = dict(finals)
            kept.settled_at = utcnow()
    except IntegrityError:  # another worker kept these days first
        return False
    return True


def settle_running_campaigns(session: Session, now: datetime) -> int:
    """The planning job's part: the days of every live campaign kept once they are over. Returns the campaigns
    settled."""
    settled = 0
    live = (CampaignStatus.RUNNING, CampaignStatus.PAUSED)
    for campaign in session.scalars(select(Campaign).where(Campaign.status.in_(live))).all():
        settled += settle(session, campaign, local_today(CampaignRules.model_validate(campaign.rules), now))
    return settled


def _zeros(*keys: str) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _completion(counts: list[DayCount]) -> float | None:
    planned = sum(c.follow_ups for c in counts if c.attempt_status)
    return _ratio(sum(c.follow_ups for c in counts if c.attempt_status == AttemptStatus.COMPLETED), planned)


def _by_outcome(counts: list[DayCount]) -> dict[str, int]:
    tally = _zeros(*DailyOutcome)
    for count in counts:
        tally[count.outcome] += count.follow_ups
    return tally


def _by_day(counts: list[DayCount]) -> list[DayOutcomes]:
    days: dict[date, list[DayCount]] = defaultdict(list)
    for count in counts:
        days[count.day].append(count)
    return [DayOutcomes(day=day, outcomes=_by_outcome(days[day])) for day in sorted(days)]


def _by_channel(counts: list[DayCount]) -> dict[str, ChannelFigures]:
    figures: dict[str, ChannelFigures] = {}
    for count in counts:
        if count.channel:
            row = figures.setdefault(count.channel, ChannelFigures(attempts=0, reached=0, completed=0))
            row.attempts += count.follow_ups
            row.reached += count.reached
            if count.attempt_status == AttemptStatus.COMPLETED:
                row.completed += count.follow_ups
    return figures


def open_alerts(session: Session, campaign_id: int) -> dict[str, int]:
    """Unacknowledged alerts raised on the campaign's declarations, by level."""
    rows = session.execute(
        select(Alert.level, func.count())
        .join(Declaration, Declaration.id == Alert.declaration_id)
        .where(Declaration.campaign_id == campaign_id, Alert.acknowledged_at.is_(None))
        .group_by(Alert.level)
    )
    return {level.value: count for level, count in rows}


def eta(session: Session, campaign: Campaign, now: datetime) -> Eta:
    rules = CampaignRules.model_validate(campaign.rules)
    zone = ZoneInfo(rules.timezone)
    tomorrow = datetime.combine(local_today(rules, now) + timedelta(days=1), time(0), zone)
    remaining = session.scalar(
        select(func.count()).where(
            OutreachAttempt.campaign_id == campaign.id,
            OutreachAttempt.status.in_(WAITING),
            OutreachAttempt.due_at < tomorrow,
        )
    )
    if not remaining:
        return Eta(remaining=0, at=None, rate_per_second=None, reason="nothing is left to do today", why="nothing_left")
    if campaign.status != CampaignStatus.RUNNING:
        reason = f"the campaign is {campaign.status}"
        return Eta(remaining=remaining, at=None, rate_per_second=None, reason=reason, why="not_running")
    claimed = session.scalar(
        select(func.count()).where(
            OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.claimed_at.between(now - RATE_WINDOW, now)
        )
    )
    if not claimed:
        opens = rules.next_allowed(now)
        if opens > now:
            reason = f"outside calling hours until {opens:%Y-%m-%d %H:%M}"
            return Eta(remaining=remaining, at=None, rate_per_second=None, reason=reason, why="outside_calling_hours",
                       opens_at=opens)  # fmt: skip
        reason = f"nothing was claimed in the last {RATE_WINDOW.seconds // 60} minutes"
        return Eta(remaining=remaining, at=None, rate_per_second=None, reason=reason, why="standing_still")
    rate = min(claimed / RATE_WINDOW.total_seconds(), _allowed_rate(rules))
    done = rules.done_at(now, timedelta(seconds=remaining / rate)).astimezone(zone)
    if done < tomorrow:
        return Eta(remaining=remaining, at=done, rate_per_second=round(rate, 4), reason=None)
    later = f"today's calling hours close first: it finishes on {done.date()}"
    return Eta(remaining=remaining, at=done, rate_per_second=round(rate, 4), reason=later, why="after_today")


def _allowed_rate(rules: CampaignRules) -> float:
    return rules.new_calls_per_second if rules.channels[0] == Channel.VOICE else rules.messages_per_second
