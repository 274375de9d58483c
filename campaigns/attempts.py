"""One outreach attempt after a worker claimed it: what each thing a channel reports does to it.

    claimed --a channel took it--> contacting --answered / replied--> in_progress
    contacting | in_progress --the dialogue ended--> completed
                             --callback asked-----> retry_wait (due at the time the resident gave)
                             --busy, no answer, machine, dropped, failed--> retry_wait (tries left today)
                                                                         -> failed (none left today)
    claimed | contacting --channel cannot reach them--> scheduled again at once on the next channel, or failed

Only a live attempt (contacting, in progress) moves: once a try is settled (retry_wait, completed, failed,
canceled), a provider's late or repeated report about it changes nothing.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from campaigns.rules import CampaignRules
from models import AttemptStatus, Channel, Outcome, OutreachAttempt

LIVE = frozenset({AttemptStatus.CONTACTING, AttemptStatus.IN_PROGRESS})
UNREACHED = frozenset({Outcome.DROPPED, Outcome.BUSY, Outcome.NO_ANSWER, Outcome.MACHINE, Outcome.FAILED})


def handed_over(attempt: OutreachAttempt, channel: Channel, provider_ref: str | None, now: datetime) -> None:
    """A channel took the attempt: the call is placed or the message sent. Counts as one try of the day."""
    attempt.status = AttemptStatus.CONTACTING
    attempt.channel = channel
    attempt.provider_ref = provider_ref
    attempt.tries += 1
    attempt.updated_at = now


def record(
    attempt: OutreachAttempt,
    rules: CampaignRules,
    outcome: Outcome,
    now: datetime,
    *,
    callback_at: datetime | None = None,
    detail: str | None = None,
) -> None:
    """Move the attempt on after a channel's report."""
    if attempt.status not in LIVE or (outcome is Outcome.DELIVERED and attempt.status != AttemptStatus.CONTACTING):
        return  # settled already; or a receipt arriving after the resident answered, which must not undo it
    attempt.last_outcome = outcome
    attempt.updated_at = now
    if detail:
        attempt.last_error = detail[:500]
    if outcome is Outcome.ANSWERED:
        attempt.status = AttemptStatus.IN_PROGRESS
    elif outcome is Outcome.DELIVERED:
        pass  # still contacting: now waiting for the resident's reply
    elif outcome is Outcome.COMPLETED:
        attempt.status = AttemptStatus.COMPLETED
    elif outcome is Outcome.CALLBACK and callback_at is not None:
        attempt.status, attempt.due_at = AttemptStatus.RETRY_WAIT, rules.next_allowed(max(callback_at, now))
    else:
        _retry_or_fail(attempt, rules, now)


def record_report(
    session: Session, attempt_id: int, provider_ref: str, outcome: Outcome, now: datetime, detail: str | None = None
) -> None:
    """A provider's report about one try (a call's end, a message's delivery), by the attempt it was sent for.

    A report about an earlier try (the attempt has been handed over again since) changes nothing.
    """
    attempt = session.get(OutreachAttempt, attempt_id)
    if attempt is not None and attempt.provider_ref == provider_ref:
        record(attempt, CampaignRules.model_validate(attempt.campaign.rules), outcome, now, detail=detail)


def _retry_or_fail(attempt: OutreachAttempt, rules: CampaignRules, now: datetime) -> None:
    """Try again after the spacing, the same day, while tries are left; else the day is failed."""
    retry_at = rules.next_allowed(now + timedelta(minutes=rules.retry_spacing_minutes))
    zone = ZoneInfo(rules.timezone)
    same_day = retry_at.astimezone(zone).date() == now.astimezone(zone).date()
    if attempt.tries < rules.max_attempts_per_day and same_day:
        attempt.status, attempt.due_at = AttemptStatus.RETRY_WAIT, retry_at
    else:
        attempt.status = AttemptStatus.FAILED


def record_interrupted(attempt: OutreachAttempt, now: datetime) -> None:
    """A worker died handing the attempt over and the channel cannot say whether it was sent: the day's try is given
    up rather than risk reaching the person twice."""
    attempt.status, attempt.last_outcome, attempt.updated_at = AttemptStatus.FAILED, Outcome.INTERRUPTED, now
    attempt.last_error = "the worker stopped while handing it over; not sent again so no one is contacted twice"


def fall_back(attempt: OutreachAttempt, rules: CampaignRules, reason: str, now: datetime) -> Channel | None:
    """The current channel cannot reach this person: schedule the next channel in the fallback order at once.

    Returns the next channel, or None when none is left (the attempt then fails for the day).
    """
    current = attempt.channel or rules.channels[0]
    later = rules.channels[rules.channels.index(current) + 1 :] if current in rules.channels else []
    attempt.last_error = f"{current}: {reason}"[:500]
    attempt.updated_at = now
    if later:
        attempt.channel, attempt.status, attempt.due_at = later[0], AttemptStatus.SCHEDULED, now
        return later[0]
    attempt.channel, attempt.status = current, AttemptStatus.FAILED
    return None
