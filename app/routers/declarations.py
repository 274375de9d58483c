"""Health declarations, filtered and paged, within the reader's province."""

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from app.client_address import ClientIpDep
from app.deps import PlatformDep, SessionDep, UserDep
from app.exports import csv_response, xlsx_response
from app.schemas import DeclarationRecord, Id, Offset, error_responses
from conversations import reading
from conversations.national_form import begin_national_export
from models import AlertLevel, DeclarationStatus

router = APIRouter(prefix="/api/v1/declarations", tags=["declarations"])


def _page_links(request: Request, offset: int, limit: int, total: int) -> str:
    links = []
    if offset + limit < total:
        links.append(f'<{request.url.include_query_params(offset=offset + limit, limit=limit)}>; rel="next"')
    if offset > 0:
        links.append(f'<{request.url.include_query_params(offset=max(0, offset - limit), limit=limit)}>; rel="prev"')
    return ", ".join(links)


@router.get(
    "",
    summary="List declarations",
    description="Oldest change first, so `updated_since` can be used to sync. The total is in `X-Total-Count`, "
    "the next and previous pages in `Link`.",
    responses=error_responses(401, 422),
)
def list_declarations(
    request: Request,
    response: Response,
    session: SessionDep,
    user: UserDep,
    platform: PlatformDep,
    ip: ClientIpDep,
    phone: Annotated[str | None, Query(description="any common form: 0912 345 678, 84912345678, +84...")] = None,
    campaign_id: Id | None = None,
    status: DeclarationStatus | None = None,
    alert_level: AlertLevel | None = None,
    phone_verified: Annotated[
        bool | None, Query(description="false: only declarations whose phone was typed into the web chat, unproven")
    ] = None,
    updated_since: Annotated[
        datetime | None,
        Query(description="ISO 8601; without an offset it is read in the platform's time zone"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[DeclarationRecord]:
    where = reading.DeclarationFilter(phone, campaign_id, status, alert_level, phone_verified, updated_since)
    page = reading.list_declarations(session, user, where, limit, offset, platform.settings.timezone, ip)
    response.headers["X-Total-Count"] = str(page.total)
    if links := _page_links(request, offset, limit, page.total):
        response.headers["Link"] = links
    return [DeclarationRecord.of_source(d, verified) for d, verified in page.rows]


class NationalFormQuery:
    """Which declarations go into a national-form export: the reader's province, these filters."""

    def __init__(
        self,
        created_from: Annotated[date | None, Query(description="local date, inclusive")] = None,
        created_to: Annotated[date | None, Query(description="local date, inclusive")] = None,
        campaign_id: Id | None = None,
        status: DeclarationStatus | None = None,
    ) -> None:
        self.where = reading.DeclarationFilter(
            campaign_id=campaign_id, status=status, created_from=created_from, created_to=created_to
        )


NationalFormDep = Annotated[NationalFormQuery, Depends()]


@router.get(
    "/national-form.{file_format}",
    summary="Declarations in the national health-declaration form's field order and codes (CSV or a workbook)",
    response_class=Response,
    responses=error_responses(401, 422),
)
def national_form(
    file_format: Literal["csv", "xlsx"],
    query: NationalFormDep,
    session: SessionDep,
    user: UserDep,
    platform: PlatformDep,
    ip: ClientIpDep,
) -> Response:
    """The reader's province's declarations, oldest first; the mapping is in the README."""
    export = begin_national_export(session, user, query.where, file_format, platform.settings.timezone, ip)
    return csv_response(platform.sessions, export) if file_format == "csv" else xlsx_response(session, export)


@router.get("/{declaration_id}", responses=error_responses(401, 404))
def get_declaration(declaration_id: Id, session: SessionDep, user: UserDep, ip: ClientIpDep) -> DeclarationRecord:
    return DeclarationRecord.of_source(*reading.read_declaration(session, user, declaration_id, ip))
