"""People between provinces: the one way a person leaves a province's scope is a national user moving them, on the
record (an import never does it for a provincial user; see campaigns/importer.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.deps import SessionDep, UserDep
from app.schemas import ErrorOut, Id
from campaigns.provinces import PROVINCES
from models import AuditLog, Person, Role, User

router = APIRouter(prefix="/api/v1/people", tags=["people"])
ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}}


class ProvinceChange(BaseModel):
    province_code: str = Field(
        pattern=r"^\d{2}$",
        description="two-digit GSO code of the province that follows the person from now on",
        examples=["27"],
    )
    reason: str | None = Field(None, max_length=500, description="why, for the audit log")


class PersonMoved(BaseModel):
    id: int
    phone: str
    province_code: str
    province: str
    moved_from: str | None = Field(description="the province that followed the person before (null: none)")


def move_person(
    session: Session, person: Person, code: str, reason: str | None, user_id: int | None, client_ip: str | None
) -> str | None:
    """Give `person` to province `code`, written to the audit log; returns the province before. ValueError: unknown
    code. Moving a person to the province they are in changes nothing and records nothing."""
    if code not in PROVINCES:
        raise ValueError(f"unknown province code '{code}' (two-digit GSO code, e.g. 01 Hà Nội, 27 Bắc Ninh)")
    before = person.province_code
    if before != code:
        person.province_code, person.province = code, PROVINCES[code]
        session.add(
            AuditLog(
                user_id=user_id,
                action="person.move",
                object_type="person",
                object_ids=[person.id],
                client_ip=client_ip,
                detail={"from": before, "to": code, "reason": reason},
            )
        )
    return before


def national_manager(user: UserDep) -> User:
    if user.province_code is not None or user.role not in (Role.ADMIN, Role.MANAGER):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "only a national admin or manager moves people between provinces"
        )
    return user


@router.post(
    "/{person_id}/province",
    responses=ERRORS,
    summary="Move a person to another province (national admin or manager; audited)",
)
def move(
    person_id: Id,
    change: ProvinceChange,
    request: Request,
    session: SessionDep,
    user: Annotated[User, Depends(national_manager)],
) -> PersonMoved:
    person = session.get(Person, person_id)
    if person is None:
        raise HTTPException(404, f"no person {person_id}")
    try:
        before = move_person(
            session, person, change.province_code, change.reason, user.id, request.client and request.client.host
        )
    except ValueError as error:
        raise HTTPException(422, f"province_code: {error}") from None
    return PersonMoved(
        id=person.id,
        phone=person.phone,
        province_code=person.province_code,
        province=person.province,
        moved_from=before,
    )
