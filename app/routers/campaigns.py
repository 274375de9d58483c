"""Campaigns: create over contact lists with rules, then start, pause, resume or cancel them; follow their
progress and export their follow-up."""

from datetime import datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from access.auth import get_in_scope
from app.client_address import ClientIpDep
from app.deps import PlatformDep, SessionDep, UserDep
from app.exports import csv_response, xlsx_response
from app.routers.contact_lists import Manager
from app.schemas import Id, error_responses
from campaigns import creation
from campaigns.capacity import DEFAULT_CALL_SECONDS, CapacityPlan, capacity_plan
from campaigns.creation import lists_in_scope
from campaigns.export import begin_export
from campaigns.lifecycle import transition
from campaigns.outcomes import local_today
from campaigns.progress import Progress, attempts_by_status, counted_days, progress
from campaigns.rules import CampaignRules
from connectors.call_lines import ahead_of_calls
from models import Campaign, CampaignStatus, utcnow

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
ERRORS = error_responses(401, 403, 404, 409, 422)


def clock() -> datetime:
    """The time progress and exports are computed at (tests put their own clock here)."""
    return utcnow()


NowDep = Annotated[datetime, Depends(clock)]


class NewCampaign(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    contact_list_ids: list[Id] = Field(min_length=1)
    rules: CampaignRules = CampaignRules()


class CampaignOut(BaseModel):
    id: int
    name: str
    status: CampaignStatus = Field(description="completed once its last follow-up day has closed")
    province_code: str | None
    contact_list_ids: list[int]
    rules: CampaignRules
    started_at: datetime | None
    attempts: dict[str, int] = Field(description="outreach attempts by status")
    progress: Progress | None = Field(None, description="rates, alerts, outcomes and ETA (GET only)")


def _out(session: Session, campaign: Campaign, now: datetime, with_progress: bool = False) -> CampaignOut:
    counts = counted_days(session, campaign, local_today(CampaignRules.model_validate(campaign.rules), now))
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        province_code=campaign.province_code,
        contact_list_ids=[c.id for c in campaign.contact_lists],
        rules=campaign.rules,
        started_at=campaign.started_at,
        attempts=attempts_by_status(counts),
        progress=progress(session, campaign, now, counts) if with_progress else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_campaign(body: NewCampaign, session: SessionDep, user: Manager, now: NowDep) -> CampaignOut:
    return _out(session, creation.create_campaign(session, user, body.name, body.contact_list_ids, body.rules), now)


class CapacityQuestion(BaseModel):
    contact_list_ids: list[Id] = Field(min_length=1)
    rules: CampaignRules = CampaignRules()
    finish_by: time | None = Field(None, description="the hour today's contacts should be done by (local time)")
    call_seconds: int = Field(DEFAULT_CALL_SECONDS, ge=10, le=3600, description="how long a call holds a line")


@router.post("/capacity-plan", responses=ERRORS, summary="Contacts per day, today's finish, lines needed")
def plan_capacity(body: CapacityQuestion, session: SessionDep, user: Manager, now: NowDep) -> CapacityPlan:
    """For these lists and rules, before a campaign starts today: how many contacts today and on each follow-up
    day, when each day's are done at the campaign's pace, and the lines (and rate) that finish today's by
    `finish_by`."""
    lists = lists_in_scope(session, user, body.contact_list_ids)
    return capacity_plan(session, [c.id for c in lists], body.rules, now, body.finish_by, body.call_seconds)


@router.get("/{campaign_id}", responses=ERRORS)
def get_campaign(campaign_id: Id, session: SessionDep, user: UserDep, now: NowDep) -> CampaignOut:
    campaign = get_in_scope(session, user, Campaign, campaign_id, "campaign")
    return _out(session, campaign, now, with_progress=True)


@router.get(
    "/{campaign_id}/export.csv",
    responses=ERRORS,
    response_class=StreamingResponse,
    summary="One row per person per follow-up day (UTF-8 with a BOM)",
)
def export_csv(
    campaign_id: Id, session: SessionDep, user: UserDep, platform: PlatformDep, ip: ClientIpDep, now: NowDep
) -> StreamingResponse:
    return csv_response(platform.sessions, begin_export(session, user, campaign_id, "csv", now, ip))


@router.get(
    "/{campaign_id}/export.xlsx",
    responses=ERRORS,
    response_class=FileResponse,
    summary="One row per person per follow-up day (a workbook)",
)
def export_xlsx(campaign_id: Id, session: SessionDep, user: UserDep, ip: ClientIpDep, now: NowDep) -> FileResponse:
    return xlsx_response(session, begin_export(session, user, campaign_id, "xlsx", now, ip))


@router.post("/{campaign_id}/{action}", responses=ERRORS, summary="start, pause, resume or cancel")
def change_campaign(
    campaign_id: Id,
    action: Literal["start", "pause", "resume", "cancel"],
    session: SessionDep,
    user: Manager,
    platform: PlatformDep,
    background: BackgroundTasks,
    now: NowDep,
) -> CampaignOut:
    campaign = get_in_scope(session, user, Campaign, campaign_id, "campaign")
    transition(session, campaign, action, now)
    session.flush()
    if action in ("start", "resume"):  # calls begin soon: every fixed prompt is on disk before the first rings
        background.add_task(platform.prompts.render_ahead, ahead_of_calls())
    return _out(session, campaign, now)
