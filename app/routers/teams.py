"""Community teams and the instructions broadcast to them over Zalo, with who received, read and answered them."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from access.errors import Conflict
from app.deps import PlatformDep, SessionDep, UserDep
from app.routers.tracing import RejectedRow, on_upload
from app.schemas import Id, error_responses
from campaigns import teams
from campaigns.importer import ReadLimits
from campaigns.teams import MAX_TEXT, Report, Summary, TeamImport
from models import Team, User

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


def team_manager(user: UserDep) -> User:
    teams.check_broadcasts(user)
    return user


TeamManager = Annotated[User, Depends(team_manager)]


class BroadcastIn(BaseModel):
    # The domain counts characters after NFC and without invisible ones; this only bounds the request.
    text: str = Field(min_length=1, max_length=2 * MAX_TEXT, description=f"the instructions ({MAX_TEXT:,} at most)")


class MemberReportOut(BaseModel):
    name: str
    phone: str
    status: str = Field(description="the furthest it got: queued, canceled, failed, sent, received, read or answered")
    channel: str | None = Field(description="zalo (OA message) or zns")
    error: str | None = Field(description="why it failed, or why the last try did")
    tries: int = Field(description="sends that failed for a reason that may pass (tried again later)")
    sent_at: datetime | None
    received_at: datetime | None
    read_at: datetime | None
    answered_at: datetime | None
    replies: list[str]


class SummaryOut(BaseModel):
    id: int
    team_id: int
    team: str
    text: str
    created_at: datetime
    counts: dict[str, int] = Field(description="members, queued, canceled, sent, failed, received, read, answered")

    @classmethod
    def of(cls, summary: Summary) -> "SummaryOut":
        fields = {key: getattr(summary, key) for key in ("team_id", "team", "text", "created_at", "counts")}
        return cls(id=summary.broadcast_id, **fields)


class ReportOut(SummaryOut):
    members: list[MemberReportOut]

    @classmethod
    def of(cls, report: Report) -> "ReportOut":
        members = [MemberReportOut.model_validate(row, from_attributes=True) for row in report.members]
        return cls(**SummaryOut.of(report).model_dump(), members=members)


class MovedOut(BaseModel):
    deliveries: int


@router.get("/teams", summary="The community teams in your scope", responses=ERRORS)
def list_teams(session: SessionDep, user: UserDep) -> list[TeamOut]:
    return [TeamOut.of(team) for team in teams.teams(session, user)]


@router.post("/teams", summary="Import a team's list (multipart: file, name, province)", responses=ERRORS)
async def import_team(
    platform: PlatformDep,
    user: TeamManager,
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
def broadcast(
    team_id: Id, body: BroadcastIn, platform: PlatformDep, session: SessionDep, user: TeamManager
) -> ReportOut:
    """Queued for every member at once; the worker sends each by OA message when the member wrote to the OA within
    the reply window, else by ZNS with a link to the whole message and a reply box."""
    started = teams.start_broadcast(session, user, team_id, body.text)  # scope and text first: their refusals
    if not platform.settings.zalo_app_id:  # a refusal rolls the broadcast back
        raise Conflict("the Zalo OA is not set up (OUTREACH_ZALO_APP_ID): a broadcast could not be sent")
    return ReportOut.of(teams.report(session, user, started.id))


@router.get("/teams/{team_id}/broadcasts", summary="A team's broadcasts, newest first, counted", responses=ERRORS)
def team_broadcasts(team_id: Id, session: SessionDep, user: UserDep) -> list[SummaryOut]:
    return [SummaryOut.of(summary) for summary in teams.summaries(session, user, team_id)]


@router.get("/broadcasts/{broadcast_id}", summary="Who received, read and answered a broadcast", responses=ERRORS)
def broadcast_report(broadcast_id: Id, session: SessionDep, user: UserDep) -> ReportOut:
    return ReportOut.of(teams.report(session, user, broadcast_id))


@router.post("/broadcasts/{broadcast_id}/cancel", summary="Cancel what is not sent yet", responses=ERRORS)
def cancel_broadcast(broadcast_id: Id, session: SessionDep, user: TeamManager) -> MovedOut:
    return MovedOut(deliveries=teams.cancel(session, user, broadcast_id))


@router.post("/broadcasts/{broadcast_id}/resend", summary="Send the failed deliveries again", responses=ERRORS)
def resend_broadcast(broadcast_id: Id, session: SessionDep, user: TeamManager) -> MovedOut:
    """For deliveries that failed on something since fixed (a template setting, Zalo's refusal of the OA)."""
    return MovedOut(deliveries=teams.resend_failed(session, user, broadcast_id))
