"""Spreadsheets in and out, safely: the import limits, text cells that never become formulas, and reading an
uploaded .xlsx only after checking it (docs/security.md, "Limits" and "Spreadsheet cells").

**Out.** Every text cell of an Excel or CSV export goes through `xlsx_value` / `csv_value`: a text that a
spreadsheet would read as a formula (it starts with = + - @, their full-width forms ＝＋－＠ — possibly after
spaces — or with a tab or carriage return; OWASP "CSV injection") gets one apostrophe in front, and
`append_row` stores every text cell with the string data type, so openpyxl never writes a formula. Numbers,
dates and booleans are written as they are (a negative number stays a number).

**Back in.** An importer calls `unescape_text` on every text cell: it removes exactly that apostrophe, so an
export re-imported gives back the original text. The rule is a bijection: `escape_text` adds an apostrophe to a
text that matches `'*` (any apostrophes) followed by a formula start, and `unescape_text` removes the first
character of a text that is an apostrophe followed by such a text, and leaves every other text alone. So `=x`
goes out as `'=x`, a text that really begins with an apostrophe, `'=x`, goes out as `''=x`, and both come back
as they were; `'Tis` is not touched either way. What an .xlsx cannot hold is lost: control characters other
than tab, line feed and carriage return (XML 1.0) are dropped, and openpyxl cuts a text to Excel's 32,767
characters.

**Limits.** `LIMITS` holds the defaults (each overridable in settings.py or by the environment variable of the
same name); read them with `limit(name)`. `read_xlsx` checks, each step only if the one before passed: the
file's size; its zip directory (member count, declared uncompressed bytes: a zip bomb is refused unread, and
Python's zipfile never inflates a member beyond its declared size); the first sheet's declared extent and its
row and cell tags, counted in the raw XML; then it parses the rows one at a time, refusing a row beyond the limit
or a cell too long. openpyxl parses with defusedxml (checked at import; the server does not start without it):
a DOCTYPE with entities is refused with its own message, any other unreadable file with the usual one.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

__all__ = ["LIMITS", "limit", "escape_text", "unescape_text", "xlsx_value", "csv_value", "append_row",
           "read_xlsx", "SheetRefused", "file_size", "mib", "message"]

MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# The one place for the import limits; docs/security.md "Limits" lists them. The request-body limit of the
# web server and Django (a 413 before any view runs) is separate and applies first.
LIMITS = {
    # .xlsx imports of every record kind (core/registry/io.py)
    "TIANMU_IMPORT_MAX_BYTES": _env_int("TIANMU_IMPORT_MAX_BYTES", 10 * MiB),
    "TIANMU_IMPORT_MAX_UNCOMPRESSED_BYTES": _env_int("TIANMU_IMPORT_MAX_UNCOMPRESSED_BYTES", 50 * MiB),
    "TIANMU_IMPORT_MAX_ZIP_MEMBERS": _env_int("TIANMU_IMPORT_MAX_ZIP_MEMBERS", 500),
    "TIANMU_IMPORT_MAX_ROWS": _env_int("TIANMU_IMPORT_MAX_ROWS", 20_000),  # below the header row
    "TIANMU_IMPORT_MAX_COLUMNS": _env_int("TIANMU_IMPORT_MAX_COLUMNS", 100),
    "TIANMU_IMPORT_MAX_CELL_CHARS": _env_int("TIANMU_IMPORT_MAX_CELL_CHARS", 32_767),  # Excel's own limit
    # Every import report (xlsx and CSV): the first N problems are listed, all are counted.
    "TIANMU_IMPORT_MAX_ERRORS": _env_int("TIANMU_IMPORT_MAX_ERRORS", 200),
    # CSV history of sensor readings (sensing/services/imports.py)
    "TIANMU_CSV_IMPORT_MAX_BYTES": _env_int("TIANMU_CSV_IMPORT_MAX_BYTES", 20 * MiB),
    "TIANMU_CSV_IMPORT_MAX_ROWS": _env_int("TIANMU_CSV_IMPORT_MAX_ROWS", 200_000),
    "TIANMU_CSV_IMPORT_MAX_LINE_CHARS": _env_int("TIANMU_CSV_IMPORT_MAX_LINE_CHARS", 1_000),
}


def limit(name: str) -> int:
    """An import limit: settings.py (or the environment) first, then the default in LIMITS."""
    from .plugins import setting

    return int(setting(name, LIMITS[name]))


def mib(n: int) -> str:
    return f"{n / MiB:g}"


def message(text, **params):
    """A translatable message with %-parameters that stays lazy, so reports render it in both languages
    (`lazy_text % params` would fix the active language at once)."""
    return lazy(lambda: str(text) % params, str)()


# ------------------------------------------------------------------------------------------------ cells out

ESCAPE = "'"
# A formula start, after any apostrophes: = + - @ (or full-width), possibly after spaces; or a tab or CR.
_FORMULA = re.compile(r"'*(?:\s*[=+\-@＝＋－＠]|[\t\r])")
# Characters XML 1.0 cannot hold (openpyxl refuses them with IllegalCharacterError).
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def escape_text(text: str) -> str:
    """The text as a spreadsheet cell that is never a formula: an apostrophe in front when needed."""
    return ESCAPE + text if _FORMULA.match(text) else text


def unescape_text(text: str) -> str:
    """The inverse of escape_text: remove the one apostrophe it added, and nothing else."""
    return text[1:] if text.startswith(ESCAPE) and _FORMULA.match(text, 1) else text


def xlsx_value(value):
    """A value for an .xlsx cell: text escaped and stripped of characters XML cannot hold; others as they are."""
    if isinstance(value, str):
        return escape_text(_ILLEGAL.sub("", value))
    return value


def csv_value(value):
    """A value for a CSV export cell (csv.writer quotes separators and quotes): text escaped."""
    if isinstance(value, str):
        return escape_text(value)
    return value


def append_row(ws, values) -> None:
    """Append a row to an openpyxl worksheet (normal or write-only) with every text cell stored as text."""
    from openpyxl.cell import WriteOnlyCell  # a plain Cell; append() places it in the row

    cells = []
    for value in values:
        cell = WriteOnlyCell(ws, value=xlsx_value(value))
        if isinstance(cell.value, str):
            cell.data_type = "s"
        cells.append(cell)
    ws.append(cells)


# ------------------------------------------------------------------------------------------------ xlsx in

class SheetRefused(Exception):
    """An upload refused before or while reading it: one file-level problem for the import report (with the
    row and column when it is about one cell)."""

    def __init__(self, message, row: int | None = None, column: str | None = None):
        super().__init__(str(message))
        self.message, self.row, self.column = message, row, column


UNREADABLE = _("无法读取文件:请上传 Excel(.xlsx)文件")


def _check_defused() -> None:
    from openpyxl import DEFUSEDXML

    if not DEFUSEDXML:
        raise ImproperlyConfigured("openpyxl must parse with defusedxml: install defusedxml and do not set "
                                   "OPENPYXL_DEFUSEDXML=False")


_check_defused()


def file_size(fileobj) -> int:
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    pos = fileobj.tell()
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(pos)
    return size


def _declared_members(fileobj, size: int) -> int | None:
    """The member count the zip's end record (or its zip64 end record) declares, read before Python builds the
    whole directory in memory; None when there is none (not a zip: zipfile decides)."""
    tail_len = min(size, 22 + 65_535)
    fileobj.seek(size - tail_len)
    tail = fileobj.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    total = struct.unpack("<H", tail[at + 10:at + 12])[0]
    if total != 0xFFFF:
        return total
    # 0xFFFF: the count is in the zip64 end record, which the 20-byte locator before the end record points to.
    if at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
        return None
    offset = struct.unpack("<Q", tail[at - 12:at - 4])[0]
    if offset + 56 > size:
        return None
    fileobj.seek(offset)
    record = fileobj.read(56)
    if record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack("<Q", record[32:40])[0]


def _check_zip(fileobj, size: int) -> None:
    max_members = limit("TIANMU_IMPORT_MAX_ZIP_MEMBERS")
    declared = _declared_members(fileobj, size)
    if declared is not None and declared > max_members:
        raise SheetRefused(message(_("文件包含 %(n)s 个压缩成员,最多允许 %(max)s 个"), n=declared, max=max_members))
    fileobj.seek(0)
    try:
        with zipfile.ZipFile(fileobj) as zf:
            infos = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - not a zip, a truncated one, an unsupported feature: unreadable
        raise SheetRefused(UNREADABLE) from exc
    if len(infos) > max_members:
        raise SheetRefused(message(_("文件包含 %(n)s 个压缩成员,最多允许 %(max)s 个"), n=len(infos), max=max_members))
    total = sum(info.file_size for info in infos)
    max_total = limit("TIANMU_IMPORT_MAX_UNCOMPRESSED_BYTES")
    if total > max_total:
        raise SheetRefused(message(_("文件解压后为 %(size)s MiB,超过 %(max)s MiB 的上限"),
                                   size=f"{total / MiB:.1f}", max=mib(max_total)))


def _caused_by(exc: BaseException, kind: type) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


# A row or cell start tag (any namespace prefix); a declared extent. Neither can occur in text (`<` is escaped).
_ROW_OR_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,30}:)?(row|c)[\s/>]")
_DIMENSION = re.compile(rb'<(?:[A-Za-z_][\w.-]{0,30}:)?dimension\s+ref="([A-Z0-9:$]{1,40})"')
_SHEET_DATA = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,30}:)?sheetData[\s/>]")
_TAG_MAX = 128  # longer than any match of the three


def _scan_sheet(archive, path: str, max_rows: int, max_cols: int) -> None:
    """Refuse a sheet by its declared extent and by counting its row tags and each row's cell tags in the raw XML
    (regular expressions over the inflated stream: no parser, no cell objects), before openpyxl reads a row."""
    from openpyxl.utils.cell import range_boundaries

    too_many_rows = message(_("表格超过 %(max)s 行(不含标题行),请分批导入"), max=max_rows - 1)
    too_many_cols = message(_("表格超过 %(max)s 列"), max=max_cols)
    rows = cells = 0
    head_checked = eof = False
    buf = b""
    with archive.open(path) as fh:
        while not eof:
            chunk = fh.read(1 << 20)
            eof = not chunk
            buf += chunk
            if not head_checked:
                data_at = _SHEET_DATA.search(buf)
                dim = _DIMENSION.search(buf, 0, data_at.start() if data_at else len(buf))
                if dim is not None:
                    try:
                        _c, _r, dim_cols, dim_rows = range_boundaries(dim.group(1).decode().replace("$", ""))
                    except (TypeError, ValueError):
                        dim_cols = dim_rows = None
                    if (dim_rows or 0) > max_rows:
                        raise SheetRefused(too_many_rows)
                    if (dim_cols or 0) > max_cols:
                        raise SheetRefused(too_many_cols)
                head_checked = data_at is not None or eof
            # A tag starting before `end` lies wholly in buf; the rest is looked at with the next chunk.
            end = len(buf) if eof else len(buf) - _TAG_MAX
            for match in _ROW_OR_CELL.finditer(buf):
                if match.start() >= end:
                    break
                if match.group(1) == b"row":
                    rows, cells = rows + 1, 0
                    if rows > max_rows:
                        raise SheetRefused(too_many_rows)
                else:
                    cells += 1
                    if cells > max_cols:
                        raise SheetRefused(too_many_cols)
            buf = buf[max(end, 0):]


def read_xlsx(fileobj) -> list[tuple]:
    """The first sheet's rows (the header first) as tuples of values without trailing empty cells, within the
    limits; raises SheetRefused with the reason.

    In order, each step only if the one before passed: the file's size; its zip directory (member count,
    declared uncompressed bytes); the workbook's manifest and sheet list; the first sheet's declared extent and
    its row and cell tags, counted in the raw XML; the shared strings and styles; then the rows, parsed one at a
    time (openpyxl's WorkSheetParser: openpyxl's own read-only worksheet would first parse a sheet without a
    <dimension> completely to size it, and every other sheet of the workbook too), refusing a row beyond the
    limit or a cell too long."""
    from defusedxml import DefusedXmlException
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._reader import WorkSheetParser

    size = file_size(fileobj)
    max_bytes = limit("TIANMU_IMPORT_MAX_BYTES")
    if size > max_bytes:
        raise SheetRefused(message(_("文件为 %(size)s MiB,超过 %(max)s MiB 的上限"), size=f"{size / MiB:.1f}",
                                   max=mib(max_bytes)))
    _check_zip(fileobj, size)
    fileobj.seek(0)
    max_rows = limit("TIANMU_IMPORT_MAX_ROWS") + 1  # with the header
    max_cols = limit("TIANMU_IMPORT_MAX_COLUMNS")
    max_chars = limit("TIANMU_IMPORT_MAX_CELL_CHARS")
    reader = None
    try:
        reader = ExcelReader(fileobj, read_only=True, data_only=True, keep_links=False)
        reader.read_manifest()
        reader.read_workbook()
        path = next((rel.target for _sheet, rel in reader.parser.find_sheets()
                     if rel.target in reader.valid_files and "chartsheet" not in rel.Type), None)
        if path is None:
            raise SheetRefused(UNREADABLE)
        _scan_sheet(reader.archive, path, max_rows, max_cols)
        reader.read_strings()
        apply_stylesheet(reader.archive, reader.wb)
        wb = reader.wb
        out: list[tuple] = []
        with reader.archive.open(path) as src:
            parser = WorkSheetParser(src, reader.shared_strings, data_only=True, epoch=wb.epoch,
                                     date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)
            for rownum, cells in parser.parse():
                if rownum > max_rows:
                    raise SheetRefused(message(_("表格超过 %(max)s 行(不含标题行),请分批导入"), max=max_rows - 1))
                if rownum <= len(out):  # out of order: openpyxl's reader skips it too
                    continue
                out.extend(() for _ in range(len(out) + 1, rownum))  # rows the sheet leaves out
                values = {}
                for cell in cells:
                    value, col = cell["value"], cell["column"]
                    if value is None or value == "":
                        continue
                    if col > max_cols:
                        raise SheetRefused(message(_("表格超过 %(max)s 列"), max=max_cols))
                    if isinstance(value, str) and len(value) > max_chars:
                        raise SheetRefused(message(_("单元格文字超过 %(max)s 个字符"), max=max_chars), row=rownum,
                                           column=get_column_letter(col))
                    values[col] = value
                out.append(tuple(values.get(i) for i in range(1, max(values, default=0) + 1)))
        return out
    except SheetRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is the same problem to the user
        if _caused_by(exc, DefusedXmlException):
            raise SheetRefused(_("文件含有不允许的 XML 声明(DOCTYPE/实体),请用 Excel 另存为 .xlsx 后再上传")) from exc
        raise SheetRefused(UNREADABLE) from exc
    finally:
        if reader is not None:
            reader.archive.close()
