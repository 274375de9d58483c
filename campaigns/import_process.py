"""Each API import in a child process of its own: whatever a file holds, the API's memory and threads never carry it.

A fork server, started once with the importer's modules loaded, forks one child per import, so a child starts in
milliseconds and inherits none of the API's threads or sockets. The child caps its own address space (RLIMIT_AS),
imports on its own store connection and sends back the summary or the reason the file was refused (and, while it
reads, how many rows it has read, so a page can show progress). At most
`import_workers` children run at once (later uploads wait without holding a thread), and one that outlives
`import_timeout_s` is killed: its transaction was never committed, so nothing of the list is stored.
As multiprocessing does for every child, a parent started as a script has it imported again in the child (as
`__mp_main__`): the `outreach` command's script is guarded, so that only loads its modules.
"""

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from campaigns.importer import ImportSummary, ReadLimits, UnusableFile, import_contacts, map_columns
from campaigns.listfile import read_table
from ground.settings import Settings
from ground.store import make_engine, make_session_factory

_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload([__name__, "sqlalchemy.dialects.postgresql.psycopg"])  # what imports need, loaded once


def start_fork_server() -> None:
    """Start the fork server and wait until it has loaded the importer (a second or more), so that no upload waits
    for it; once it runs, this costs one fork."""
    ready = _FORKS.Process(target=int)  # a child forks only once the server has loaded its modules
    ready.start()
    ready.join()


PROGRESS_EVERY_S = 0.25  # how often a child reports the rows it has read: often enough for a bar, few messages
PREVIEW_CELL_CHARS = 80  # a preview shows enough of a cell to recognise its column, and stays a small message


class ImportCrashed(RuntimeError):
    """The import process failed for a reason that is not the file's (its traceback is in the log)."""


@dataclass(frozen=True)
class FilePreview:
    """The first rows of a file whose columns could not all be recognised, and what was recognised."""

    header: list[str]
    rows: list[list[str]]
    fields: dict[int, str]  # column index -> the field it was recognised (or mapped) as


class UnmappedColumns(UnusableFile):
    """The file has no phone column the importer recognises: a person can map its columns and import it."""

    def __init__(self, reason: str, preview: FilePreview) -> None:
        super().__init__(reason)
        self.preview = preview


@dataclass(frozen=True)
class ImportJob:
    database_url: str
    path: Path
    list_name: str
    province: str | None
    scope: str | None
    source_name: str | None
    created_by: int | None
    limits: ReadLimits
    column_map: dict[str, str] | None = None  # {header: field} for columns the importer does not recognise
    preview_rows: int = 0  # > 0: a file without a recognised phone column comes back as a preview of this many rows


class ImportWorkers:
    """The bounded set of import processes of one app."""

    def __init__(self, settings: Settings) -> None:
        self._slots = asyncio.Semaphore(settings.import_workers)
        self._memory_bytes = settings.import_worker_memory_mb << 20
        self._timeout_s = settings.import_timeout_s

    async def run(self, job: ImportJob, progress: Callable[[int], None] | None = None) -> ImportSummary:
        """The import's summary, or UnusableFile with the reason the file was refused (UnmappedColumns, with a
        preview, when the job asked for one). `progress` hears the number of rows read so far, now and then."""
        async with self._slots:
            outcome = await self._in_child(job, progress or _ignore)
        kind, value = outcome
        if kind == "refused":
            raise UnusableFile(value)
        if kind == "columns":
            reason, preview = value
            raise UnmappedColumns(reason, FilePreview(**preview))
        return ImportSummary(**value)

    async def _in_child(self, job: ImportJob, progress: Callable[[int], None]) -> tuple[str, Any]:
        receiver, sender = _FORKS.Pipe(duplex=False)
        child = _FORKS.Process(target=_import_in_child, args=(job, self._memory_bytes, sender), daemon=True)
        await asyncio.to_thread(child.start)  # the first start launches the fork server: not on the event loop
        sender.close()  # the child holds the only writer now: its end, however it comes, is an end of file here
        try:
            outcome = await asyncio.wait_for(_outcome(receiver, progress), self._timeout_s)
        except TimeoutError:
            child.kill()
            outcome = ("refused", f"the import took longer than {self._timeout_s:.0f} s; split the list")
        except asyncio.CancelledError:  # the app is stopping: the import goes with it, uncommitted
            child.kill()
            raise
        finally:
            receiver.close()
            await _readable(child.sentinel)
            child.join()
        if outcome is not None:
            return outcome
        if child.exitcode is not None and child.exitcode < 0:  # a signal: the kernel's out-of-memory killer, say
            return ("refused", "the import process was stopped; the list needs more memory than an import may use")
        raise ImportCrashed(f"the import process ended with exit code {child.exitcode}")


