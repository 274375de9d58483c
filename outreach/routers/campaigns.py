"""Campaigns: create over contact lists with rules, then start, pause, resume or cancel them."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from campaigns.lifecycle import TransitionRefused, attempt_counts, new_campaign, transition
from campaigns.rules import CampaignRules
from connectors import twilio_voice
from models import Campaign, CampaignStatus, ContactList, User, utcnow
from outreach.auth import get_in_scope
from outreach.deps import PlatformDep, SessionDep, UserDep
from outreach.routers.contact_lists import list_manager
from outreach.schemas import ErrorOut

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
          422: {"model": ErrorOut}}  # fmt: skip
Manager = Annotated[User, Depends(list_manager)]


class NewCampaign(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    contact_list_ids: list[int] = Field(min_length=1)
    rules: CampaignRules = CampaignRules()


class CampaignOut(BaseModel):
    id: int
    name: str
    status: CampaignStatus
    province_code: str | None
    contact_list_ids: list[int]
    rules: CampaignRules
    started_at: datetime | None
    attempts: dict[str, int] = Field(description="outreach attempts by status")


def _out(session, campaign: Campaign) -> CampaignOut:
    return CampaignOut(id=campaign.id, name=campaign.name, status=campaign.status, province_code=campaign.province_code,
                       contact_list_ids=[c.id for c in campaign.contact_lists], rules=campaign.rules,
                       started_at=campaign.started_at, attempts=attempt_counts(session, campaign.id))  # fmt: skip


def _campaign(session, user: User, campaign_id: int) -> Campaign:
    campaign = get_in_scope(session, user, Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(404, f"no campaign {campaign_id} in your scope")
    return campaign


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_campaign(body: NewCampaign, session: SessionDep, user: Manager) -> CampaignOut:
    lists = session.scalars(select(ContactList).where(ContactList.id.in_(body.contact_list_ids))).all()
    visible = [c for c in lists if not user.province_code or c.province_code == user.province_code]
    missing = sorted(set(body.contact_list_ids) - {c.id for c in visible})
    if missing:
        raise HTTPException(422, f"contact_list_ids: no contact list {missing} in your scope")
    campaign = new_campaign(body.name, visible, body.rules, user.province_code)
    session.add(campaign)
    session.flush()
    return _out(session, campaign)


@router.get("/{campaign_id}", responses=ERRORS)
def get_campaign(campaign_id: int, session: SessionDep, user: UserDep) -> CampaignOut:
    return _out(session, _campaign(session, user, campaign_id))


@router.post("/{campaign_id}/{action}", responses=ERRORS, summary="start, pause, resume or cancel")
def change_campaign(
    campaign_id: int, action: Literal["start", "pause", "resume", "cancel"], session: SessionDep, user: Manager,
    platform: PlatformDep, background: BackgroundTasks,
) -> CampaignOut:  # fmt: skip
    campaign = _campaign(session, user, campaign_id)
    try:
        transition(session, campaign, action, utcnow())
    except TransitionRefused as error:
        raise HTTPException(409, str(error)) from None
    session.flush()
    if action in ("start", "resume"):  # calls begin soon: every fixed prompt is on disk before the first rings
        background.add_task(platform.prompts.render_ahead, twilio_voice.ahead_of_calls())
    return _out(session, campaign)
