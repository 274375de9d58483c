"""A campaign's follow-up as a table: one row per person per follow-up day, as CSV (streamed) or XLSX.

Spreadsheet formulas are neutralised as OWASP advises for CSV injection: a text cell that starts with =, +, -, @, a
tab or a carriage return gets a leading single quote, in both formats. Phone numbers are E.164 and so always start
with +: Excel would read +84912345678 as a number (or a formula), so they are quoted like any other cell; the quote
also keeps them text, which is what a phone number is.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from sqlalchemy.orm import Session

from campaigns.outcomes import FollowUpRow, follow_up_rows
from models import Campaign

COLUMNS = FollowUpRow._fields
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_ROWS_PER_SHEET = 1_048_576  # Excel's limit: a longer export goes on into another sheet
CSV_ROWS_PER_CHUNK = 1000


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made plain text; anything else as it is."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def export_rows(
    session: Session, campaign: Campaign, today: date, province_code: str | None = None
) -> Iterator[tuple[Any, ...]]:
    """The rows under COLUMNS, neutralised, person by person and day by day (dates as dates, numbers as numbers)."""
    for row in follow_up_rows(session, campaign, today, province_code):
        yield tuple(neutralise(", ".join(value) if isinstance(value, list) else value) for value in row)


def csv_chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    """UTF-8 with a BOM (so Excel reads the Vietnamese letters), a header, then the rows a thousand at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % CSV_ROWS_PER_CHUNK == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def write_xlsx(
    rows: Iterable[tuple[Any, ...]], target: Path | IO[bytes], rows_per_sheet: int = XLSX_ROWS_PER_SHEET
) -> None:
    """A workbook written row by row (openpyxl's write-only mode keeps memory flat); every sheet starts with the
    header, and a full sheet goes on in the next one."""
    workbook = Workbook(write_only=True)
    sheet = None
    for index, row in enumerate(rows):
        if index % (rows_per_sheet - 1) == 0:
            sheet = _new_sheet(workbook)
        sheet.append(row)
    if sheet is None:
        _new_sheet(workbook)
    workbook.save(target)


def _new_sheet(workbook: Workbook) -> Any:
    sheet = workbook.create_sheet(f"follow-up {len(workbook.worksheets) + 1}")
    sheet.append(COLUMNS)
    return sheet
