"""History from CSV files (`import_readings_csv`): checked row by row, stored only if every row passes;
rules are not evaluated. The file's size, its line length and its row count are checked before any row is
checked (limits TIANMU_CSV_IMPORT_*, core/sheets.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.events import emit
from tianmu.core.registry.io import ImportReport
from tianmu.core.sheets import limit, message, mib

from ..parsing import ParsedReading, Rejection, latest_allowed, parse_item
from .readings import _check, _check_submit_role, _store

__all__ = ["import_readings_csv"]

CSV_HEADERS = {
    "sensor": {"sensor", "sensor_code", "code", "device", "传感器编码", "传感器", "设备编码", "测点编码"},
    "ts": {"ts", "time", "timestamp", "datetime", "时间", "观测时间", "监测时间"},
    "value": {"value", "数值", "值", "监测值", "观测值"},
}


def _decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("csv", data[:1], 0, 1, "not UTF-8 or GB18030")


def _letter(idx: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(idx + 1)


class _Refused(Exception):
    def __init__(self, message, row: int | None = None):
        super().__init__(str(message))
        self.message, self.row = message, row


def _lines(text: str, max_chars: int):
    """The text's lines for csv.reader, refusing a line longer than max_chars."""
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if len(line.rstrip("\r\n")) > max_chars:
            raise _Refused(message(_("此行超过 %(max)s 个字符"), max=max_chars), row=lineno)
        yield line


def _check_limits(text: str) -> None:
    """Refuse, before any row is checked, a file with a line too long or more rows than allowed."""
    max_rows = limit("TIANMU_CSV_IMPORT_MAX_ROWS")
    count = -1  # the header is not a row
    try:
        for values in csv.reader(_lines(text, limit("TIANMU_CSV_IMPORT_MAX_LINE_CHARS"))):
            if any(v.strip() for v in values):
                count += 1
                if count > max_rows:
                    raise _Refused(message(_("文件超过 %(max)s 行(不含标题行),请分批导入"), max=max_rows))
    except csv.Error as exc:
        raise _Refused(_("CSV 格式错误")) from exc


def import_readings_csv(actor, fileobj, *, dry_run: bool = True, now: datetime | None = None) -> ImportReport:
    """History from a CSV file (sensor code, ts, value): a dry run lists every bad row and column; nothing is
    written unless every row passes. Readings already stored are skipped; rules are not evaluated (history)."""
    report = ImportReport(dry_run=dry_run)
    _check_submit_role(actor)
    now = now or timezone.now()
    max_bytes = limit("TIANMU_CSV_IMPORT_MAX_BYTES")
    data = fileobj.read(max_bytes + 1)
    if len(data) > max_bytes:
        report.add(None, None, None, message(_("文件超过 %(max)s MiB 的上限"), max=mib(max_bytes)))
        return report
    try:
        text = _decode_csv(data if isinstance(data, bytes) else data.encode())
        del data
        _check_limits(text)
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
    except (UnicodeDecodeError, csv.Error):
        report.add(None, None, None, _("无法读取文件:请上传 UTF-8 或 GBK 编码的 CSV 文件"))
        return report
    except _Refused as refused:
        report.add(refused.row, None, None, refused.message)
        return report
    if not header or all(not (h or "").strip() for h in header):
        report.add(1, None, None, _("第一行应为列标题"))
        return report
    columns: dict[str, int] = {}
    for idx, title in enumerate(header):
        name = next((n for n, names in CSV_HEADERS.items() if (title or "").strip().lower() in names), None)
        if name is None:
            report.add(1, _letter(idx), None, _("无法识别的列标题:%(title)s") % {"title": title})
        elif name in columns:
            report.add(1, _letter(idx), name, _("列重复:%(title)s") % {"title": title})
        else:
            columns[name] = idx
    for name, label in (("sensor", _("传感器编码")), ("ts", _("时间")), ("value", _("数值"))):
        if name not in columns:
            report.add(1, None, name, _("缺少必需的列:%(title)s") % {"title": label})
    if report.errors:
        return report
    parsed: list[ParsedReading] = []
    latest = latest_allowed(now)
    rownum_of: list[int] = []
    seen: dict[tuple[str, datetime], int] = {}
    try:
        for rownum, values in enumerate(rows, start=2):
            if not any((v or "").strip() for v in values):
                continue
            report.rows += 1
            obj = {name: (values[idx] if idx < len(values) else "") for name, idx in columns.items()}
            item = parse_item(obj, now=now, latest=latest)
            if isinstance(item, Rejection):
                report.add(rownum, _letter(columns.get(item.field, 0)) if item.field in columns else None,
                           item.field, item.message)
                continue
            key = (item.sensor, item.ts)
            if key in seen:
                report.add(rownum, _letter(columns["ts"]), "ts", _("与第 %(row)s 行的传感器和时间重复") % {"row": seen[key]})
                continue
            seen[key] = rownum
            parsed.append(item)
            rownum_of.append(rownum)
    except csv.Error:
        report.add(None, None, None, _("CSV 格式错误"))
        return report
    checked = _check(parsed, actor=actor)
    for pos, r in checked.rejected:
        report.add(rownum_of[pos], _letter(columns[r.field or "sensor"]), r.field, r.message)
    if report.errors or dry_run:
        report.created = 0 if report.errors else len(checked.accepted)
        report.errors.sort(key=lambda e: (e["row"] or 0))
        return report
    with transaction.atomic():
        new = _store(checked.accepted, now)
        report.created = len(new)
        emit("sensing.readings.imported", actor=actor, region=getattr(actor, "region", None), subject="readings",
             payload={"rows": report.rows, "stored": len(new), "skipped": report.rows - len(new)})
    return report
