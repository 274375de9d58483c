"""The embedded analytical engine (DuckDB), bounded by the settings so a national file cannot take the platform down."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ground.settings import Settings


@contextmanager
def connection(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB within the configured memory and threads, spilling to a private temporary folder past its
    limit, that reads times given without an offset in the configured zone."""
    with tempfile.TemporaryDirectory(prefix="outreach-analytics-") as spill:
        database = duckdb.connect(
            config={
                "memory_limit": f"{settings.analytics_memory_mb}MB",
                "threads": settings.analytics_threads,
                "temp_directory": spill,
            }
        )
        database.execute("SET TimeZone = ?", [settings.timezone])  # ICU is built in, but loaded after the config
        try:
            yield database
        finally:
            database.close()


def quoted(path: Path) -> str:
    """A file name as a SQL string literal (DuckDB's table functions take no bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"
