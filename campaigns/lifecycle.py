"""A campaign's life as an explicit state machine, and the planning of each day's outreach.

    draft --start--> running --pause--> paused --resume--> running
    draft | running | paused --cancel--> canceled (no one is ever contacted again)
    running --its last follow-up day closed--> completed (the planning job sees it)

The last follow-up day is the latest exposure date on the campaign's lists plus the last follow-up offset. It closes
when every attempt of the campaign is settled (completed, failed, canceled) on that day, or when the day ends.

Planning is per day: starting a campaign plans today's contacts; the daily job plans each following day, so a
100,000-person list never needs millions of rows at once.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from access.errors import Conflict, InvalidValue
from campaigns.outcomes import SETTLED_ATTEMPTS
from campaigns.rules import CampaignRules
from models import (
    AttemptStatus,
    Campaign,
    CampaignStatus,
    ContactList,
    ContactListMember,
    Outcome,
    OutreachAttempt,
    Person,
    campaign_lists,
)

TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "cancel": ({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED}, CampaignStatus.CANCELED),
}
OPEN_ATTEMPTS = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT, AttemptStatus.CLAIMED)
WAITING_ATTEMPTS = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT)


class TransitionRefused(Conflict, ValueError):
    pass


def new_campaign(name: str, lists: list[ContactList], rules: CampaignRules, province: str | None = None) -> Campaign:
    """A draft campaign; its province is the given one, else the lists' when they all share one."""
    provinces = {c.province_code for c in lists}
    province = province or (provinces.pop() if len(provinces) == 1 else None)
    return Campaign(name=name, contact_lists=list(lists), rules=rules.model_dump(mode="json"), province_code=province)


def transition(session: Session, campaign: Campaign, action: str, now: datetime) -> None:
    if action not in TRANSITIONS:
        raise InvalidValue("action", f"unknown action '{action}'; use one of {', '.join(TRANSITIONS)}")
    allowed_from, target = TRANSITIONS[action]
    if campaign.status not in allowed_from:
        raise TransitionRefused(f"cannot {action} a {campaign.status.value} campaign")
    campaign.status = target
    if action == "start":
        campaign.started_at = now
        rules = CampaignRules.model_validate(campaign.rules)
        plan_day(session, campaign, now.astimezone(ZoneInfo(rules.timezone)).date(), now)
    elif action == "cancel":
        session.execute(
            update(OutreachAttempt)
            .where(OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.status.in_(OPEN_ATTEMPTS))
            .values(status=AttemptStatus.CANCELED, updated_at=now)
        )


def plan_day(session: Session, campaign: Campaign, day: date, now: datetime) -> int:
    """Schedule everyone whose follow-up includes `day` (by their latest exposure date); returns how many.

    People with no exposure date on their lists count from the day the campaign started. A confirmed case (a positive
    sample on or before `day`) is a case from then on, no longer a contact to follow. Planning twice is harmless: a
    person already planned for that follow-up day is left alone.
    """
    rules = CampaignRules.model_validate(campaign.rules)
    offsets = set(rules.follow_up_offsets())
    start_day = campaign.started_at.astimezone(ZoneInfo(rules.timezone)).date() if campaign.started_at else day
    exposures: dict[int, date] = {}
    members = session.execute(
        select(ContactListMember.person_id, ContactListMember.exposure_date)
        .join(campaign_lists, campaign_lists.c.contact_list_id == ContactListMember.contact_list_id)
        .join(Person, Person.id == ContactListMember.person_id)
        .where(campaign_lists.c.campaign_id == campaign.id)
        .where(or_(Person.confirmed_case_on.is_(None), Person.confirmed_case_on > day))
    )
    for person_id, exposure in members:
        exposure = exposure or start_day
        exposures[person_id] = max(exposures.get(person_id, exposure), exposure)
    due_people = {p: (day - e).days for p, e in exposures.items() if (day - e).days in offsets}
    planned = select(OutreachAttempt.person_id, OutreachAttempt.follow_up_day).where(
        OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.follow_up_day.in_(set(due_people.values()))
    )
    already = {tuple(row) for row in session.execute(planned)}
    due_at = rules.next_allowed(max(now, datetime.combine(day, time(0), ZoneInfo(rules.timezone))))
    rows = [
        {
            "campaign_id": campaign.id,
            "person_id": person,
            "follow_up_day": offset,
            "follow_up_date": day,
            "due_at": due_at,
            "status": AttemptStatus.SCHEDULED,
            "tries": 0,
            "created_at": now,
            "updated_at": now,
        }
        for person, offset in due_people.items()
        if (person, offset) not in already
    ]
    if rows:
        session.execute(insert(OutreachAttempt), rows)
    return len(rows)


