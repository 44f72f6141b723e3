"""Excel for every kind of record and GeoJSON for placed ones: export what the actor sees; import with a dry
run that lists every bad row and column and writes nothing unless every row passes.

Text cells are written through core/sheets.py (never a formula; an apostrophe before a text a spreadsheet would
take for one) and read back through it (that apostrophe removed), so an export re-imports as it was. Uploads
are checked against the import limits (core/sheets.py `LIMITS`) before they are parsed; a report lists the first
TIANMU_IMPORT_MAX_ERRORS problems and counts all of them."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from ..errors import ScopeError, ServiceError, bilingual
from ..scope import check_role, write_prefix
from ..sheets import SheetRefused, append_row, limit, read_xlsx, unescape_text
from .queries import choice_label
from .services import bulk_create_records, record_snapshot, update_record, validate_record

__all__ = ["export_xlsx", "export_geojson", "template_xlsx", "import_xlsx", "ImportReport"]

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _header(kind, name: str) -> str:
    if name == "region":
        return str(_("区划代码"))
    return str(kind.field(name).verbose_name)


def _header_lookup(kind) -> dict[str, str]:
    """Every accepted spelling of a column header → field name (Chinese, English, or the field name)."""
    table = {}
    for name in kind.editable_fields():
        table[name.lower()] = name
        for lang in ("zh-hans", "en"):
            with translation.override(lang):
                table[_header(kind, name).strip().lower()] = name
                table[str(kind.field(name).verbose_name).strip().lower()] = name
    return table


def _cell(kind, obj, name):
    if name == "region":
        return obj.region.code
    value = getattr(obj, name)
    f = kind.field(name)
    if f.is_relation:
        return getattr(value, "code", None) if value is not None else None
    if f.choices:
        return choice_label(kind, name, value)
    if isinstance(value, bool):
        return str(_("是")) if value else str(_("否"))
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _workbook(kind, rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = str(kind.verbose_name_plural())[:31]
    names = kind.editable_fields()
    append_row(ws, [_header(kind, n) for n in names])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE7F3")
    for row in rows:
        append_row(ws, row)
    for i, name in enumerate(names, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(_header(kind, name)) * 2 + 4))
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_xlsx(qs, kind, masked=frozenset()) -> bytes:
    """The records as a sheet; fields in `masked` (personal data the reader may not see) with their middle hidden."""
    from .kinds import mask

    names = kind.editable_fields()
    return _workbook(kind, ([mask(_cell(kind, obj, n)) if n in masked else _cell(kind, obj, n) for n in names]
                            for obj in qs.iterator(chunk_size=2000)))


def template_xlsx(kind) -> bytes:
    """An empty sheet with the right headers, and a second sheet describing each column."""
    data = _workbook(kind, [])
    wb = load_workbook(io.BytesIO(data))
    ws = wb.create_sheet(str(_("填写说明")))
    append_row(ws, [str(_("列")), str(_("字段")), str(_("必填")), str(_("可选值/说明"))])
    for name in kind.editable_fields():
        f = kind.field(name)
        if name == "region" and kind.placed():
            note, required = str(_("12位村社或9位镇街代码;留空按坐标确定")), str(_("否"))
        elif name == "region":
            note, required = str(_("12位村社或9位镇街代码")), str(_("是"))
        else:
            note = " / ".join(str(lbl) for _v, lbl in f.flatchoices) if f.choices else str(f.help_text or "")
            required = str(_("否")) if (f.blank or f.has_default()) else str(_("是"))
        append_row(ws, [_header(kind, name), name, required, note])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_geojson(qs, kind) -> dict:
    """A placed kind's records as a GeoJSON FeatureCollection of points."""
    if not kind.placed():
        raise ValueError(f"record kind {kind.slug!r} has no point and no GeoJSON")
    names = [n for n in kind.editable_fields() if n not in ("lon", "lat")]
    features = []
    for obj in qs.iterator(chunk_size=2000):
        props = {"id": obj.pk}
        snapshot = record_snapshot(kind, obj)
        for n in names:
            props[n] = snapshot[n]
        props["region_name"] = obj.region.name
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [obj.lon, obj.lat]},
                         "properties": props})
    return {"type": "FeatureCollection", "name": kind.slug, "features": features}


