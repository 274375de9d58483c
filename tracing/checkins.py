"""QR check-ins from the national health-declaration platform (CSV or Parquet) into the check-in store.

Each imported file becomes one Parquet file named by the digest of its bytes, written whole under a temporary name and
renamed into place: an import lands entirely or not at all, and importing the same file again adds nothing. Rows that
cannot be used are counted and written, with their reason, to FILE.rejects.csv beside the file; the others land.

Columns: `venue_id`, `phone`, `checked_in_at` and optionally `checked_out_at` (headers in any case). Times carry an
offset (`2021-06-01T08:30:00+07:00`, `...Z`) or are local times in the configured zone (`2021-06-01 08:30`,
`01/06/2021 08:30`). Phones come in any common form and are stored in E.164. Stored times are instants (UTC).
"""

import contextlib
import csv
import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from access.auth import audit
from campaigns.export import neutralise
from campaigns.listfile import UnusableFile
from ground.phones import InvalidPhone, normalize_phone
from ground.private import private_text_file
from ground.settings import Settings
from models import User
from tracing.analytics import connection, quoted

__all__ = ["CheckinImport", "UnusableFile", "import_checkins", "stored_checkins"]

COLUMNS = ("venue_id", "phone", "checked_in_at", "checked_out_at")
VENUE_ID_CHARS = 64
MAX_VISIT_HOURS = 24  # a longer stay is a mistyped date: it would make a case present for days
GLOB_CHARACTERS = set("*?[]{}")
LOCAL_FORMATS = ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%Y-%m-%d %Hh%M"]
FIRST_REJECTS = 20  # shown by the CLI and the API
PARTIAL_STALE_S = 6 * 3600
REJECTS_KEPT = 100_000  # a file that is wrong throughout needs its first rows shown, not ten million of them
READERS = {".csv": "read_csv({}, all_varchar = true, header = true)", ".parquet": "read_parquet({})"}


@dataclass
class CheckinImport:
    stored_file: str | None  # None when no row could be used
    imported: int
    rejected: int
    rejects_file: str | None = None
    already_imported: bool = False
    first_rejects: list[tuple[int, str]] = field(default_factory=list)  # (row, reason) of the first rejected rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored_file": self.stored_file,
            "imported": self.imported,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
            "already_imported": self.already_imported,
            "first_rejects": self.first_rejects,
        }


def stored_checkins(settings: Settings) -> list[Path]:
    return sorted(settings.checkins_dir.glob("*.parquet"))


def import_checkins(
    sessions: sessionmaker[Session], user: User, path: Path, settings: Settings, *, source_name: str | None = None
) -> CheckinImport:
    """Import the check-ins at `path` (a national action: the caller checks the user may)."""
    name = source_name or path.name
    source = _source(path, name)
    target = settings.checkins_dir / f"{_digest(path)}.parquet"
    if target.exists():
        with connection(settings) as database:
            (rows,) = database.execute(f"SELECT count(*) FROM read_parquet({quoted(target)})").fetchone()
        return CheckinImport(str(target), imported=rows, rejected=0, already_imported=True)
    with connection(settings) as database:
        _load(database, source, name)
        _read_phones(database)
        database.execute(PARSE)
        (imported,) = database.execute("SELECT count(*) FROM parsed WHERE reason IS NULL").fetchone()
        (rejected,) = database.execute("SELECT count(*) FROM parsed WHERE reason IS NOT NULL").fetchone()
        summary = CheckinImport(None, imported=imported, rejected=rejected)
        if rejected:
            summary.rejects_file = str(_write_rejects(database, path))
            first = "SELECT row, reason FROM parsed WHERE reason IS NOT NULL ORDER BY row LIMIT ?"
            summary.first_rejects = [tuple(row) for row in database.execute(first, [FIRST_REJECTS]).fetchall()]
        if imported:
            _store(database, target)
            summary.stored_file = str(target)
    with sessions.begin() as session:
        detail = {"source": name, **summary.as_dict()}
        audit(session, user, "checkins.import", "checkins", [], detail=detail)
    return summary


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:32]


def _source(path: Path, name: str) -> str:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise UnusableFile(f"{name}: check-ins come as .csv or .parquet")
    if set(str(path)) & GLOB_CHARACTERS:
        raise UnusableFile(f"{name}: rename the file without * ? [ ] (DuckDB reads them as a pattern of files)")
    return reader.format(quoted(path))


