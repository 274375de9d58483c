"""The national platforms' data: QR check-ins in, and F1 lists derived from them by co-presence with cases."""

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field

from access.auth import check_imports_national_data
from app.deps import PlatformDep, UserDep
from app.routers.contact_lists import ImportOut, Manager, UploadTooLarge, save_upload
from app.schemas import error_responses
from campaigns.contact_lists import import_province
from campaigns.importer import ReadLimits
from models import User
from tracing.checkins import UnusableFile, import_checkins
from tracing.copresence import Derivation, derive_f1, read_cases
from tracing.results import cases_of, derivable, import_results

router = APIRouter(prefix="/api/v1", tags=["national data"])
ERRORS = error_responses(401, 403, 413, 422)


class RejectedRow(BaseModel):
    row: int
    reason: str


class CheckinImportOut(BaseModel):
    imported: int
    rejected: int
    already_imported: bool
    first_rejects: list[RejectedRow]


class ResultsImportOut(BaseModel):
    imported: int
    duplicates: int
    rejected: int
    new_cases: int = Field(description="people the results made confirmed cases (an urgent alert each)")
    rejects: list[RejectedRow]
    derived: "DerivationOut | None" = Field(description="the new cases' F1s, when `derive_list` was given")


class DerivationOut(BaseModel):
    f1: int
    cases: int
    seconds: float
    contact_list: ImportOut | None


def national_importer(user: UserDep) -> User:
    check_imports_national_data(user)
    return user


async def _saved(upload: UploadFile, limit: int) -> Path:
    try:
        return await asyncio.to_thread(save_upload, upload, limit)
    except UploadTooLarge as error:
        raise HTTPException(413, str(error)) from None


@router.post("/checkins", summary="Import QR check-ins (multipart: file)", responses=ERRORS)
async def upload_checkins(
    platform: PlatformDep,
    user: Annotated[User, Depends(national_importer)],
    file: Annotated[UploadFile, File(description="CSV or Parquet: venue_id, phone, checked_in_at, checked_out_at")],
) -> CheckinImportOut:
    """Usable rows are stored at once and the same file twice adds nothing; the first rejected rows come back with
    their reason (row numbers count data rows from 1)."""
    settings = platform.settings
    saved = await _saved(file, settings.checkins_max_upload_bytes)
    try:
        summary = await asyncio.to_thread(
            import_checkins, platform.sessions, user, saved, settings, source_name=file.filename
        )
    except UnusableFile as error:
        raise HTTPException(422, str(error)) from None
    finally:
        saved.unlink(missing_ok=True)
        saved.with_name(f"{saved.stem}.rejects.csv").unlink(missing_ok=True)
    return CheckinImportOut(
        imported=summary.imported,
        rejected=summary.rejected,
        already_imported=summary.already_imported,
        first_rejects=[RejectedRow(row=row, reason=reason) for row, reason in summary.first_rejects],
    )


@router.post("/results", summary="Import laboratory results (multipart: file, derive_list)", responses=ERRORS)
async def upload_results(
    platform: PlatformDep,
    user: Manager,
    file: Annotated[UploadFile, File(description="CSV or XLSX: phone, sample_date, result, lab")],
    derive_list: Annotated[
        str | None, Form(max_length=200, description="derive the new cases' F1s into a list of this name")
    ] = None,
) -> ResultsImportOut:
    """Whole or not at all, within the uploader's province; rejected rows come back with their line and reason."""
    settings = platform.settings
    saved = await _saved(file, settings.import_max_bytes)
    limits = ReadLimits.from_settings(settings)
    try:
        summary = await asyncio.to_thread(
            import_results, platform.sessions, user, saved, limits=limits, source_name=file.filename
        )
        derived = None
        if derive_list and derivable(summary, settings):
            derived = await asyncio.to_thread(
                derive_f1, platform.sessions, user, settings, cases_of(summary.new_cases), derive_list,
                source=file.filename or "results", province=user.province_code,
            )  # fmt: skip
    except UnusableFile as error:
        raise HTTPException(422, str(error)) from None
    finally:
        saved.unlink(missing_ok=True)
        saved.with_name(f"{saved.stem}.rejects.csv").unlink(missing_ok=True)
    return ResultsImportOut(
        imported=summary.imported,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        new_cases=len(summary.new_cases),
        rejects=[RejectedRow(row=line, reason=reason) for line, reason in summary.first_rejects],
        derived=_derivation_out(derived) if derived else None,
    )


@router.post("/f1/derive", summary="Derive an F1 list from the check-ins (multipart: cases, name)", responses=ERRORS)
async def derive(
    platform: PlatformDep,
    user: Manager,
    cases: Annotated[UploadFile, File(description="CSV or XLSX: phone, infectious_from, infectious_to, case_code")],
    name: Annotated[str, Form(min_length=1, max_length=200, description="the new contact list's name")],
    province: Annotated[str | None, Form(description="two-digit code; a provincial user's own by default")] = None,
    dwell_minutes: Annotated[int, Form(ge=1, le=1440, description="a visit with no check-out lasts this long")] = 60,
) -> DerivationOut:
    """The F1s become a contact list under the importer's rules: a provincial user's list holds people of their
    province (and new people) only; the others are rejected with the reason."""
    province = import_province(user, province)
    settings = platform.settings
    saved = await _saved(cases, settings.import_max_bytes)
    try:
        found = read_cases(saved, ReadLimits.from_settings(settings))
        derivation = await asyncio.to_thread(
            derive_f1,
            platform.sessions,
            user,
            settings,
            found,
            name,
            source=cases.filename or "cases",
            province=province,
            dwell_minutes=dwell_minutes,
        )
    except UnusableFile as error:
        raise HTTPException(422, str(error)) from None
    finally:
        saved.unlink(missing_ok=True)
    return _derivation_out(derivation)


def _derivation_out(derivation: Derivation) -> DerivationOut:
    listed = derivation.contact_list
    return DerivationOut(
        f1=len(derivation.f1s),
        cases=derivation.cases,
        seconds=round(derivation.seconds, 3),
        contact_list=ImportOut.of(listed) if listed else None,
    )
