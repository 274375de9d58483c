"""Health declarations, filtered and paged, within the reader's province."""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import contains_eager

from access.auth import audit, in_scope
from app.deps import PlatformDep, SessionDep, UserDep
from app.schemas import DeclarationRecord, ErrorOut, Id, Offset
from ground.phones import InvalidPhone, normalize_phone
from models import AlertLevel, Conversation, Declaration, DeclarationStatus, Person, User

router = APIRouter(prefix="/api/v1/declarations", tags=["declarations"])
# A declaration without a conversation was made by the platform itself (nobody typed a phone for it).
PHONE_VERIFIED = func.coalesce(Conversation.phone_verified, true())


def _scoped(user: User) -> Select:
    """Declarations with their phone's proof, of the user's province."""
    stmt = select(Declaration, PHONE_VERIFIED).join(Declaration.person).outerjoin(Declaration.conversation)
    return in_scope(stmt, user).options(contains_eager(Declaration.person))


def _phone_filter(phone: str) -> str:
    try:
        return normalize_phone(phone)
    except InvalidPhone as error:
        raise HTTPException(422, f"phone: {error}") from None


def _aware(moment: datetime, zone: str) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


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
    responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def list_declarations(
    request: Request,
    response: Response,
    session: SessionDep,
    user: UserDep,
    platform: PlatformDep,
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
    stmt = _scoped(user)
    if phone is not None:
        stmt = stmt.where(Person.phone == _phone_filter(phone))
    if campaign_id is not None:
        stmt = stmt.where(Declaration.campaign_id == campaign_id)
    if status is not None:
        stmt = stmt.where(Declaration.status == status)
    if alert_level is not None:
        stmt = stmt.where(Declaration.alert_level == alert_level)
    if phone_verified is not None:
        stmt = stmt.where(PHONE_VERIFIED.is_(phone_verified))
    if updated_since is not None:
        stmt = stmt.where(Declaration.updated_at >= _aware(updated_since, platform.settings.timezone))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(stmt.order_by(Declaration.updated_at, Declaration.id).limit(limit).offset(offset)).all()
    audit(
        session,
        user,
        "declaration.list",
        "declaration",
        [d.id for d, _ in rows],
        request.client and request.client.host,
    )
    response.headers["X-Total-Count"] = str(total)
    if links := _page_links(request, offset, limit, total or 0):
        response.headers["Link"] = links
    return [DeclarationRecord.of_source(d, verified) for d, verified in rows]


@router.get("/{declaration_id}", responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}})
def get_declaration(declaration_id: Id, request: Request, session: SessionDep, user: UserDep) -> DeclarationRecord:
    row = session.execute(_scoped(user).where(Declaration.id == declaration_id)).first()
    if row is None:
        # The same answer for "absent" and "another province's": a scoped user learns nothing of other provinces.
        raise HTTPException(404, f"no declaration {declaration_id} in your scope")
    declaration, verified = row
    audit(
        session,
        user,
        "declaration.read",
        "declaration",
        [declaration.id],
        request.client and request.client.host,
    )
    return DeclarationRecord.of_source(declaration, verified)
