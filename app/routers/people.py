"""People between provinces: a national admin or manager moves a person, on the record (see campaigns/people.py)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from access.auth import check_moves_people
from app.client_address import ClientIpDep
from app.deps import SessionDep, UserDep
from app.schemas import Id, error_responses
from campaigns.people import move_person, person_in_scope
from models import User

router = APIRouter(prefix="/api/v1/people", tags=["people"])
ERRORS = error_responses(401, 403, 404, 422)


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


def national_manager(user: UserDep) -> User:
    check_moves_people(user)
    return user


@router.post(
    "/{person_id}/province",
    responses=ERRORS,
    summary="Move a person to another province (national admin or manager; audited)",
)
def move(
    person_id: Id,
    change: ProvinceChange,
    session: SessionDep,
    user: Annotated[User, Depends(national_manager)],
    ip: ClientIpDep,
) -> PersonMoved:
    person = person_in_scope(session, user, person_id)
    before = move_person(session, user, person, change.province_code, change.reason, ip)
    return PersonMoved(
        id=person.id,
        phone=person.phone,
        province_code=person.province_code,
        province=person.province,
        moved_from=before,
    )
