"""Campaigns: create over contact lists with rules, then start, pause, resume or cancel them; follow their
progress and export their follow-up."""

import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask

from access.auth import audit, get_in_scope
from app.deps import PlatformDep, SessionDep, UserDep
from app.routers.contact_lists import list_manager
from app.schemas import ErrorOut, Id
from campaigns.export import csv_chunks, export_rows, write_xlsx
from campaigns.lifecycle import TransitionRefused, attempt_counts, new_campaign, transition
from campaigns.outcomes import local_today
from campaigns.progress import Progress, progress
from campaigns.rules import CampaignRules
from connectors import twilio_voice
from models import Campaign, CampaignStatus, ContactList, User, utcnow

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])
ERRORS = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}
Manager = Annotated[User, Depends(list_manager)]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
    status: CampaignStatus
    province_code: str | None
    contact_list_ids: list[int]
    rules: CampaignRules
    started_at: datetime | None
    attempts: dict[str, int] = Field(description="outreach attempts by status")
    progress: Progress | None = Field(None, description="rates, alerts, outcomes and ETA (GET only)")


def _out(session, campaign: Campaign, progress: Progress | None = None) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        province_code=campaign.province_code,
        contact_list_ids=[c.id for c in campaign.contact_lists],
        rules=campaign.rules,
        started_at=campaign.started_at,
        attempts=attempt_counts(session, campaign.id),
        progress=progress,
    )


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
def get_campaign(campaign_id: Id, session: SessionDep, user: UserDep, now: NowDep) -> CampaignOut:
    campaign = _campaign(session, user, campaign_id)
    return _out(session, campaign, progress(session, campaign, now))


@router.get(
    "/{campaign_id}/export.csv",
    responses=ERRORS,
    response_class=StreamingResponse,
    summary="One row per person per follow-up day (UTF-8 with a BOM)",
)
def export_csv(
    campaign_id: Id, session: SessionDep, user: UserDep, platform: PlatformDep, request: Request, now: NowDep
) -> StreamingResponse:
    _, today = _exporting(session, user, campaign_id, "csv", request, now)
    rows = _rows_in_own_session(platform.sessions, campaign_id, today, user.province_code)
    disposition = f'attachment; filename="{_file_name(campaign_id, today, "csv")}"'
    return StreamingResponse(
        csv_chunks(rows), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )


@router.get(
    "/{campaign_id}/export.xlsx",
    responses=ERRORS,
    response_class=FileResponse,
    summary="One row per person per follow-up day (a workbook)",
)
def export_xlsx(campaign_id: Id, session: SessionDep, user: UserDep, request: Request, now: NowDep) -> FileResponse:
    campaign, today = _exporting(session, user, campaign_id, "xlsx", request, now)
    with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as sink:
        try:
            write_xlsx(export_rows(session, campaign, today, user.province_code), sink)
        except BaseException:
            os.unlink(sink.name)
            raise
    return FileResponse(
        sink.name,
        media_type=XLSX_TYPE,
        filename=_file_name(campaign_id, today, "xlsx"),
        background=BackgroundTask(os.unlink, sink.name),
    )


def _exporting(
    session: Session, user: User, campaign_id: int, fmt: str, request: Request, now: datetime
) -> tuple[Campaign, date]:
    """The campaign in scope and its today; the audit row is written first (the export holds health data)."""
    campaign = _campaign(session, user, campaign_id)
    audit(session, user, f"campaign.export.{fmt}", "campaign", [campaign_id], request.client and request.client.host)
    session.commit()  # before any data leaves, and whether or not the download completes
    return campaign, local_today(CampaignRules.model_validate(campaign.rules), now)


def _rows_in_own_session(
    sessions: sessionmaker[Session], campaign_id: int, today: date, province_code: str | None
) -> Iterator[tuple[Any, ...]]:
    """Rows read while the response streams, after the request's own session has closed."""
    with sessions() as session:
        yield from export_rows(session, session.get(Campaign, campaign_id), today, province_code)


def _file_name(campaign_id: int, today: date, extension: str) -> str:
    return f"campaign-{campaign_id}-{today}.{extension}"


@router.post("/{campaign_id}/{action}", responses=ERRORS, summary="start, pause, resume or cancel")
def change_campaign(
    campaign_id: Id,
    action: Literal["start", "pause", "resume", "cancel"],
    session: SessionDep,
    user: Manager,
    platform: PlatformDep,
    background: BackgroundTasks,
) -> CampaignOut:
    campaign = _campaign(session, user, campaign_id)
    try:
        transition(session, campaign, action, utcnow())
    except TransitionRefused as error:
        raise HTTPException(409, str(error)) from None
    session.flush()
    if action in ("start", "resume"):  # calls begin soon: every fixed prompt is on disk before the first rings
        background.add_task(platform.prompts.render_ahead, twilio_voice.ahead_of_calls())
    return _out(session, campaign)
