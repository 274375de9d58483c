"""Declarations: filtered, searched and paged; one declaration with where every value came from, its transcript,
alerts and outreach, and the tracing team's corrections."""

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from access.auth import CAN_READ_TRANSCRIPTS, in_scope
from access.errors import InvalidValue
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import FIELD, render
from app.deps import PlatformDep, SessionDep
from app.schemas import Id
from conversations import history, reading
from models import AlertLevel, Campaign, DeclarationStatus, Person, User

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PAGE_SIZE = 50
COUNT_UP_TO = 1_000  # past it a page says "more than": a browsing tracer narrows the filters, not the count
SORTS = {
    reading.Sort.NEWEST_CHANGE: "Mới cập nhật",
    reading.Sort.ALERT: "Khẩn cấp trước",
    reading.Sort.OLDEST_CHANGE: "Cũ nhất trước",
}
MAX_PAGE = 100_000


def _blank_is_none(value: str | None) -> str | None:
    return value.strip() or None if value else None


def _choice(kind: type, raw: str | None, field: str):
    raw = _blank_is_none(raw)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise InvalidValue(field, f"giá trị '{raw}' không có trong danh sách") from None


def _day(raw: str | None, field: str) -> date | None:
    raw = _blank_is_none(raw)
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise InvalidValue(field, "ngày theo dạng năm-tháng-ngày") from None


@router.get("/declarations")
def declarations_page(
    request: Request,
    signed: SignedDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: str | None = None,
    alert_level: str | None = None,
    campaign_id: str | None = None,
    ward: Annotated[str | None, Query(max_length=100)] = None,
    created_from: str | None = None,
    created_to: str | None = None,
    verified: str | None = None,
    sort: str | None = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    campaign = _blank_is_none(campaign_id)
    if campaign is not None and not campaign.isdigit():
        raise InvalidValue("campaign_id", "chọn một chiến dịch trong danh sách")
    where = reading.DeclarationFilter(
        status=_choice(DeclarationStatus, status, "status"),
        alert_level=_choice(AlertLevel, alert_level, "alert_level"),
        campaign_id=int(campaign) if campaign is not None and len(campaign) < 18 else None,
        phone_verified={"yes": True, "no": False}.get(verified or ""),
        ward=_blank_is_none(ward),
        search=_blank_is_none(q),
        created_from=_day(created_from, "created_from"),
        created_to=_day(created_to, "created_to"),
    )
    order = _choice(reading.Sort, sort, "sort") or reading.Sort.NEWEST_CHANGE
    offset = (page - 1) * PAGE_SIZE
    listed = reading.list_declarations(
        session, signed.user, where, PAGE_SIZE, offset, platform.settings.timezone, ip, order, COUNT_UP_TO
    )
    more = listed.total > COUNT_UP_TO  # counted no further: the page says "more than" and offers the next page
    context = {
        "signed": signed,
        "rows": listed.rows,
        "total": listed.total,
        "more": more,
        "count_up_to": f"{COUNT_UP_TO:,}".replace(",", "."),
        "page": page,
        "pages": None if more else max(1, -(-listed.total // PAGE_SIZE)),
        "has_next": len(listed.rows) == PAGE_SIZE and (more or page * PAGE_SIZE < listed.total),
        "query": dict(request.query_params),
        "campaigns": _campaigns(session, signed.user),
        "wards": _wards(session, signed.user),
        "sorts": SORTS,
    }
    return render(request, "declarations.html", context)


def _campaigns(session: Session, user: User) -> list[tuple[int, str]]:
    stmt = select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(200)
    if user.province_code is not None:
        stmt = stmt.where(Campaign.province_code == user.province_code)
    return [(row.id, row.name) for row in session.execute(stmt)]


def _wards(session: Session, user: User) -> list[str]:
    stmt = in_scope(select(Person.ward).where(Person.ward.is_not(None)).distinct(), user)
    return sorted(session.scalars(stmt.limit(1000)))


@router.get("/declarations/{declaration_id}")
def declaration_page(
    request: Request, declaration_id: Id, signed: SignedDep, session: SessionDep, ip: ClientIpDep
) -> Response:
    return _declaration(request, declaration_id, signed, session, ip)


def _declaration(
    request: Request,
    declaration_id: int,
    signed: Signed,
    session: Session,
    ip: str | None,
    error: InvalidValue | None = None,
) -> Response:
    detail = reading.declaration_detail(session, signed.user, declaration_id, ip)
    context = {
        "signed": signed,
        "d": detail.declaration,
        "detail": detail,
        "sources": _sources(detail),
        "turn_seq": {turn.id: turn.seq for turn in detail.turns or []},
        "can_correct": signed.user.role in history.CAN_CORRECT,
        "can_read_transcripts": signed.user.role in CAN_READ_TRANSCRIPTS,
        "correctable": [(field, FIELD[field]) for field in history.CORRECTABLE],
        "today": _today(request),
        "error": error,
    }
    return render(request, "declaration.html", context, status_code=422 if error else 200)


def _sources(detail: reading.DeclarationDetail) -> dict:
    """Each field's latest change: where its current value came from."""
    return {change.field: change for change in detail.changes}


def _today(request: Request) -> date:
    return datetime.now(ZoneInfo(request.app.state.platform.settings.timezone)).date()


@router.post("/declarations/{declaration_id}/corrections")
def correct(
    request: Request,
    declaration_id: Id,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    field: Annotated[str, Form(max_length=40)],
    reason: Annotated[str, Form(max_length=history.MAX_REASON_CHARS)] = "",
    value: Annotated[list[str] | None, Form(max_length=1000)] = None,
) -> Response:
    """A correction; a value or reason that cannot be used shows the page again with the problem by the form."""
    try:
        corrected = history.parse_correction(field, (value or [])[:20], _today(request))
        history.correct(session, signed.user, declaration_id, field, corrected, reason, platform.settings, ip)
    except InvalidValue as problem:
        session.rollback()
        return _declaration(request, declaration_id, signed, session, ip, problem)
    return RedirectResponse(f"/console/declarations/{declaration_id}#history", status_code=303)