def plan_running_campaigns(session: Session, now: datetime) -> int:
    """The daily job: for every running campaign, yesterday's unreached attempts end as failed and today is planned;
    a campaign whose last follow-up day has closed is completed.

    Idempotent (it runs often, and on every worker): days already planned and closed are left alone.
    """
    planned = 0
    for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)).all():
        rules = CampaignRules.model_validate(campaign.rules)
        today = now.astimezone(ZoneInfo(rules.timezone)).date()
        _end_waiting_attempts(
            session, campaign, now, due_before=datetime.combine(today, time(0), ZoneInfo(rules.timezone))
        )
        planned += plan_day(session, campaign, today, now)
        if follow_up_closed(session, campaign, rules, today):
            complete(session, campaign, now)
    return planned


def _end_waiting_attempts(session: Session, campaign: Campaign, now: datetime, due_before: datetime | None) -> None:
    """Attempts still waiting for a try (due before `due_before`, or all) fail: their day ended first."""
    waiting = [OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.status.in_(WAITING_ATTEMPTS)]
    if due_before is not None:
        waiting.append(OutreachAttempt.due_at < due_before)
    session.execute(
        update(OutreachAttempt)
        .where(*waiting)
        .values(
            status=AttemptStatus.FAILED,
            last_outcome=Outcome.DAY_ENDED,
            updated_at=now,
            last_error="the day ended before they were reached",
        )
    )


def last_follow_up_day(session: Session, campaign: Campaign, rules: CampaignRules) -> date:
    """The date of the campaign's last follow-up: the latest exposure date on its lists (the start day stands in for
    a missing one, as in `plan_day`) plus the last follow-up offset."""
    zone = ZoneInfo(rules.timezone)
    start_day = campaign.started_at.astimezone(zone).date() if campaign.started_at else datetime.now(zone).date()
    latest_exposure = session.scalar(
        select(func.max(func.coalesce(ContactListMember.exposure_date, literal(start_day, Date)), type_=Date))
        .join(campaign_lists, campaign_lists.c.contact_list_id == ContactListMember.contact_list_id)
        .where(campaign_lists.c.campaign_id == campaign.id)
    )
    return (latest_exposure or start_day) + timedelta(days=rules.follow_up_offsets()[-1])


def follow_up_closed(session: Session, campaign: Campaign, rules: CampaignRules, today: date) -> bool:
    """The last follow-up day has ended, or it is today (planned already) and every attempt is settled."""
    last_day = last_follow_up_day(session, campaign, rules)
    if today != last_day:
        return today > last_day
    unsettled = exists().where(
        OutreachAttempt.campaign_id == campaign.id, OutreachAttempt.status.not_in(SETTLED_ATTEMPTS)
    )
    return not session.scalar(select(unsettled))


def complete(session: Session, campaign: Campaign, now: datetime) -> None:
    """The follow-up is over. Attempts still waiting (a callback asked for after the last day) end as failed, as a
    day's do when it ends: no one dispatches a completed campaign's attempts. A live call or chat still finishes."""
    campaign.status = CampaignStatus.COMPLETED
    _end_waiting_attempts(session, campaign, now, due_before=None)
