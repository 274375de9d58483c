"""Each API import in a child process of its own: whatever a file holds, the API's memory and threads never carry it.

A fork server, started once with the importer's modules loaded, forks one child per import, so a child starts in
milliseconds and inherits none of the API's threads or sockets. The child caps its own address space (RLIMIT_AS),
imports on its own store connection and sends back the summary or the reason the file was refused. At most
`import_workers` children run at once (later uploads wait without holding a thread), and one that outlives
`import_timeout_s` is killed: its transaction was never committed, so nothing of the list is stored.
As multiprocessing does for every child, a parent started as a script has it imported again in the child (as
`__mp_main__`): the `outreach` command's script is guarded, so that only loads its modules.
"""

import asyncio
import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from campaigns.importer import ImportSummary, ReadLimits, UnusableFile, import_contacts
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


class ImportCrashed(RuntimeError):
    """The import process failed for a reason that is not the file's (its traceback is in the log)."""


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


class ImportWorkers:
    """The bounded set of import processes of one app."""

    def __init__(self, settings: Settings) -> None:
        self._slots = asyncio.Semaphore(settings.import_workers)
        self._memory_bytes = settings.import_worker_memory_mb << 20
        self._timeout_s = settings.import_timeout_s

    async def run(self, job: ImportJob) -> ImportSummary:
        """The import's summary, or UnusableFile with the reason the file was refused."""
        async with self._slots:
            outcome = await self._in_child(job)
        kind, value = outcome
        if kind == "refused":
            raise UnusableFile(value)
        return ImportSummary(**value)

    async def _in_child(self, job: ImportJob) -> tuple[str, Any]:
        receiver, sender = _FORKS.Pipe(duplex=False)
        child = _FORKS.Process(target=_import_in_child, args=(job, self._memory_bytes, sender), daemon=True)
        await asyncio.to_thread(child.start)  # the first start launches the fork server: not on the event loop
        sender.close()  # the child holds the only writer now: its end, however it comes, is an end of file here
        try:
            outcome = await asyncio.wait_for(_receive(receiver), self._timeout_s)
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


def _import_in_child(job: ImportJob, memory_bytes: int, sender: Connection) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    engine = make_engine(job.database_url)
    try:
        summary = import_contacts(
            make_session_factory(engine),
            job.path,
            job.list_name,
            province=job.province,
            scope=job.scope,
            source_name=job.source_name,
            limits=job.limits,
            created_by=job.created_by,
        )
        outcome: tuple[str, Any] = ("done", summary.as_dict())
    except UnusableFile as error:
        outcome = ("refused", str(error)[:2000])
    except MemoryError:
        outcome = ("refused", f"reading this list needs more than {memory_bytes >> 20:,} MB of memory; split it")
    finally:
        engine.dispose()
    sender.send(outcome)
