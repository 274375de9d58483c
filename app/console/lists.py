"""F1 contact lists in the console: the province's lists, uploading one (a progress bar while it uploads and imports,
and a preview to map columns the importer does not recognise) and one list's page with its counts and rejected rows.

The import itself runs where the API's does: in the app's bounded import processes (`campaigns.import_process`).
What the console remembers between requests (each upload's progress, a file waiting for its columns to be mapped)
lives in this process's memory, tied to the console session that uploaded it: a restart forgets it, and the person
uploads again.
"""

import asyncio
import csv
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from access.auth import CAN_MANAGE_LISTS, audit, check_manages_lists, hash_token
from access.errors import InvalidValue
from app.client_address import ClientIpDep
from app.console.session import ConsoleRoute, FormDep, Signed, SignedDep
from app.console.views import render
from app.deps import PlatformDep, SessionDep
from app.routers.contact_lists import UPLOADS, UploadTooLarge, import_workers, save_upload
from app.schemas import Id
from campaigns.contact_lists import contact_list_in_scope, import_province, people_on, rejects_file
from campaigns.import_process import FilePreview, ImportCrashed, ImportJob, ImportWorkers, UnmappedColumns
from campaigns.importer import FIELDS, ImportSummary, ReadLimits, UnusableFile
from campaigns.listfile import MAX_COLUMNS
from campaigns.provinces import PROVINCES
from ground.settings import Settings
from models import ContactList, ContactListMember, Person, User

PAGE_SIZE = 50
MAX_PAGE = 100_000
REJECTS_SHOWN = 500
PREVIEW_ROWS = 5
KEEP_S = 3600.0  # an upload waiting for its columns, and an upload's progress, are forgotten after an hour
MAX_UPLOADS_REMEMBERED = 1_000  # progress entries of one process: the oldest go first
STAGED = UPLOADS / "staged"  # files waiting for their columns; everything here older than KEEP_S is deleted
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAP_PREFIX = "map:"  # the mapping form's selects are named map:{header}
FIELD_LABELS = {
    "full_name": "Họ và tên",
    "phone": "Số điện thoại",
    "birth_year": "Năm sinh",
    "address": "Địa chỉ",
    "ward": "Phường, xã",
    "district": "Quận, huyện",
    "province": "Tỉnh, thành phố",
    "exposure_date": "Ngày tiếp xúc",
    "source_case": "Mã ca F0",
}
assert set(FIELD_LABELS) == set(FIELDS), "every field the importer knows has a label"


# What the console remembers of uploads


@dataclass
class UploadProgress:
    """One upload as its page polls it: rows read so far, and the import's summary once it is done."""

    owner: str
    started: float = field(default_factory=time.monotonic)
    rows: int = 0
    state: str = "importing"  # importing -> done, refused, or columns (a preview is shown to map them)
    summary: ImportSummary | None = None

    def read(self, rows: int) -> None:
        self.rows = rows


@dataclass(frozen=True)
class StagedUpload:
    """An uploaded file kept server-side while its uploader maps its columns."""

    path: Path
    owner: str
    list_name: str
    province: str | None
    source_name: str | None
    column_map: dict[str, str]
    preview: FilePreview
    staged: float = field(default_factory=time.monotonic)


MAX_STAGED_PER_SESSION = 3


