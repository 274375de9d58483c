"""Reading F1 list files (CSV or XLSX) row by row, with caps that no file can get around.

Lists arrive from anywhere, so a file is distrusted until read: an XLSX is a zip whose sizes and compression ratios
are checked before any part of it is parsed; its sheet is read as the XML holds it (the declared dimension is never
trusted, gaps are not filled in, each row is freed once read); a CSV is decoded in full before any row is parsed;
every cell is capped in length and every row in width. Whatever breaks a cap refuses the whole file with the reason.
"""

import codecs
import csv
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._reader import ROW_TAG, WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from bot.vntext import fold, nfc

SHEET_DATA_TAG = f"{{{SHEET_MAIN_NS}}}sheetData"
MAX_COLUMNS = 200  # F1 templates have 10 to 60 columns; a value further right is not a list's
SMALL_ZIP_PART = 1 << 20  # tiny XML parts compress far beyond any ratio and cannot hurt: only larger ones are checked
CHUNK_CHARS = 1 << 20
EXACT_FLOATS = 2**53  # past this a number cell has lost digits (an 18-digit id): it stays a float, never a number
# What Windows-1258 text in Vietnamese is made of beyond ASCII: its letters, tone marks and the punctuation Word and
# Excel type. Another encoding read as 1258 (Shift-JIS, a binary file) decodes to symbols outside this set.
VIETNAMESE_1258 = set("ÀÁÂĂÈÉÊÌÍÒÓÔƠÙÚƯÝĐàáâăèéêìíòóôơùúưýđ\u0300\u0301\u0303\u0309\u0323‘’“”–—…•°·«»\u00a0")


class UnusableFile(ValueError):
    """The file cannot be imported at all (format, caps, no phone column, empty); nothing was stored."""


@dataclass(frozen=True)
class ReadLimits:
    """The caps a file must fit (the API and CLI take them from settings: OUTREACH_IMPORT_*)."""

    max_rows: int = 200_000
    max_cell_chars: int = 1_000
    max_unpacked_bytes: int = 256 << 20
    max_compression_ratio: int = 100

    @classmethod
    def from_settings(cls, settings: Any) -> "ReadLimits":
        return cls(
            settings.import_max_rows,
            settings.import_max_cell_chars,
            settings.import_max_unpacked_bytes,
            settings.import_max_compression_ratio,
        )


def header_key(text: Any) -> str:
    """A header or a word as a plain key: no accents, case or punctuation (no synonyms: "doses" stays "doses")."""
    return re.sub(r"[^a-z0-9]+", " ", fold(str(text or "")).lower()).strip()


def read_table(path: Path, limits: ReadLimits) -> Iterator[tuple[int, list[Any]]]:
    """(line number, cells) for every row of the file's first sheet that holds something, within `limits`."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path, limits)
    elif suffix in (".csv", ".txt", ".tsv"):
        rows = _csv_rows(path, limits)
    else:
        raise UnusableFile(f"{path.name}: unsupported format; give a .csv or .xlsx file")
    for line, row in rows:
        width = len(row)
        while width and row[width - 1] in (None, ""):  # the empty cells of a spreadsheet's used range do not count
            width -= 1
        if width > MAX_COLUMNS:
            raise _too_wide(line, width)
        cells = [_cell(row[i], line, i + 1, limits.max_cell_chars) for i in range(width)]
        if any(c not in (None, "") for c in cells):
            yield line, cells


def _cell(value: Any, line: int, column: int, max_chars: int) -> Any:
    if isinstance(value, str):
        if len(value) > max_chars:
            raise UnusableFile(
                f"line {line}, column {_column(column)}: a cell of {len(value):,} characters; a cell "
                f"may hold at most {max_chars:,}"
            )
        value = value.strip()
        return value if value.isascii() else nfc(value)  # NFC leaves ASCII as it is: most cells skip the work
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_FLOATS:
        value = int(value)  # Excel keeps phones and years as numbers: 912345678.0
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _too_wide(line: int, column: int) -> UnusableFile:
    return UnusableFile(
        f"line {line} has a value in column {_column(column)}; a list has at most {MAX_COLUMNS} columns"
    )


def _column(number: int) -> str:
    return get_column_letter(min(number, 18278))  # the last column a letter name exists for (ZZZ)


# XLSX


def _xlsx_rows(path: Path, limits: ReadLimits) -> Iterator[tuple[int, list[Any]]]:
    _check_zip(path, limits)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except MemoryError:
        raise
    except Exception as error:  # openpyxl raises many kinds for a file that is not a workbook
        raise UnusableFile(f"{path.name} is not a readable XLSX workbook ({error.__class__.__name__})") from None
    try:
        if not workbook.worksheets:
            raise UnusableFile(f"{path.name} has no worksheet")
        yield from _sheet_rows(workbook.worksheets[0], path.name)
    finally:
        workbook.close()


def _check_zip(path: Path, limits: ReadLimits) -> None:
    """Refuse a zip bomb from its directory alone; zipfile never inflates a part beyond the size it declares."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UnusableFile(f"{path.name} is not a readable XLSX workbook (not a zip archive)") from None
    unpacked = sum(part.file_size for part in parts)
    if unpacked > limits.max_unpacked_bytes:
        raise UnusableFile(
            f"{path.name} unpacks to {unpacked >> 20:,} MB; an XLSX list may unpack to at most "
            f"{limits.max_unpacked_bytes >> 20:,} MB (split the list)"
        )
    for part in parts:
        if part.file_size > SMALL_ZIP_PART and part.file_size > limits.max_compression_ratio * part.compress_size:
            ratio = part.file_size // max(part.compress_size, 1)
            raise UnusableFile(
                f"{path.name}: its part {part.filename[:100]} is compressed {ratio:,} to 1 (a zip "
                f"bomb?); a spreadsheet is at most {limits.max_compression_ratio} to 1"
            )


