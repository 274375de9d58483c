"""How far a campaign has got: reach and completion, open alerts, today's outcomes, final statuses, and when today's
work will be done at the pace the dispatcher keeps.

Rates are over outreach attempts (one per person and follow-up day; a retry updates the same row):

- reach rate: attempts that reached someone (in progress or completed, or whose latest try was answered, completed,
  dropped half-way or ended with a callback request) over attempts tried at least once; a row keeps only its latest
  try's outcome, so a resident reached on the first try and missed on the second counts as not reached;
- completion rate: completed attempts over attempts planned, overall and for today's follow-up days.

ETA: the attempts still waiting (scheduled, retry_wait, claimed) and due before tomorrow in the campaign's time zone
(overdue ones included: the dispatcher takes them first), at the pace of the last 10 minutes (attempts claimed per
second) but never faster than the campaign allows (new_calls_per_second when its first channel is voice,
messages_per_second otherwise), counting calling hours only: when today's windows close first, the ETA falls on a
later working day and the reason says so. There is no ETA when nothing is left, the campaign is not running or
nothing was claimed in the last 10 minutes; the reason says which (and, outside calling hours, when they reopen).
"""

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from campaigns.outcomes import DailyOutcome, FinalStatus, count_where, local_today, person_records
from campaigns.rules import CampaignRules
from models import (
    Alert,
    AlertLevel,
    AttemptStatus,
    Campaign,
    CampaignStatus,
    Channel,
    Declaration,
    Outcome,
    OutreachAttempt,
)

RATE_WINDOW = timedelta(minutes=10)
WAITING = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT, AttemptStatus.CLAIMED)
REACHED_STATUSES = (AttemptStatus.IN_PROGRESS, AttemptStatus.COMPLETED)
REACHED_OUTCOMES = (Outcome.ANSWERED, Outcome.COMPLETED, Outcome.CALLBACK, Outcome.DROPPED)


class Eta(BaseModel):
    remaining: int = Field(description="attempts still waiting that are due today (overdue ones included)")
    at: datetime | None = Field(description="when the last of them should be claimed, in the campaign's time zone")
    rate_per_second: float | None = Field(description="the pace used: attempts claimed per second")
    reason: str | None = Field(description="why there is no ETA, or why it falls after today")


class Progress(BaseModel):
    today: date = Field(description="today in the campaign's time zone")
    reach_rate: float | None = Field(description="attempts that reached someone / attempts tried at least once")
    completion_rate: float | None = Field(description="completed attempts / attempts planned, every day so far")
    completion_rate_today: float | None = Field(description="the same for today's follow-up days")
    open_alerts: dict[str, int] = Field(description="unacknowledged alerts on this campaign's declarations, by level")
    outcomes_today: dict[str, int] = Field(description="today's follow-up days by Go.Data daily outcome")
    final_statuses: dict[str, int] = Field(description="people by Go.Data final follow-up status")
    eta: Eta


def progress(session: Session, campaign: Campaign, now: datetime) -> Progress:
    rules = CampaignRules.model_validate(campaign.rules)
    today = local_today(rules, now)
    reach_rate, completion_rate = _attempt_rates(session, campaign.id)
    records = list(person_records(session, campaign, today))
    planned_today = sum(record.planned_today for record in records)
    return Progress(
        today=today,
        reach_rate=reach_rate,
        completion_rate=completion_rate,
        completion_rate_today=_ratio(sum(record.completed_today for record in records), planned_today),
        open_alerts=_zeros(AlertLevel.WATCH, AlertLevel.URGENT) | open_alerts(session, campaign.id),
        outcomes_today=_zeros(*DailyOutcome) | Counter(r.outcome_today for r in records if r.outcome_today),
        final_statuses=_zeros(*FinalStatus) | Counter(record.final for record in records),
        eta=eta(session, campaign, now),
    )


def _zeros(*keys: str) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _attempt_rates(session: Session, campaign_id: int) -> tuple[float | None, float | None]:
    """(reach rate, completion rate) over every attempt of the campaign."""
    tried = OutreachAttempt.tries > 0
    reached = and_(
        tried,
        or_(
            OutreachAttempt.status.in_(REACHED_STATUSES),
            OutreachAttempt.last_outcome.in_(REACHED_OUTCOMES),
        ),
    )
    planned, completed, tried_count, reached_count = session.execute(
        select(
            func.count(),
            count_where(OutreachAttempt.status == AttemptStatus.COMPLETED),
            count_where(tried),
            count_where(reached),
        ).where(OutreachAttempt.campaign_id == campaign_id)
    ).one()
    return _ratio(reached_count, tried_count), _ratio(completed, planned)


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
        return Eta(remaining=0, at=None, rate_per_second=None, reason="nothing is left to do today")
    if campaign.status != CampaignStatus.RUNNING:
        return Eta(remaining=remaining, at=None, rate_per_second=None, reason=f"the campaign is {campaign.status}")
    claimed = session.scalar(
        select(func.count()).where(
            OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.claimed_at.between(now - RATE_WINDOW, now)
        )
    )
    if not claimed:
        return Eta(remaining=remaining, at=None, rate_per_second=None, reason=_standing_still(rules, now))
    rate = min(claimed / RATE_WINDOW.total_seconds(), _allowed_rate(rules))
    done = _finish(rules, now, timedelta(seconds=remaining / rate)).astimezone(zone)
    later = f"today's calling hours close first: it finishes on {done.date()}" if done >= tomorrow else None
    return Eta(remaining=remaining, at=done, rate_per_second=round(rate, 4), reason=later)


def _standing_still(rules: CampaignRules, now: datetime) -> str:
    opens = rules.next_allowed(now)
    if opens > now:
        return f"outside calling hours until {opens:%Y-%m-%d %H:%M}"
    return f"nothing was claimed in the last {RATE_WINDOW.seconds // 60} minutes"


def _allowed_rate(rules: CampaignRules) -> float:
    return rules.new_calls_per_second if rules.channels[0] == Channel.VOICE else rules.messages_per_second


def _finish(rules: CampaignRules, start: datetime, work: timedelta) -> datetime:
    """When `work` begun at `start` is done, counting only time inside calling hours on working days."""
    moment = start
    while True:
        opens = rules.next_allowed(moment)
        closes = _window_close(rules, opens)
        if opens + work <= closes:
            return opens + work
        work -= closes - opens
        moment = closes


def _window_close(rules: CampaignRules, inside: datetime) -> datetime:
    """The end of the calling window that `inside` (a moment `next_allowed` gave) falls in."""
    zone = ZoneInfo(rules.timezone)
    local = inside.astimezone(zone)
    end = next(w.end for w in rules.calling_hours if w.start <= local.time() < w.end)
    return datetime.combine(local.date(), end, zone)