class UploadDesk:
    """Uploads in progress and files waiting for a mapping, each visible to the console session that made it only."""

    def __init__(self, staging: Path = STAGED) -> None:
        self.staging = staging
        self.progress: OrderedDict[str, UploadProgress] = OrderedDict()
        self.waiting: dict[str, StagedUpload] = {}

    def start(self, upload_id: str, owner: str) -> UploadProgress:
        """The progress of a new upload; an id that is malformed or someone else's gets a record nobody can poll."""
        self._forget_old()
        progress = UploadProgress(owner)
        known = self.progress.get(upload_id)
        if UPLOAD_ID.match(upload_id) and (known is None or known.owner == owner):
            self.progress[upload_id] = progress
            self.progress.move_to_end(upload_id)
        while len(self.progress) > MAX_UPLOADS_REMEMBERED:
            self.progress.popitem(last=False)
        return progress

    def progress_of(self, upload_id: str, owner: str) -> UploadProgress | None:
        progress = self.progress.get(upload_id)
        return progress if progress is not None and progress.owner == owner else None

    def stage(self, upload: StagedUpload) -> str:
        """Keep the file until its columns are mapped; the token the mapping form carries names it. A session keeps
        a few at most (its oldest go first), so that nobody fills the disk with uploads never mapped."""
        self._forget_old()
        theirs = [token for token, waiting in self.waiting.items() if waiting.owner == upload.owner]
        for token in theirs[: max(0, len(theirs) - MAX_STAGED_PER_SESSION + 1)]:
            self.waiting.pop(token).path.unlink(missing_ok=True)
        self.staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        kept = upload.path.rename(self.staging / upload.path.name)
        token = secrets.token_urlsafe(24)
        self.waiting[token] = replace(upload, path=kept, staged=time.monotonic())
        return token

    def take(self, token: str, owner: str) -> StagedUpload | None:
        """The staged upload, back among the imports (its rejects file is written beside it and must stay)."""
        self._forget_old()
        upload = self.waiting.get(token)
        if upload is None or upload.owner != owner:
            return None
        del self.waiting[token]
        back = upload.path.rename(UPLOADS / upload.path.name)
        return replace(upload, path=back)

    def sweep_files(self) -> None:
        """Delete staged files older than KEEP_S, those a restart left behind included."""
        cutoff = time.time() - KEEP_S
        for path in self.staging.glob("*") if self.staging.is_dir() else ():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """The app stops: nobody can map a waiting file any more."""
        for upload in self.waiting.values():
            upload.path.unlink(missing_ok=True)
        self.waiting.clear()

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - KEEP_S
        for token, upload in list(self.waiting.items()):
            if upload.staged < cutoff:
                upload.path.unlink(missing_ok=True)
                del self.waiting[token]
        while self.progress and next(iter(self.progress.values())).started < cutoff:
            self.progress.popitem(last=False)


@asynccontextmanager
async def _upload_desk(app: FastAPI) -> AsyncIterator[None]:
    desk = app.state.list_uploads = UploadDesk()
    await asyncio.to_thread(desk.sweep_files)
    yield
    desk.close()


router = APIRouter(prefix="/console/lists", route_class=ConsoleRoute, include_in_schema=False, lifespan=_upload_desk)


def upload_desk(request: Request) -> UploadDesk:
    return request.app.state.list_uploads


DeskDep = Annotated[UploadDesk, Depends(upload_desk)]
WorkersDep = Annotated[ImportWorkers, Depends(import_workers)]


def owner_of(signed: Signed) -> str:
    """The console session an upload belongs to (its cookie's hash: the cookie itself is kept nowhere)."""
    return hash_token(signed.token)


def manager(signed: Signed) -> User:
    check_manages_lists(signed.user)
    return signed.user


async def chosen_columns(request: Request) -> dict[str, str]:
    """The map:{header} selects of a form, as a column map; a select left blank ignores its column."""
    form = await request.form()  # parsed already for the route's own fields: this reads FastAPI's copy
    chosen = {
        key.removeprefix(MAP_PREFIX): value
        for key, value in form.multi_items()
        if key.startswith(MAP_PREFIX) and isinstance(value, str) and value
    }
    wrong = [value for value in chosen.values() if value not in FIELDS]
    if wrong or len(chosen) > MAX_COLUMNS:
        raise InvalidValue("map", "chọn cột theo danh sách có sẵn")
    return chosen


ColumnsDep = Annotated[dict[str, str], Depends(chosen_columns)]


# Pages