def _json_value(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


@dataclass
class ImportReport:
    """What an import found: each problem with its row (1-based, as Excel shows) and column. `errors` keeps the
    problems of the lowest rows, at most TIANMU_IMPORT_MAX_ERRORS of them (in the order added; sort by row when
    they were added out of order); `error_count` counts every problem."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # rows of existing records whose values are already as the sheet says
    dry_run: bool = True
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    max_errors: int = field(default_factory=lambda: limit("TIANMU_IMPORT_MAX_ERRORS"))

    @property
    def ok(self) -> bool:
        return not self.error_count

    @property
    def truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def add(self, row: int | None, column: str | None, field_name: str | None, message, *, code: str = "",
            name: str = "") -> None:
        """One problem; `code` and `name` are the row's record (so a person finds it in their sheet)."""
        self.error_count += 1
        at = len(self.errors)
        if at >= self.max_errors:
            # Full: keep this problem only if its row comes before the last kept one's (it replaces that).
            rows = [e["row"] or 0 for e in self.errors]
            if not rows or (row or 0) >= max(rows):
                return
            last = max(rows)
            at = rows.index(last)
        text = bilingual(message)
        entry = {"row": row, "column": column, "field": field_name, "message": text["zh"], "message_en": text["en"],
                 "code": code, "name": name}
        if at == len(self.errors):
            self.errors.append(entry)
        else:
            self.errors[at] = entry

    def as_dict(self) -> dict:
        return {"ok": self.ok, "dry_run": self.dry_run, "rows": self.rows, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged, "errors": self.errors,
                "error_count": self.error_count}


def _clean_cell(kind, name, value):
    if isinstance(value, float) and value.is_integer() and (name in ("code", "region") or name in kind.link_fields()):
        return str(int(value))
    if isinstance(value, datetime) and timezone.is_naive(value):
        return timezone.make_aware(value)
    if isinstance(value, str):
        value = unescape_text(value).strip()
    return "" if value is None else value


def import_xlsx(actor, kind, fileobj, *, dry_run: bool = True, update_existing: bool = False) -> ImportReport:
    """Validate every row of an .xlsx upload; write them all in one transaction only if all pass."""
    report = ImportReport(dry_run=dry_run)
    check_role(actor)
    try:
        sheet = read_xlsx(fileobj)
    except SheetRefused as refused:
        report.add(refused.row, refused.column, None, refused.message)
        return report
    rows = iter(sheet)
    header = next(rows, None)
    if not header or all(h in (None, "") for h in header):
        report.add(1, None, None, _("第一行应为列标题"))
        return report
    lookup = _header_lookup(kind)
    columns: dict[int, str] = {}
    for idx, title in enumerate(header):
        if title in (None, ""):
            continue
        name = lookup.get(str(title).strip().lower())
        letter = get_column_letter(idx + 1)
        if name is None:
            report.add(1, letter, None, _("无法识别的列标题:%(title)s") % {"title": title})
        elif name in columns.values():
            report.add(1, letter, name, _("列重复:%(title)s") % {"title": title})
        else:
            columns[idx] = name
    # A placed kind's region may be left out (located from the point); a regional kind's is required.
    required = [n for n in kind.editable_fields() if (n != "region" or not kind.placed())
                and not kind.field(n).blank and not kind.field(n).has_default()]
    for name in required:
        if name not in columns.values():
            report.add(1, None, name, _("缺少必需的列:%(title)s") % {"title": _header(kind, name)})
    if report.errors:
        return report
    letter_of = {name: get_column_letter(idx + 1) for idx, name in columns.items()}
    existing = {}
    if update_existing:
        # Only records the actor may change: a code used outside their scope is refused like any code in use
        # (the service's scope-neutral message), never reported as a record there.
        existing = {o.code: o for o in kind.model.objects.select_related("region")
                    .filter(region__code__startswith=write_prefix(actor))}
    seen_codes: dict[str, int] = {}
    new_objects, updates, unchanged = [], [], 0
    for rownum, values in enumerate(rows, start=2):
        if values is None or all(v in (None, "") for v in values):
            continue
        report.rows += 1
        data = {name: _clean_cell(kind, name, values[idx] if idx < len(values) else None)
                for idx, name in columns.items()}
        code = str(data.get("code", "")).strip()
        who = {"code": code, "name": str(data.get("name", "") or "").strip()[:200]}
        if code in seen_codes:
            report.add(rownum, letter_of.get("code"), "code",
                       _("编码与第 %(row)s 行重复") % {"row": seen_codes[code]}, **who)
            continue
        seen_codes[code] = rownum
        instance = existing.get(code)
        try:
            if instance is not None:
                before = record_snapshot(kind, instance)
                checked = validate_record(actor, kind, dict(data), instance=instance, scope_errors_as_fields=True)
                if record_snapshot(kind, checked) == before:
                    unchanged += 1  # nothing to write: no history entry, no event
                else:
                    updates.append((instance, data))
            else:
                new_objects.append(validate_record(actor, kind, data, scope_errors_as_fields=True))
        except ServiceError as exc:
            for name, msgs in exc.errors.items():
                for msg in msgs:
                    report.add(rownum, letter_of.get(name), None if name == "__all__" else name, msg, **who)
        except ScopeError as exc:
            report.add(rownum, letter_of.get("region"), "region", exc.message, **who)
    if report.errors or dry_run:
        report.created, report.updated, report.unchanged = len(new_objects), len(updates), unchanged
        if report.errors:
            report.created = report.updated = report.unchanged = 0
        return report
    with transaction.atomic():
        report.created = bulk_create_records(actor, kind, new_objects)
        for instance, data in updates:
            fresh = kind.model.objects.select_for_update().get(pk=instance.pk)
            before = record_snapshot(kind, fresh)
            update_record(actor, kind, fresh, data)
            report.updated += int(before != record_snapshot(kind, fresh))
    report.unchanged = unchanged + len(updates) - report.updated
    return report