def _ignore(_: int) -> None:
    pass


async def _outcome(receiver: Connection, progress: Callable[[int], None]) -> tuple[str, Any] | None:
    """The child's last message (None if it ended without one); its progress reports go to `progress` meanwhile."""
    while True:
        message = await _receive(receiver)
        if message is None or message[0] != "progress":
            return message
        progress(message[1])


async def _receive(receiver: Connection) -> tuple[str, Any] | None:
    await _readable(receiver.fileno())
    try:
        return receiver.recv()
    except EOFError:
        return None


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class _RowsRead:
    """The importer's per-row progress, sent to the parent at most every PROGRESS_EVERY_S (a pipe message per row
    would cost more than the row)."""

    def __init__(self, sender: Connection) -> None:
        self.sender = sender
        self.rows = 0
        self.sent_at = time.monotonic()

    def __call__(self, rows: int) -> None:
        self.rows += rows
        if time.monotonic() - self.sent_at >= PROGRESS_EVERY_S:
            self.send()

    def send(self) -> None:
        self.sender.send(("progress", self.rows))
        self.sent_at = time.monotonic()


def _import_in_child(job: ImportJob, memory_bytes: int, sender: Connection) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    engine = make_engine(job.database_url)
    rows_read = _RowsRead(sender)
    try:
        summary = import_contacts(
            make_session_factory(engine),
            job.path,
            job.list_name,
            province=job.province,
            scope=job.scope,
            column_map=job.column_map,
            progress=rows_read,
            source_name=job.source_name,
            limits=job.limits,
            created_by=job.created_by,
        )
        rows_read.send()  # the last count, however short the import was
        outcome: tuple[str, Any] = ("done", summary.as_dict())
    except UnusableFile as error:
        outcome = _refusal(job, str(error)[:2000])
    except MemoryError:
        outcome = ("refused", f"reading this list needs more than {memory_bytes >> 20:,} MB of memory; split it")
    finally:
        engine.dispose()
    sender.send(outcome)


def _refusal(job: ImportJob, reason: str) -> tuple[str, Any]:
    """Why the file was refused; when its columns are the reason and the job asked, a preview to map them with.
    Read again only on this path: a file that imports is read once."""
    if job.preview_rows <= 0:
        return ("refused", reason)
    try:
        rows = [cells for _, cells in islice(read_table(job.path, job.limits), job.preview_rows + 1)]
    except UnusableFile:
        return ("refused", reason)
    if not rows:
        return ("refused", reason)
    header, *first_rows = rows
    fields = _recognised(header, job.column_map)
    if fields is None:  # the columns were not the problem
        return ("refused", reason)
    preview = {"header": [_shown(cell) for cell in header], "rows": [[_shown(c) for c in r] for r in first_rows]}
    return ("columns", (reason, {**preview, "fields": fields}))


def _recognised(header: list[Any], column_map: dict[str, str] | None) -> dict[int, str] | None:
    """Which columns the importer recognises (column index -> field), or None if it finds a phone column: then the
    columns are usable. Asked of `map_columns` itself, so a preview never disagrees with the import: a probe column
    named as the phone lets it say what it recognises of the others."""
    try:
        map_columns(header, column_map)
        return None
    except UnusableFile:
        pass
    probe = "\x00phone probe"
    try:
        mapping = map_columns([*header, probe], {**(column_map or {}), probe: "phone"})
    except UnusableFile:  # the map names a field the importer has not got: nothing is recognised from it
        return {}
    return {index: name for name, index in mapping.items() if index < len(header)}


def _shown(cell: Any) -> str:
    text = "" if cell is None else str(cell)
    return text if len(text) <= PREVIEW_CELL_CHARS else text[:PREVIEW_CELL_CHARS] + "…"
