"""A campaign's life as an explicit state machine, and the planning of each day's outreach.

    draft --start--> running --pause--> paused --resume--> running
    draft | running | paused --cancel--> canceled (no one is ever contacted again)

Planning is per day: starting a campaign plans today's contacts; the daily job plans each following day, so a
100,000-person list never needs millions of rows at once.
"""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from campaigns.rules import CampaignRules
from models import (
    AttemptStatus,
    Campaign,
    CampaignStatus,
    ContactList,
    ContactListMember,
    OutreachAttempt,
    campaign_lists,
)

TRANSITIONS = {
    "start": ({CampaignStatus.DRAFT}, CampaignStatus.RUNNING),
    "pause": ({CampaignStatus.RUNNING}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED}, CampaignStatus.RUNNING),
    "cancel": ({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED}, CampaignStatus.CANCELED),
}
OPEN_ATTEMPTS = (AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT, AttemptStatus.CLAIMED)


class TransitionRefused(ValueError):
    pass


def new_campaign(name: str, lists: list[ContactList], rules: CampaignRules, province: str | None = None) -> Campaign:
    """A draft campaign; its province is the given one, else the lists' when they all share one."""
    provinces = {c.province_code for c in lists}
    province = province or (provinces.pop() if len(provinces) == 1 else None)
    return Campaign(name=name, contact_lists=list(lists), rules=rules.model_dump(mode="json"), province_code=province)


def transition(session: Session, campaign: Campaign, action: str, now: datetime) -> None:
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

    People with no exposure date on their lists count from the day the campaign started. Planning twice is
    harmless: a person already planned for that follow-up day is left alone.
    """
    rules = CampaignRules.model_validate(campaign.rules)
    offsets = set(rules.follow_up_offsets())
    start_day = campaign.started_at.astimezone(ZoneInfo(rules.timezone)).date() if campaign.started_at else day
    exposures: dict[int, date] = {}
    members = session.execute(
        select(ContactListMember.person_id, ContactListMember.exposure_date)
        .join(campaign_lists, campaign_lists.c.contact_list_id == ContactListMember.contact_list_id)
        .where(campaign_lists.c.campaign_id == campaign.id)
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
    """The daily job: for every running campaign, yesterday's unreached attempts end as failed and today is planned.

    Idempotent (it runs often, and on every worker): days already planned and closed are left alone.
    """
    planned = 0
    for campaign in session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)).all():
        zone = ZoneInfo(CampaignRules.model_validate(campaign.rules).timezone)
        today = now.astimezone(zone).date()
        session.execute(
            update(OutreachAttempt)
            .where(
                OutreachAttempt.campaign_id == campaign.id,
                OutreachAttempt.status.in_((AttemptStatus.SCHEDULED, AttemptStatus.RETRY_WAIT)),
                OutreachAttempt.due_at < datetime.combine(today, time(0), zone),
            )
            .values(
                status=AttemptStatus.FAILED,
                last_outcome="day_ended",
                updated_at=now,
                last_error="the day ended before they were reached",
            )
        )
        planned += plan_day(session, campaign, today, now)
    return planned


def attempt_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Outreach attempts of a campaign by status."""
    rows = session.execute(
        select(OutreachAttempt.status, func.count())
        .where(OutreachAttempt.campaign_id == campaign_id)
        .group_by(OutreachAttempt.status)
    )
    return {status.value: count for status, count in rows}