def _sheet_rows(sheet: Any, name: str) -> Iterator[tuple[int, list[Any]]]:
    """The rows the sheet's XML holds, as openpyxl reads cells (shared strings, dates), but nothing else of it.

    openpyxl's own row iterator pads every row to the declared dimension and yields empty rows up to it: a sheet
    declaring A1:XFD1048576 takes gigabytes. Here a row is as wide as its last value and absent rows are absent.
    """
    workbook = sheet.parent
    parser = WorkSheetParser(
        None,
        sheet._shared_strings,
        data_only=True,
        epoch=workbook.epoch,
        date_formats=workbook._date_formats,
        timedelta_formats=workbook._timedelta_formats,
    )
    with sheet._get_source() as source:
        try:
            for element in _row_elements(source):
                line, cells = parser.parse_row(element)
                yield line, _values(line, cells)
        except (UnusableFile, MemoryError):
            raise
        except Exception as error:  # malformed XML, a bad cell reference, a shared string that is not there...
            raise UnusableFile(f"{name}: the sheet cannot be read ({error.__class__.__name__})") from None


def _row_elements(source: IO[bytes]) -> Iterator[Any]:
    """Each <row> of <sheetData> once parsed; every element is dropped from the tree once read, so memory stays flat."""
    open_elements = []
    for event, element in iterparse(source, events=("start", "end")):
        if event == "start":
            open_elements.append(element)
            continue
        open_elements.pop()
        if element.tag == ROW_TAG:
            yield element
        elif element.tag == SHEET_DATA_TAG:
            return  # every cell is read: what follows is formatting
        if 0 < len(open_elements) <= 2:  # a row of sheetData, or a part of the sheet: read, so dropped
            open_elements[-1].clear()


def _values(line: int, cells: list[dict[str, Any]]) -> list[Any]:
    present = [cell for cell in cells if cell["value"] is not None]
    width = max((cell["column"] for cell in present), default=0)
    if width > MAX_COLUMNS:  # before the row is made: a cell reference may name column 10**9
        raise _too_wide(line, width)
    row = [None] * width
    for cell in present:
        row[cell["column"] - 1] = cell["value"]
    return row


# CSV


def _csv_rows(path: Path, limits: ReadLimits) -> Iterator[tuple[int, list[Any]]]:
    encoding = _text_encoding(path)
    max_line = limits.max_cell_chars * MAX_COLUMNS
    with path.open(encoding=encoding, newline="") as text:
        try:
            dialect = csv.Sniffer().sniff(text.read(8192), delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        text.seek(0)
        reader = csv.reader(_bounded_lines(text, max_line, path.name), dialect)
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as error:
            raise UnusableFile(f"{path.name}, line {reader.line_num}: {error}") from None


def _bounded_lines(text: IO[str], max_chars: int, name: str) -> Iterator[str]:
    number = 0
    while line := text.readline(max_chars + 1):
        number += 1
        if len(line) > max_chars:
            raise UnusableFile(f"{name}, line {number}: longer than {max_chars:,} characters")
        yield line


def _text_encoding(path: Path) -> str:
    """The file's encoding, checked over the whole file before any row is parsed: UTF-8 (with or without a BOM),
    UTF-16 with a BOM (Excel's "Unicode text") or Windows-1258 (Vietnamese); anything else is refused here."""
    with path.open("rb") as raw:
        head = raw.read(4)
    if head.startswith(b"PK\x03\x04"):
        raise UnusableFile(f"{path.name} is a zip archive (an XLSX workbook?), not CSV text; give it its .xlsx name")
    candidates = ["utf-16"] if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else ["utf-8-sig", "cp1258"]
    for encoding in candidates:
        problem = _decoding_problem(path, encoding)
        if problem is None:
            return encoding
        if problem == "binary":
            raise UnusableFile(f"{path.name} holds binary data, not CSV text")
    raise UnusableFile(
        f"{path.name} is not text in UTF-8, UTF-16 or Windows-1258 (binary data, or another "
        "encoding); save it from Excel as 'CSV UTF-8'"
    )


def _decoding_problem(path: Path, encoding: str) -> str | None:
    """None when the whole file decodes as plausible text; 'binary' (control characters) or 'undecodable'."""
    decoder = codecs.getincrementaldecoder(encoding)()
    foreign = non_ascii = 0
    with path.open("rb") as raw:
        while True:
            chunk = raw.read(CHUNK_CHARS)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                return "undecodable"
            if any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in set(text)):
                return "binary"
            if encoding == "cp1258":  # every byte decodes to something: is it Vietnamese?
                beyond = [c for c in text if c > "\x7f"]
                non_ascii += len(beyond)
                foreign += sum(1 for c in beyond if c not in VIETNAMESE_1258)
            if not chunk:
                break
    return "undecodable" if foreign > max(3, non_ascii // 10) else None
