"""The responsible person as a record kind: Excel import with every bad row listed (unknown superior refused per
row), the API's per-field errors, personal data masked for roles that do not call people."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from tianmu.comms.kinds import RecipientKind
from tianmu.comms.models import Recipient
from tianmu.core.registry.io import _header, export_xlsx, import_xlsx
from tianmu.core.registry.queries import visible

pytestmark = pytest.mark.django_db


def sheet(rows: list[dict]) -> io.BytesIO:
    names = RecipientKind.editable_fields()
    wb = Workbook()
    wb.active.append([_header(RecipientKind, n) for n in names])
    for row in rows:
        wb.active.append([row.get(n) for n in names])
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


def test_import_lists_every_bad_row_and_writes_nothing(world, people):
    admin = world["users"]["admin"]
    good = {"code": "ZR-N1", "name": "赵立新", "region": "330112001001", "duty": "网格员", "mobile": "19901129999",
            "superior": "ZR-A", "channels": "sms、dingtalk", "hazard_types": "typhoon,rainstorm", "min_level": "橙色"}
    rows = [good,
            {**good, "code": "ZR-N2", "superior": "ZR-NOBODY"},
            {**good, "code": "ZR-N3", "mobile": "12345"},
            {**good, "code": "ZR-N4", "channels": "pager"},
            {**good, "code": "ZR-N5", "hazard_types": "meteor", "watch_code": "999999"},
            {**good, "code": "ZR-N6", "account": "no-such-user"}]
    report = import_xlsx(admin, RecipientKind, sheet(rows), dry_run=True)
    bad = {(e["row"], e["field"]) for e in report.errors}
    assert {(3, "superior"), (4, "mobile"), (5, "channels"), (6, "hazard_types"), (6, "watch_code"),
            (7, "account")} <= bad
    assert not any(row == 2 for row, _f in bad)
    assert report.error_count >= 6
    assert not Recipient.objects.filter(code__startswith="ZR-N").exists()
    report = import_xlsx(admin, RecipientKind, sheet([good]), dry_run=False)
    assert report.error_count == 0
    made = Recipient.objects.get(code="ZR-N1")
    assert made.superior == people["town_a"] and made.channels == "sms,dingtalk" and made.min_level == "orange"


def test_town_staff_cannot_name_a_superior_outside_their_town(world, people):
    row = {"code": "ZR-N7", "name": "钱多", "region": "330112001001", "duty": "grid_worker", "superior": "ZR-B"}
    report = import_xlsx(world["users"]["town_staff"], RecipientKind, sheet([row]), dry_run=True)
    assert [(e["row"], e["field"]) for e in report.errors] == [(2, "superior")]


def test_api_per_field_errors(world, people, client):
    client.force_login(world["users"]["commander"])
    r = client.post("/api/v1/recipients/", {"code": "ZR-X", "name": "孙", "region": "330112001", "mobile": "abc",
                                            "channels": "fax", "superior": "ZR-NONE"}, content_type="application/json")
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"mobile", "channels", "superior"} <= fields
    assert all(e["message"] and e["message_en"] for e in r.json()["errors"])
    r = client.post("/api/v1/comms/dispatches", {"title": "", "text": "t", "level": "purple", "regions": ["1"]},
                    content_type="application/json")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = client.post("/api/v1/comms/dispatches", {"title": "", "text": "t", "regions": ["1"]},
                    content_type="application/json")
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"title", "regions"}
    r = client.post("/api/v1/comms/dispatches", {"title": "t", "text": "t" * 1001, "regions": ["330112001"]},
                    content_type="application/json")
    assert r.status_code == 422


def test_phones_masked_for_roles_that_do_not_call_people(world, people, client):
    client.force_login(world["users"]["leader"])
    page = client.get("/r/recipients/").content.decode()
    assert "199****0002" in page and "19901120002" not in page
    api = client.get("/api/v1/recipients/").json()["results"]
    assert api and all("****" in r["mobile"] for r in api if r["mobile"])
    detail = client.get(f"/api/v1/recipients/{people['town_a'].pk}").json()
    assert detail["mobile"] == "199****0002"
    assert "19901120002" not in client.get(f"/r/recipients/{people['town_a'].pk}/").content.decode()
    data = client.get("/r/recipients/export.xlsx").content
    cells = [c for row in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True) for c in row]
    assert "19901120002" not in cells and "199****0002" in cells
    client.force_login(world["users"]["town_staff"])
    assert "19901120002" in client.get("/r/recipients/").content.decode()
    assert len(visible(world["users"]["town_staff"], RecipientKind)) == 2
    assert "19901120002" in [c for row in load_workbook(io.BytesIO(export_xlsx(
        visible(world["users"]["town_staff"], RecipientKind), RecipientKind))).active.iter_rows(values_only=True)
        for c in row]