def _load(database: duckdb.DuckDBPyConnection, source: str, file_name: str) -> None:
    """The file as table `raw`: its row number and the four columns as text (a missing check-out column is empty)."""
    try:
        names = [row[0] for row in database.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        given = {title.strip().lower(): title for title in names}
        missing = [name for name in COLUMNS[:3] if name not in given]
        if missing:
            raise UnusableFile(f"{file_name} has no column {', '.join(missing)}; its columns: {', '.join(names)}")
        cells = ", ".join(
            f'CAST("{given[name]}" AS VARCHAR) AS {name}' if name in given else f"NULL::VARCHAR AS {name}"
            for name in COLUMNS
        )
        (threads,) = database.execute("SELECT current_setting('threads')").fetchone()
        database.execute("SET threads = 1")  # rows numbered in the file's order, for the rejects' row numbers
        database.execute(f"CREATE TEMP TABLE raw AS SELECT row_number() OVER () AS row, {cells} FROM {source}")
        database.execute(f"SET threads = {int(threads)}")
    except duckdb.Error as error:
        raise UnusableFile(f"{file_name} cannot be read: {str(error).splitlines()[0]}") from None
    (rows,) = database.execute("SELECT count(*) FROM raw").fetchone()
    if not rows:
        raise UnusableFile(f"{file_name} has no rows")


def _read_phones(database: duckdb.DuckDBPyConnection) -> None:
    """Table `phones`: each distinct phone as written, in E.164 or with the reason it is not a phone. Each distinct
    value is read once: a day of check-ins repeats the same people's phones many times."""
    written = [row[0] for row in database.execute("SELECT DISTINCT phone FROM raw WHERE phone IS NOT NULL").fetchall()]
    normal: list[str | None] = []
    problems: list[str | None] = []
    for raw in written:
        try:
            normal.append(normalize_phone(raw))
            problems.append(None)
        except InvalidPhone as error:
            normal.append(None)
            problems.append(str(error))
    phones = pa.table({"written": written, "phone": normal, "problem": problems}, schema=PHONES_SCHEMA)
    database.register("phones", phones)


PHONES_SCHEMA = pa.schema([("written", pa.string()), ("phone", pa.string()), ("problem", pa.string())])


def _moment(column: str) -> str:
    text = f"nullif(trim(raw.{column}), '')"
    return f"coalesce(try_cast({text} AS TIMESTAMPTZ), try_strptime({text}, {LOCAL_FORMATS!r})::TIMESTAMPTZ)"


PARSE = f"""
CREATE TEMP TABLE parsed AS
WITH read AS (
    SELECT raw.row, raw.checked_in_at AS written_in, raw.checked_out_at AS written_out,
           nullif(trim(raw.venue_id), '') AS venue_id, phones.phone, phones.problem AS phone_problem,
           nullif(trim(raw.phone), '') IS NULL AS no_phone,
           {_moment("checked_in_at")} AS checked_in_at, {_moment("checked_out_at")} AS checked_out_at
    FROM raw LEFT JOIN phones ON raw.phone = phones.written
)
SELECT *, CASE
    WHEN venue_id IS NULL THEN 'no venue_id'
    WHEN length(venue_id) > {VENUE_ID_CHARS} THEN 'venue_id is longer than {VENUE_ID_CHARS} characters'
    WHEN no_phone THEN 'no phone number'
    WHEN phone_problem IS NOT NULL THEN phone_problem
    WHEN checked_in_at IS NULL THEN 'checked_in_at is not a time (2021-06-01 08:30, with or without an offset)'
    WHEN nullif(trim(written_out), '') IS NOT NULL AND checked_out_at IS NULL
        THEN 'checked_out_at is not a time (2021-06-01 09:30, with or without an offset)'
    WHEN checked_out_at < checked_in_at THEN 'checked out before checking in'
    WHEN checked_out_at > checked_in_at + INTERVAL {MAX_VISIT_HOURS} HOUR
        THEN 'checked out more than {MAX_VISIT_HOURS} hours after checking in (a mistyped date?)'
    WHEN checked_in_at > now() + INTERVAL 1 DAY THEN 'checked in in the future'
END AS reason
FROM read
"""


def _store(database: duckdb.DuckDBPyConnection, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_partials(target.parent)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")  # two uploads of one file at once
    database.execute(
        # A check-out at the very moment of the check-in is no check-out (a visit of no length meets nobody).
        "COPY (SELECT venue_id, phone, checked_in_at, nullif(checked_out_at, checked_in_at) AS checked_out_at "
        "FROM parsed WHERE reason IS NULL) "
        f"TO {quoted(partial)} (FORMAT parquet, COMPRESSION zstd)"
    )
    os.chmod(partial, 0o600)  # who was where and when: personal data
    os.replace(partial, target)


def _sweep_partials(folder: Path) -> None:
    """Remove what imports killed while writing left behind (never read: only *.parquet is). A partial file this old
    is no running import's: the largest file allowed is written in well under that."""
    stale = time.time() - PARTIAL_STALE_S
    for partial in folder.glob(".*.partial"):
        with contextlib.suppress(FileNotFoundError):
            if partial.stat().st_mtime < stale:
                partial.unlink()


def _write_rejects(database: duckdb.DuckDBPyConnection, path: Path) -> Path:
    """FILE.rejects.csv beside the file (private, never a formula a spreadsheet would run): row, reason, cells."""
    target = path.with_name(f"{path.stem}.rejects.csv")
    rejects = database.execute(
        "SELECT row, reason, venue_id, written_phone, written_in, written_out FROM ("
        "  SELECT parsed.*, raw.phone AS written_phone FROM parsed JOIN raw USING (row)"
        f") WHERE reason IS NOT NULL ORDER BY row LIMIT {REJECTS_KEPT}"
    )
    with private_text_file(target, "utf-8-sig") as sink:
        writer = csv.writer(sink)
        writer.writerow(["row", "reason", *COLUMNS])
        while batch := rejects.fetchmany(10_000):
            writer.writerows([neutralise(cell) for cell in row] for row in batch)
    return target
