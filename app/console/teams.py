"""Community teams: their lists, the instructions broadcast to them, and who received, read and answered each one.
Also the page a member opens from the ZNS link: the whole message and a reply box."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from access.auth import CAN_MANAGE_LISTS
from access.errors import Conflict, InvalidValue
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import render
from app.deps import PlatformDep, SessionDep
from app.routers.tracing import on_upload
from app.schemas import Id
from campaigns import teams
from campaigns.importer import ReadLimits
from campaigns.listfile import UnusableFile
from campaigns.provinces import PROVINCES
from campaigns.teams import MAX_TEXT
from models import BroadcastDelivery, utcnow

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
member_router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def _can_manage(signed: Signed) -> bool:
    return signed.user.role in CAN_MANAGE_LISTS


def _teams_page(request: Request, signed: Signed, session: Session, error: str | None = None) -> Response:
    context = {
        "signed": signed,
        "teams": teams.teams(session, signed.user),
        "can_manage": _can_manage(signed),
        "provinces": PROVINCES,
        "error": error,
    }
    return render(request, "teams.html", context, status_code=422 if error else 200)


@router.get("/teams")
def teams_page(request: Request, signed: SignedDep, session: SessionDep) -> Response:
    return _teams_page(request, signed, session)


@router.post("/teams")
async def import_team(
    request: Request,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form(max_length=200)] = "",
    province: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    limits = ReadLimits.from_settings(platform.settings)

    def work(saved: Path) -> teams.TeamImport:
        with platform.sessions.begin() as own:
            return teams.import_team(
                own, signed.user, saved, name, province or None, limits=limits, source_name=file.filename
            )

    try:
        summary = await on_upload(file, platform.settings.import_max_bytes, work)
    except (HTTPException, InvalidValue, UnusableFile) as problem:
        message = problem.detail if isinstance(problem, HTTPException) else str(problem)
        return _teams_page(request, signed, session, message)
    return RedirectResponse(f"/console/teams/{summary.team_id}?rejected={summary.rejected}", status_code=303)


@router.get("/teams/{team_id}")
def team_page(team_id: Id, request: Request, signed: SignedDep, session: SessionDep) -> Response:
    return _team_page(request, signed, session, team_id)


def _team_page(request: Request, signed: Signed, session: Session, team_id: int, error: str | None = None) -> Response:
    found = teams.team(session, signed.user, team_id)
    context = {
        "signed": signed,
        "team": found,
        "summaries": teams.summaries(session, signed.user, team_id),
        "can_manage": _can_manage(signed),
        "rejected": request.query_params.get("rejected"),
        "max_text": MAX_TEXT,
        "error": error,
    }
    return render(request, "team.html", context, status_code=422 if error else 200)


@router.post("/teams/{team_id}/broadcasts")
def broadcast(
    team_id: Id,
    request: Request,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    text: Annotated[str, Form(max_length=MAX_TEXT * 2)] = "",
) -> Response:
    try:
        started = teams.start_broadcast(session, signed.user, team_id, text)
    except InvalidValue as problem:
        session.rollback()
        return _team_page(request, signed, session, team_id, str(problem))
    if not platform.settings.zalo_app_id:  # after the role and scope checks; the refusal rolls the broadcast back
        raise Conflict("Chưa cấu hình Zalo OA (OUTREACH_ZALO_APP_ID): không gửi được tin cho tổ.")
    return RedirectResponse(f"/console/broadcasts/{started.id}", status_code=303)


@router.get("/broadcasts/{broadcast_id}")
def report_page(broadcast_id: Id, request: Request, signed: SignedDep, session: SessionDep) -> Response:
    context = {
        "signed": signed,
        "report": teams.report(session, signed.user, broadcast_id),
        "can_manage": _can_manage(signed),
        "moved": request.query_params.get("moved"),
    }
    return render(request, "broadcast.html", context)


@router.post("/broadcasts/{broadcast_id}/{action}")
def change_broadcast(broadcast_id: Id, action: str, signed: FormDep, session: SessionDep) -> Response:
    """Cancel what is not sent yet, or send the failed deliveries again."""
    moves = {"cancel": teams.cancel, "resend": teams.resend_failed}
    if action not in moves:
        raise InvalidValue("action", "cancel hoặc resend")
    moved = moves[action](session, signed.user, broadcast_id)
    return RedirectResponse(f"/console/broadcasts/{broadcast_id}?moved={moved}", status_code=303)


# ---- The member's page (public: the link's key is the credential) ----------------------------------------------


@member_router.get("/b/{key}")
def member_page(key: str, request: Request, session: SessionDep) -> Response:
    return _member_page(
        request, teams.delivery_of_link(session, key), key, sent=request.query_params.get("sent") == "1"
    )


def _member_page(
    request: Request, delivery: BroadcastDelivery, key: str, *, sent: bool = False, error: str | None = None
) -> Response:
    """The message, the member's answers and the reply box; never cached (the key is in its address)."""
    context = {"delivery": delivery, "key": key, "sent": sent, "max_text": MAX_TEXT, "error": error}
    page = render(request, "team_message.html", context, status_code=422 if error else 200)
    page.headers.update(NO_STORE)
    return page


@member_router.post("/b/{key}/read", status_code=204)
def member_read(key: str, session: SessionDep) -> Response:
    """Sent by the page's script once a browser shows it (a link preview fetching the page runs none)."""
    teams.read_by_link(session, teams.delivery_of_link(session, key), utcnow())
    return Response(status_code=204)


@member_router.post("/b/{key}")
def member_reply(
    key: str,
    request: Request,
    session: SessionDep,
    text: Annotated[str, Form(max_length=MAX_TEXT * 2)] = "",
) -> Response:
    delivery = teams.delivery_of_link(session, key)
    try:
        teams.record_reply(session, delivery.id, text, "link", utcnow())
    except InvalidValue as problem:
        return _member_page(request, delivery, key, error=problem.problem)
    return RedirectResponse(f"/b/{key}?sent=1", status_code=303)
