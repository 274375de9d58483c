"""F1 contact lists: upload a CSV/XLSX list (imported whole or not at all) and read what it became."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from access.auth import check_manages_lists
from app.deps import PlatformDep, SessionDep, UserDep
from app.schemas import Id, error_responses
from campaigns.contact_lists import contact_list_in_scope, import_province, people_on, rejects_file
from campaigns.import_process import ImportCrashed, ImportJob, ImportWorkers, start_fork_server
from campaigns.importer import FIELDS, ImportSummary, ReadLimits, UnusableFile
from campaigns.listfile import MAX_COLUMNS
from ground.settings import PROJECT_ROOT
from models import User


@asynccontextmanager
async def _import_processes(app: FastAPI) -> AsyncIterator[None]:
    """The app's bounded import processes; their fork server starts meanwhile, so the first upload waits for none."""
    app.state.import_workers = ImportWorkers(app.state.platform.settings)
    starting = asyncio.create_task(asyncio.to_thread(start_fork_server))
    yield
    await starting


router = APIRouter(prefix="/api/v1/contact-lists", tags=["contact lists"], lifespan=_import_processes)
UPLOADS = PROJECT_ROOT / "var" / "imports"
ERRORS = error_responses(401, 403, 404, 413, 422)


class ImportOut(BaseModel):
    list_id: int
    imported: int
    duplicates: int
    rejected: int
    rejects_url: str | None

    @classmethod
    def of(cls, summary: ImportSummary) -> "ImportOut":
        return cls(
            list_id=summary.list_id,
            imported=summary.imported,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
            rejects_url=_rejects_url(summary.list_id, summary.rejects_file),
        )


class ContactListOut(BaseModel):
    id: int
    name: str
    province_code: str | None
    source_file: str | None
    created_at: datetime
    people: int
    rejects_url: str | None


def list_manager(user: UserDep) -> User:
    check_manages_lists(user)
    return user


Manager = Annotated[User, Depends(list_manager)]


def _rejects_url(list_id: int, rejects_file: str | None) -> str | None:
    return f"/api/v1/contact-lists/{list_id}/rejects.csv" if rejects_file else None


def import_workers(request: Request) -> ImportWorkers:
    return request.app.state.import_workers


class UploadTooLarge(ValueError):
    """The upload is beyond `import_max_bytes`; nothing of it was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than {limit // (1 << 20)} MB; split the list")
        self.limit = limit


def save_upload(upload: UploadFile, limit: int) -> Path:
    """The upload in a private file (it holds residents' names and phones) under a name nobody can guess. The API
    and the console both save here, in a worker thread: this reads the whole upload."""
    UPLOADS.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = UPLOADS / f"{uuid.uuid4().hex}{Path(upload.filename or 'list.csv').suffix.lower()[:8]}"
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as sink:
        copied = 0
        while chunk := upload.file.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                sink.close()
                target.unlink()
                raise UploadTooLarge(limit)
            sink.write(chunk)
    return target


def column_map_of(pairs: list[str]) -> dict[str, str]:
    """'Header=field' pairs as a column map ({header: field}); the field is what follows the last '='."""
    column_map = {}
    for pair in pairs[:MAX_COLUMNS]:
        header, equals, name = pair.rpartition("=")
        if not equals or not header.strip() or name.strip() not in FIELDS:
            raise HTTPException(422, f"map '{pair[:100]}' is not 'Header=field' with a field of {', '.join(FIELDS)}")
        column_map[header.strip()] = name.strip()
    return column_map


@router.post("", summary="Import an F1 list (multipart: file, name, province)", responses=ERRORS)
async def upload_list(
    platform: PlatformDep,
    user: Manager,
    workers: Annotated[ImportWorkers, Depends(import_workers)],
    file: Annotated[UploadFile, File(description="a .csv or .xlsx list")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    province: Annotated[str | None, Form(description="two-digit code; a provincial user's own by default")] = None,
    column_map: Annotated[
        list[str] | None,
        Form(alias="map", description="'Header=field' for a column the importer does not recognise (repeatable)"),
    ] = None,
) -> ImportOut:
    """The list is imported in a process of its own, within the OUTREACH_IMPORT_* caps (beyond them: 422 and the
    reason). A provincial user imports people of their province only: other rows are rejected with the reason."""
    province = import_province(user, province)
    columns = column_map_of(column_map or [])
    settings = platform.settings
    try:
        saved = await asyncio.to_thread(save_upload, file, settings.import_max_bytes)
    except UploadTooLarge as error:
        raise HTTPException(413, str(error)) from None
    job = ImportJob(
        database_url=settings.database_url,
        path=saved,
        list_name=name,
        province=province,
        scope=user.province_code,
        source_name=file.filename,
        created_by=user.id,
        limits=ReadLimits.from_settings(settings),
        column_map=columns or None,
    )
    try:
        summary = await workers.run(job)
    except UnusableFile as error:
        raise HTTPException(422, str(error)) from None
    except ImportCrashed:  # its log line says why; the answer carries none of the list's rows
        raise HTTPException(500, "the import failed on the server; nothing was stored: try again later") from None
    finally:
        saved.unlink(missing_ok=True)
    return ImportOut.of(summary)


@router.get("/{list_id}", responses=ERRORS)
def get_list(list_id: Id, session: SessionDep, user: UserDep) -> ContactListOut:
    contact_list = contact_list_in_scope(session, user, list_id)
    return ContactListOut(
        id=contact_list.id,
        name=contact_list.name,
        province_code=contact_list.province_code,
        source_file=contact_list.source_file,
        created_at=contact_list.created_at,
        people=people_on(session, list_id),
        rejects_url=_rejects_url(list_id, contact_list.rejects_file),
    )


@router.get("/{list_id}/rejects.csv", responses=ERRORS, response_class=FileResponse)
def get_rejects(list_id: Id, session: SessionDep, user: Manager) -> FileResponse:
    rejects = rejects_file(contact_list_in_scope(session, user, list_id))
    return FileResponse(rejects, media_type="text/csv; charset=utf-8", filename=f"list-{list_id}-rejects.csv")
