"""The national platforms' data: QR check-ins, laboratory results and vaccinations in, and F1 lists derived from the
check-ins by co-presence with cases."""

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field

from access.auth import check_imports_national_data
from app.deps import PlatformDep, UserDep
from app.routers.contact_lists import ImportOut, Manager, UploadTooLarge, save_upload
from app.schemas import error_responses
from campaigns.contact_lists import import_province
from campaigns.importer import ReadLimits
from models import User
from tracing.checkins import CheckinImport, UnusableFile, import_checkins
from tracing.copresence import Derivation, derive_f1, read_cases
from tracing.records import RecordsImport
from tracing.results import ResultsImport, derive_new_cases, import_results
from tracing.vaccinations import import_vaccinations

router = APIRouter(prefix="/api/v1", tags=["national data"])
ERRORS = error_responses(401, 403, 413, 422)
T = TypeVar("T")


class RejectedRow(BaseModel):
    row: int
    reason: str


def _rejected(first: list[tuple[int, str]]) -> list[RejectedRow]:
    return [RejectedRow(row=row, reason=reason) for row, reason in first]


class CheckinImportOut(BaseModel):
    imported: int
    rejected: int
    already_imported: bool
    first_rejects: list[RejectedRow]


class RecordsImportOut(BaseModel):
    imported: int
    duplicates: int
    rejected: int
    rejects: list[RejectedRow] = Field(description="the first rejected rows, each with its line and reason")

    @classmethod
    def of(cls, summary: RecordsImport) -> "RecordsImportOut":
        counts = {"imported": summary.imported, "duplicates": summary.duplicates, "rejected": summary.rejected}
        return cls(**counts, rejects=_rejected(summary.first_rejects))


class DerivationOut(BaseModel):
    f1: int
    cases: int
    seconds: float
    contact_list: ImportOut | None

    @classmethod
    def of(cls, derivation: Derivation) -> "DerivationOut":
        listed = derivation.contact_list
        return cls(
            f1=len(derivation.f1s),
            cases=derivation.cases,
            seconds=round(derivation.seconds, 3),
            contact_list=ImportOut.of(listed) if listed else None,
        )


class ResultsImportOut(RecordsImportOut):
    new_cases: int = Field(description="people the results made confirmed cases (an urgent alert each)")
    derived: DerivationOut | None = Field(description="the new cases' F1s, when `derive_list` was given")
    not_derived: str | None = Field(description="why no list was derived (the results are stored all the same)")


def national_importer(user: UserDep) -> User:
    check_imports_national_data(user)
    return user


async def on_upload(upload: UploadFile, limit: int, work: Callable[[Path], T]) -> T:
    """`work` on the upload, saved privately, in a thread (an unusable file: 422 and the reason); then the upload
    and its rejects file are removed: the answer carries the reasons, and the rows stay nowhere else."""
    try:
        saved = await asyncio.to_thread(save_upload, upload, limit)
    except UploadTooLarge as error:
        raise HTTPException(413, str(error)) from None
    try:
        return await asyncio.to_thread(work, saved)
    except UnusableFile as error:
        raise HTTPException(422, str(error)) from None
    finally:
        saved.unlink(missing_ok=True)
        saved.with_name(f"{saved.stem}.rejects.csv").unlink(missing_ok=True)


@router.post("/checkins", summary="Import QR check-ins (multipart: file)", responses=ERRORS)
async def upload_checkins(
    platform: PlatformDep,
    user: Annotated[User, Depends(national_importer)],
    file: Annotated[UploadFile, File(description="CSV or Parquet: venue_id, phone, checked_in_at, checked_out_at")],
) -> CheckinImportOut:
    """Usable rows are stored at once and the same file twice adds nothing; the first rejected rows come back with
    their reason (row numbers count data rows from 1)."""
    settings = platform.settings

    def work(saved: Path) -> CheckinImport:
        return import_checkins(platform.sessions, user, saved, settings, source_name=file.filename)

    summary = await on_upload(file, settings.checkins_max_upload_bytes, work)
    return CheckinImportOut(
        imported=summary.imported,
        rejected=summary.rejected,
        already_imported=summary.already_imported,
        first_rejects=_rejected(summary.first_rejects),
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
    """Whole or not at all, within the uploader's province; rejected rows come back with their line and reason.
    `derive_list` is a national user's (the check-ins are the whole country's)."""
    settings = platform.settings
    if derive_list:
        check_imports_national_data(user)

    def work(saved: Path) -> tuple[ResultsImport, Derivation | None, str | None]:
        limits = ReadLimits.from_settings(settings)
        summary = import_results(platform.sessions, user, saved, limits=limits, source_name=file.filename)
        derived, why_not = derive_new_cases(platform.sessions, user, settings, summary, derive_list, file.filename)
        return summary, derived, why_not

    summary, derived, why_not = await on_upload(file, settings.import_max_bytes, work)
    return ResultsImportOut(
        **RecordsImportOut.of(summary).model_dump(),
        new_cases=len(summary.new_cases),
        derived=DerivationOut.of(derived) if derived else None,
        not_derived=why_not,
    )


@router.post("/vaccinations", summary="Import vaccine doses (multipart: file)", responses=ERRORS)
async def upload_vaccinations(
    platform: PlatformDep,
    user: Manager,
    file: Annotated[UploadFile, File(description="CSV or XLSX: phone, doses, last_dose_date")],
) -> RecordsImportOut:
    """Whole or not at all, within the uploader's province; rejected rows come back with their line and reason."""
    limits = ReadLimits.from_settings(platform.settings)

    def work(saved: Path) -> RecordsImport:
        return import_vaccinations(platform.sessions, user, saved, limits=limits, source_name=file.filename)

    return RecordsImportOut.of(await on_upload(file, platform.settings.import_max_bytes, work))


@router.post("/f1/derive", summary="Derive an F1 list from the check-ins (multipart: cases, name)", responses=ERRORS)
async def derive(
    platform: PlatformDep,
    user: Annotated[User, Depends(national_importer)],
    cases: Annotated[UploadFile, File(description="CSV or XLSX: phone, infectious_from, infectious_to, case_code")],
    name: Annotated[str, Form(min_length=1, max_length=200, description="the new contact list's name")],
    province: Annotated[str | None, Form(description="two-digit code; a provincial user's own by default")] = None,
    dwell_minutes: Annotated[int, Form(ge=1, le=1440, description="a visit with no check-out lasts this long")] = 60,
) -> DerivationOut:
    """The F1s become a contact list of `province` under the importer's rules. A national action: the check-ins, and
    so who was with whom, are the whole country's."""
    province = import_province(user, province)
    settings = platform.settings

    def work(saved: Path) -> Derivation:
        found = read_cases(saved, ReadLimits.from_settings(settings), cases.filename)
        source = cases.filename or "cases"
        return derive_f1(
            platform.sessions,
            user,
            settings,
            found,
            name,
            source=source,
            province=province,
            dwell_minutes=dwell_minutes,
        )

    return DerivationOut.of(await on_upload(cases, settings.import_max_bytes, work))