@router.get("")
def lists_page(
    request: Request,
    signed: SignedDep,
    session: SessionDep,
    ip: ClientIpDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    rows = _lists(session, signed.user, page)
    audit(session, signed.user, "contact_list.list", "contact_list", [row[0].id for row in rows], ip)
    context = {
        "signed": signed,
        "rows": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "can_manage": signed.user.role in CAN_MANAGE_LISTS,
        "provinces": PROVINCES,
    }
    return render(request, "lists.html", context)


@router.get("/new")
def new_list_page(request: Request, signed: SignedDep) -> Response:
    manager(signed)
    return _form(request, signed)


@router.get("/progress/{upload_id}")
def upload_progress(upload_id: str, signed: SignedDep, desk: DeskDep) -> Response:
    """How far an upload's import is: for the session that uploaded it only (to anyone else it does not exist)."""
    progress = desk.progress_of(upload_id, owner_of(signed))
    if progress is None:
        return JSONResponse({"state": "unknown"}, status_code=404)
    return JSONResponse({"state": progress.state, "rows": progress.rows})


@router.post("")
async def upload_list(
    request: Request,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    desk: DeskDep,
    workers: WorkersDep,
    column_map: ColumnsDep,
    file: Annotated[UploadFile | None, File()] = None,
    name: Annotated[str, Form(max_length=1000)] = "",
    province: Annotated[str, Form(max_length=100)] = "",
    upload_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Save the upload, import it in an import process and show the list; a file without a recognised phone column
    shows a preview to map its columns instead; a file that cannot be imported shows the form with the reason."""
    user = manager(signed)
    entered = {"name": name, "province": province, "upload_id": upload_id}
    try:
        list_name, list_province = _list_details(user, name, province)
    except InvalidValue as problem:
        return _form(request, signed, entered, str(problem.problem), 422)
    if file is None or not file.filename:
        return _form(request, signed, entered, "Chọn tệp danh sách (.csv hoặc .xlsx).", 422)
    await run_in_threadpool(session.commit)  # an import may take minutes: no store connection is held meanwhile
    try:
        saved = await asyncio.to_thread(save_upload, file, platform.settings.import_max_bytes)
    except UploadTooLarge as error:
        message = f"Tệp lớn hơn {_size(error.limit)}, mức tối đa cho một danh sách. Hãy chia thành nhiều tệp nhỏ hơn."
        return _form(request, signed, entered, message, 413)
    upload = StagedUpload(saved, owner_of(signed), list_name, list_province, file.filename, column_map, _NO_PREVIEW)
    return await _import(request, signed, desk, workers, platform.settings, upload, upload_id)


@router.post("/map")
async def import_mapped(
    request: Request,
    signed: FormDep,
    session: SessionDep,
    platform: PlatformDep,
    desk: DeskDep,
    workers: WorkersDep,
    column_map: ColumnsDep,
    staged: Annotated[str, Form(max_length=100)] = "",
    upload_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Import a file kept from an earlier upload with the columns its uploader mapped."""
    manager(signed)
    await run_in_threadpool(session.commit)  # as for an upload: nothing held while the import runs
    upload = desk.take(staged, owner_of(signed))
    if upload is None:
        message = "Tệp tải lên trước đã hết hạn (sau một giờ) hoặc đã được nhập. Hãy chọn lại tệp."
        return _form(request, signed, {}, message, 410)
    upload = replace(upload, column_map={**upload.column_map, **column_map})
    return await _import(request, signed, desk, workers, platform.settings, upload, upload_id)


@router.get("/{list_id}")
def list_page(
    request: Request,
    list_id: Id,
    signed: SignedDep,
    session: SessionDep,
    desk: DeskDep,
    ip: ClientIpDep,
    upload: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    contact_list = contact_list_in_scope(session, signed.user, list_id)
    audit(session, signed.user, "contact_list.read", "contact_list", [list_id], ip)
    can_manage = signed.user.role in CAN_MANAGE_LISTS
    progress = desk.progress_of(upload, owner_of(signed)) if upload else None
    context = {
        "signed": signed,
        "contact_list": contact_list,
        "province_name": PROVINCES.get(contact_list.province_code or "", ""),
        "people": people_on(session, list_id),
        "new_people": contact_list.imported
        if contact_list.imported is not None
        else _new_people(session, contact_list),
        "rejects": _rejects(contact_list) if can_manage else None,
        "can_manage": can_manage,
        "just_imported": progress.summary if progress and progress.summary else None,
        "shown": REJECTS_SHOWN,
    }
    return render(request, "list.html", context)


@router.get("/{list_id}/rejects.csv")
def rejects_csv(list_id: Id, signed: SignedDep, session: SessionDep, ip: ClientIpDep) -> Response:
    contact_list = contact_list_in_scope(session, manager(signed), list_id)
    rejects = rejects_file(contact_list)
    audit(session, signed.user, "contact_list.rejects.read", "contact_list", [list_id], ip)
    return FileResponse(rejects, media_type="text/csv; charset=utf-8", filename=f"danh-sach-{list_id}-bi-loai.csv")


# The upload's steps

_NO_PREVIEW = FilePreview([], [], {})


def _list_details(user: User, name: str, province: str) -> tuple[str, str | None]:
    """The list's name and province as the form gave them, or InvalidValue saying what to fix."""
    name = name.strip()
    if not name:
        raise InvalidValue("name", "Đặt tên cho danh sách, ví dụ: F1 của ca BN1234 ngày 02/06.")
    if len(name) > ContactList.name.type.length:
        raise InvalidValue("name", f"Tên danh sách dài quá {ContactList.name.type.length} ký tự.")
    if not user.province_code and not province.strip():
        raise InvalidValue("province", "Chọn tỉnh của danh sách.")
    try:
        return name, import_province(user, province.strip() or None)
    except InvalidValue:
        raise InvalidValue("province", "Chọn một tỉnh trong danh sách.") from None


async def _import(
    request: Request,
    signed: Signed,
    desk: UploadDesk,
    workers: ImportWorkers,
    settings: Settings,
    upload: StagedUpload,
    upload_id: str,
) -> Response:
    """Import the saved upload and answer with the list (303), its preview, or the form with the reason."""
    progress = desk.start(upload_id, upload.owner)
    job = ImportJob(
        database_url=settings.database_url,
        path=upload.path,
        list_name=upload.list_name,
        province=upload.province,
        scope=signed.user.province_code,
        source_name=upload.source_name,
        created_by=signed.user.id,
        limits=ReadLimits.from_settings(settings),
        column_map=upload.column_map or None,
        preview_rows=PREVIEW_ROWS,
    )
    entered = {"name": upload.list_name, "province": upload.province or "", "upload_id": upload_id}
    try:
        summary = await workers.run(job, progress.read)
    except UnmappedColumns as unmapped:
        progress.state = "columns"
        token = desk.stage(replace(upload, preview=unmapped.preview))
        return _mapping(request, signed, desk.waiting[token], token)
    except UnusableFile as error:
        progress.state = "refused"
        reason = str(error).replace(upload.path.name, upload.source_name or "tệp")  # the server's name is not theirs
        return _form(request, signed, entered, f"Không nhập được tệp này, chưa lưu gì: {reason}", 422)
    except ImportCrashed:  # the log has its traceback; the page has none of the list's rows
        progress.state = "refused"
        message = "Máy chủ gặp lỗi khi nhập danh sách; chưa lưu gì. Hãy thử lại sau ít phút."
        return _form(request, signed, entered, message, 500)
    finally:  # whatever happened, the upload is not kept here (a staged one has moved already)
        upload.path.unlink(missing_ok=True)
    progress.state, progress.summary = "done", summary
    shown_once = f"?upload={upload_id}" if desk.progress_of(upload_id, upload.owner) is progress else ""
    return RedirectResponse(f"/console/lists/{summary.list_id}{shown_once}", status_code=303)


def _form(
    request: Request, signed: Signed, entered: dict[str, str] | None = None, error: str = "", status_code: int = 200
) -> Response:
    entered = entered or {}
    context = {
        "signed": signed,
        "provinces": PROVINCES,
        "entered": entered,
        "upload_id": entered.get("upload_id") if UPLOAD_ID.match(entered.get("upload_id", "")) else _new_upload_id(),
        "max_size": _size(request.app.state.platform.settings.import_max_bytes),
        "error": error,
    }
    return render(request, "list_new.html", context, status_code=status_code)


def _size(limit: int) -> str:
    return f"{limit >> 20} MB" if limit >= 1 << 20 else f"{max(1, limit >> 10)} KB"


def _new_upload_id() -> str:
    return secrets.token_urlsafe(16)


def _mapping(request: Request, signed: Signed, upload: StagedUpload, token: str) -> Response:
    preview = upload.preview
    unknown = [(i, title) for i, title in enumerate(preview.header) if i not in preview.fields and title.strip()]
    context = {
        "signed": signed,
        "upload": upload,
        "token": token,
        "preview": preview,
        "recognised": {i: FIELD_LABELS[name] for i, name in preview.fields.items()},
        "unknown": unknown,
        "map_prefix": MAP_PREFIX,
        "labels": FIELD_LABELS,
        "upload_id": _new_upload_id(),
        "tried": bool(upload.column_map),
    }
    return render(request, "list_map.html", context)


# Reading lists


def _lists(session: Session, user: User, page: int) -> list[tuple[ContactList, int]]:
    """A page of the lists in the user's scope, newest first, with how many people each holds (one more row than a
    page: whether a next page exists)."""
    people = (
        select(func.count())
        .where(ContactListMember.contact_list_id == ContactList.id)
        .correlate(ContactList)
        .scalar_subquery()
    )
    stmt = select(ContactList, people).order_by(ContactList.created_at.desc(), ContactList.id.desc())
    if user.province_code is not None:
        stmt = stmt.where(ContactList.province_code == user.province_code)
    stmt = stmt.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def _new_people(session: Session, contact_list: ContactList) -> int:
    """People this list brought into the store, for a list imported before the counts were kept. An import inserts
    its new people after it creates the list, and nobody joins a list later: a member created since the list is one
    it brought; the others were stored before."""
    stmt = (
        select(func.count())
        .select_from(ContactListMember)
        .join(Person, Person.id == ContactListMember.person_id)
        .where(ContactListMember.contact_list_id == contact_list.id, Person.created_at >= contact_list.created_at)
    )
    return session.scalar(stmt) or 0


@dataclass(frozen=True)
class Rejects:
    rows: list[tuple[str, str, str]]  # line, reason, the row's cells
    total: int


def _rejects(contact_list: ContactList) -> Rejects:
    """The first REJECTS_SHOWN rows of the list's rejects file, and how many it holds (the importer wrote it: a line
    header, then line, reason and the row's cells)."""
    if not contact_list.rejects_file or not Path(contact_list.rejects_file).is_file():
        return Rejects([], 0)
    rows: list[tuple[str, str, str]] = []
    total = 0
    with open(contact_list.rejects_file, encoding="utf-8-sig", newline="") as source:
        reader = csv.reader(source)
        next(reader, None)
        for line, reason, *cells in (row for row in reader if len(row) >= 2):
            total += 1
            if total <= REJECTS_SHOWN:
                rows.append((line, reason_vi(reason), " · ".join(cell for cell in cells if cell)))
    return Rejects(rows, total)


# The importer's reasons (English, in the rejects CSV the API and the CLI also give) as the page says them.
REASONS_VI = [
    (re.compile(r"no phone number|the phone number is empty"), "Không có số điện thoại"),
    (re.compile(r"(.*) contains letters"), "{0} có chữ cái, không phải số điện thoại"),
    (re.compile(r"(.*) is not a valid Vietnamese phone number"), "{0} không phải số điện thoại Việt Nam hợp lệ"),
    (re.compile(r"(.*) is not a phone number \(.*\)"), "{0} không phải số điện thoại"),
    (re.compile(r"birth year (.*) is not a year"), "Năm sinh {0} không phải một năm"),
    (re.compile(r"birth year (.*) is out of range"), "Năm sinh {0} không hợp lý"),
    (re.compile(r"exposure date (.*) is in the future"), "Ngày tiếp xúc {0} ở tương lai"),
    (re.compile(r"exposure date (.*) is not a date \(dd/mm/yyyy\)"), "Ngày tiếp xúc {0} không đúng dạng dd/mm/yyyy"),
    (re.compile(r"unknown province (.*)"), "Không rõ tỉnh {0}"),
    (
        re.compile(r"province (.*) \((\d+)\) is outside your province \((\d+)\).*"),
        "Tỉnh {0} ({1}) ngoài phạm vi tỉnh của bạn ({2}): nhờ tỉnh {1} hoặc cán bộ cấp quốc gia nhập dòng này",
    ),
    (re.compile(r"(\w+) is longer than (\d+) characters"), "Ô {0} dài quá {1} ký tự"),
    (
        re.compile(r"this phone belongs to a person followed by another province.*"),
        "Số điện thoại của người do tỉnh khác theo dõi: nhờ cán bộ cấp quốc gia",
    ),
]


def reason_vi(reason: str) -> str:
    """A reject's reason in Vietnamese; one the page does not know yet stays as the importer wrote it."""
    for pattern, said in REASONS_VI:
        if found := pattern.fullmatch(reason):
            return said.format(*found.groups())
    return reason
