"""Community teams and the instructions broadcast to them over Zalo, with who received, read and answered them."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field

from access.errors import Conflict
from app.deps import PlatformDep, SessionDep, UserDep
from app.routers.contact_lists import Manager
from app.routers.tracing import RejectedRow, on_upload
from app.schemas import Id, error_responses
from campaigns import teams
from campaigns.importer import ReadLimits
from campaigns.teams import MAX_TEXT, Report, TeamImport
from models import Team

router = APIRouter(prefix="/api/v1", tags=["community teams"])
ERRORS = error_responses(401, 403, 404, 409, 413, 422)


class MemberOut(BaseModel):
    id: int
    name: str
    phone: str
    zalo_user_id: str | None


class TeamOut(BaseModel):
    id: int
    name: str
    province_code: str | None
    members: list[MemberOut]

    @classmethod
    def of(cls, team: Team) -> "TeamOut":
        members = [MemberOut(id=m.id, name=m.name, phone=m.phone, zalo_user_id=m.zalo_user_id) for m in team.members]
        return cls(id=team.id, name=team.name, province_code=team.province_code, members=members)


class TeamImportOut(BaseModel):
    team_id: int
    members: int
    added: int
    removed: int
    rejected: int
    rejects: list[RejectedRow]

    @classmethod
    def of(cls, summary: TeamImport) -> "TeamImportOut":
        rejects = [RejectedRow(row=row, reason=reason) for row, reason in summary.first_rejects]
        counts = {"members": summary.members, "added": summary.added, "removed": summary.removed}
        return cls(team_id=summary.team_id, **counts, rejected=summary.rejected, rejects=rejects)


class BroadcastIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="the instructions, as the members will read them")


class MemberReportOut(BaseModel):
    name: str
    phone: str
    status: str = Field(description="the furthest it got: queued, failed, sent, received, read or answered")
    channel: str | None = Field(description="zalo (OA message) or zns")
    error: str | None
    sent_at: datetime | None
    received_at: datetime | None
    read_at: datetime | None
    answered_at: datetime | None
    replies: list[str]


class ReportOut(BaseModel):
    id: int
    team_id: int
    team: str
    text: str
    created_at: datetime
    counts: dict[str, int] = Field(description="members, queued, sent, failed, received, read, answered")
    members: list[MemberReportOut]

    @classmethod
    def of(cls, report: Report) -> "ReportOut":
        members = [
            MemberReportOut(**{key: getattr(row, key) for key in MemberReportOut.model_fields})
            for row in report.members
        ]
        fields = {"team_id": report.team_id, "team": report.team, "text": report.text, "counts": report.counts}
        return cls(id=report.broadcast_id, created_at=report.created_at, **fields, members=members)


@router.get("/teams", summary="The community teams in your scope", responses=ERRORS)
def list_teams(session: SessionDep, user: UserDep) -> list[TeamOut]:
    return [TeamOut.of(team) for team in teams.teams(session, user)]


@router.post("/teams", summary="Import a team's list (multipart: file, name, province)", responses=ERRORS)
async def import_team(
    platform: PlatformDep,
    user: Manager,
    file: Annotated[UploadFile, File(description="CSV or XLSX: name, phone, zalo_user_id (optional)")],
    name: Annotated[str, Form(min_length=1, max_length=200, description="the team; a new name makes a new team")],
    province: Annotated[str | None, Form(description="two-digit code; a provincial user's own by default")] = None,
) -> TeamImportOut:
    """The team becomes the file's members (members not in it leave the team); rows that cannot be used come back
    with their line and reason, and a file with no usable member changes nothing."""
    limits = ReadLimits.from_settings(platform.settings)

    def work(saved: Path) -> TeamImport:
        with platform.sessions.begin() as session:
            return teams.import_team(
                session, user, saved, name, province, limits=limits, source_name=file.filename or "team list"
            )

    return TeamImportOut.of(await on_upload(file, platform.settings.import_max_bytes, work))


@router.get("/teams/{team_id}", summary="A team and its members", responses=ERRORS)
def get_team(team_id: Id, session: SessionDep, user: UserDep) -> TeamOut:
    return TeamOut.of(teams.team(session, user, team_id))


@router.post("/teams/{team_id}/broadcasts", status_code=201, summary="Broadcast to a team", responses=ERRORS)
def broadcast(team_id: Id, body: BroadcastIn, platform: PlatformDep, session: SessionDep, user: Manager) -> ReportOut:
    """Queued for every member at once; the worker sends each by OA message when the member wrote to the OA within
    the reply window, else by ZNS with a link to the whole message and a reply box."""
    started = teams.start_broadcast(session, user, team_id, body.text)  # scope and text first: their refusals
    if not platform.settings.zalo_app_id:  # a refusal rolls the broadcast back
        raise Conflict("the Zalo OA is not set up (OUTREACH_ZALO_APP_ID): a broadcast could not be sent")
    return ReportOut.of(teams.report(session, user, started.id))


@router.get("/teams/{team_id}/broadcasts", summary="A team's broadcasts, newest first", responses=ERRORS)
def team_broadcasts(team_id: Id, session: SessionDep, user: UserDep) -> list[ReportOut]:
    return [ReportOut.of(teams.report(session, user, b.id)) for b in teams.broadcasts(session, user, team_id)]


@router.get("/broadcasts/{broadcast_id}", summary="Who received, read and answered a broadcast", responses=ERRORS)
def broadcast_report(broadcast_id: Id, session: SessionDep, user: UserDep) -> ReportOut:
    return ReportOut.of(teams.report(session, user, broadcast_id))
