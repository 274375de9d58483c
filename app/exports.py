"""An export (a campaign's, or declarations in the national form) as an HTTP response, for the API and the console
alike: CSV streamed in a session of its own (the response outlives the request's), XLSX written to a private temporary
file and removed once sent."""

import os
import tempfile
from collections.abc import Iterator
from typing import IO, Protocol

from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.background import BackgroundTask


class FileExport(Protocol):
    """An export on the record already (a campaign's, or declarations in the national form)."""

    file_name: str

    def csv_bytes(self, session: Session) -> Iterator[bytes]: ...

    def write(self, session: Session, sink: IO[bytes]) -> None: ...


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_response(sessions: sessionmaker[Session], export: FileExport) -> StreamingResponse:
    return StreamingResponse(
        _csv_in_own_session(sessions, export),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.file_name}"'},
    )


def _csv_in_own_session(sessions: sessionmaker[Session], export: FileExport) -> Iterator[bytes]:
    """Rows read while the response streams, after the request's own session has closed."""
    with sessions() as session:
        yield from export.csv_bytes(session)


def xlsx_response(session: Session, export: FileExport) -> FileResponse:
    with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as sink:
        try:
            export.write(session, sink)
        except BaseException:
            os.unlink(sink.name)
            raise
    return FileResponse(
        sink.name, media_type=XLSX_TYPE, filename=export.file_name, background=BackgroundTask(os.unlink, sink.name)
    )
