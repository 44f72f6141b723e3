"""The battery every record kind gets from its declaration: API, pages, import/export, history, scope.

It runs for placed kinds (a point: coordinate checks, bbox/radius, GeoJSON, a map) and for regional kinds
(no point: the region given by code); checks that only make sense for one of them are chosen by
`kind.placed()`, so every test runs for every kind."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import Workbook, load_workbook

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core.models import Event
from tianmu.core.registry.io import export_xlsx, import_xlsx, template_xlsx
from tianmu.core.registry.kinds import kinds
from tianmu.core.registry.queries import visible
from tianmu.core.registry.services import create_record

KINDS = kinds()
ids = [k.slug for k in KINDS]


def test_the_battery_covers_placed_and_regional_kinds():
    # The test settings install a regional kind (core/tests/notices); the registry and sensing kinds are placed.
    assert {k.placed() for k in KINDS} == {True, False}


def api(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_api_create_read_update_delete_with_history(kind, world, client):
    staff = world["users"]["town_staff"]
    api(client, staff)
    body = record_data(kind, world["village_a"], "x")
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["region"] == world["village_a"].code and created["town"] == world["town_a"].code
    rid = created["id"]

    r = client.patch(f"/api/v1/{kind.slug}/{rid}", {"name": "改名后"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["name"] == "改名后"

    history = client.get(f"/api/v1/{kind.slug}/{rid}/history").json()
    assert [h["action"] for h in history] == ["changed", "created"]
    assert history[0]["who"] == str(staff)
    assert history[0]["changes"]["name"] == [body["name"], "改名后"]
    types = list(Event.objects.filter(subject=f"{kind.label()}:{rid}").values_list("type", flat=True))
    assert types == [kind.event_type("created"), kind.event_type("updated")]

    assert client.delete(f"/api/v1/{kind.slug}/{rid}").status_code == 204
    assert not kind.model.objects.filter(pk=rid).exists()
    assert Event.objects.filter(type=kind.event_type("deleted")).count() == 1


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_api_region_is_located_from_coordinates(kind, world, client):
    """A placed record without a region code is located from its point; a regional one needs the code."""
    api(client, world["users"]["commander"])
    body = record_data(kind, world["village_b"], "loc")
    del body["region"]
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    if kind.placed():
        assert r.status_code == 201, r.content
        assert r.json()["region"] == world["village_b"].code
    else:
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["region"]
        assert not kind.model.objects.filter(code=body["code"]).exists()


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_api_rejects_bad_input_with_per_field_messages(kind, world, client):
    api(client, world["users"]["town_staff"])
    before = kind.model.objects.count()
    r = client.post(f"/api/v1/{kind.slug}/", {"name": "", "lon": "abc"}, content_type="application/json")
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert {"field", "message", "message_en"} <= set(errors[0])
    # A placed kind checks the point; a regional kind has none (lon is not one of its fields) and needs its
    # region's code.
    assert any(e["field"] == ("lon" if kind.placed() else "region") for e in errors)

    body = dict(record_data(kind, world["village_a"], "nowhere"), region="330112999999")
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region"
    if not kind.placed():
        assert kind.model.objects.count() == before
        return

    body = record_data(kind, world["village_a"], "bad")
    body["lon"], body["lat"] = body["lat"], body["lon"]  # swapped
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    assert r.status_code == 422
    lon_errors = [e for e in r.json()["errors"] if e["field"] == "lon"]
    assert "填反" in lon_errors[0]["message"] and "swapped" in lon_errors[0]["message_en"].lower()

    body = record_data(kind, world["village_a"], "far", lon=121.5, lat=31.2)  # Shanghai
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    assert r.status_code == 422 and "临安区" in r.json()["errors"][0]["message"]

    body = record_data(kind, world["village_a"], "mismatch", lon=world["village_b"].lon, lat=world["village_b"].lat)
    r = client.post(f"/api/v1/{kind.slug}/", body, content_type="application/json")
    assert r.status_code == 422
    assert kind.model.objects.count() == before


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_api_refuses_writes_outside_scope(kind, world, records, client):
    api(client, world["users"]["town_staff"])
    before = kind.model.objects.count()
    r = client.post(f"/api/v1/{kind.slug}/", record_data(kind, world["village_b"], "out"),
                    content_type="application/json")
    assert r.status_code == 403 and r.json()["message_en"]
    other = records[kind.slug]["b"]
    assert client.patch(f"/api/v1/{kind.slug}/{other.pk}", {"name": "x"},
                        content_type="application/json").status_code == 404
    assert client.delete(f"/api/v1/{kind.slug}/{other.pk}").status_code == 404
    assert kind.model.objects.count() == before
    other.refresh_from_db()
    assert other.name != "x"

    api(client, world["users"]["leader"])
    r = client.patch(f"/api/v1/{kind.slug}/{other.pk}", {"name": "x"}, content_type="application/json")
    assert r.status_code == 403


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_api_list_filters(kind, world, records, client):
    api(client, world["users"]["leader"])
    a, b = records[kind.slug]["a"], records[kind.slug]["b"]

    def codes(**params):
        r = client.get(f"/api/v1/{kind.slug}/", params)
        assert r.status_code == 200, r.content
        return {row["code"] for row in r.json()["results"]}

    assert codes() == {a.code, b.code}
    assert codes(region=world["town_b"].code) == {b.code}
    assert codes(q=OUTSIDE_MARK) == {b.code}
    for name in kind.filter_fields:
        value = getattr(a, name)
        assert a.code in codes(**{name: str(value).lower()})
    stats = client.get(f"/api/v1/{kind.slug}/stats").json()
    assert stats["total"] == 2 and {t["code"] for t in stats["by_town"]} == {"330112001", "330112002"}
    if kind.type_field:
        assert sum(t["count"] for t in stats["by_type"]) == 2
    if kind.placed():
        assert codes(bbox=f"{a.lon - 0.01},{a.lat - 0.01},{a.lon + 0.01},{a.lat + 0.01}") == {a.code}
        assert codes(lon=a.lon, lat=a.lat, radius=500) == {a.code}
        assert codes(lon=a.lon, lat=a.lat, radius=30_000) == {a.code, b.code}
        assert client.get(f"/api/v1/{kind.slug}/", {"bbox": "1,2"}).status_code == 422
        assert client.get(f"/api/v1/{kind.slug}/", {"lon": 119.3, "lat": 30.1}).status_code == 422
        geo = client.get(f"/api/v1/{kind.slug}/geojson").json()
        assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 2
    else:
        # No point: spatial filters are refused, and there is no GeoJSON.
        for params in ({"bbox": "119,30,120,31"}, {"lon": 119.3, "lat": 30.1, "radius": 500}):
            r = client.get(f"/api/v1/{kind.slug}/", params)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] in ("bbox", "radius")
        assert client.get(f"/api/v1/{kind.slug}/geojson").status_code == 404

    api(client, world["users"]["town_staff"])
    assert codes() == {a.code}
    assert client.get(f"/api/v1/{kind.slug}/{b.pk}").status_code == 404


def _xlsx(rows: list[list]) -> io.BytesIO:
    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_excel_round_trip_and_dry_run(kind, world, records):
    staff = world["users"]["town_staff"]
    # Export what town A sees, change the codes, and import it back as new records.
    data = export_xlsx(visible(staff, kind), kind)
    ws = load_workbook(io.BytesIO(data)).active
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert len(rows) == 2 and OUTSIDE_MARK not in json.dumps(rows, ensure_ascii=False, default=str)
    rows[1][0] = f"{rows[1][0]}-copy"
    count = kind.model.objects.count()
    report = import_xlsx(staff, kind, _xlsx(rows), dry_run=True)
    assert report.ok and report.created == 1 and kind.model.objects.count() == count
    report = import_xlsx(staff, kind, _xlsx(rows), dry_run=False)
    assert report.ok and report.created == 1 and kind.model.objects.count() == count + 1
    new = kind.model.objects.get(code=rows[1][0])
    assert new.history.first().history_user == staff
    assert Event.objects.filter(type=kind.event_type("imported")).exists()
    # The template's headers are accepted as they are.
    header = [c for c in next(load_workbook(io.BytesIO(template_xlsx(kind))).active.iter_rows(values_only=True))]
    assert header == rows[0]


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_excel_import_lists_every_bad_row_and_writes_nothing(kind, world, records):
    staff = world["users"]["town_staff"]
    header = export_xlsx(visible(staff, kind).none(), kind)
    titles = list(next(load_workbook(io.BytesIO(header)).active.iter_rows(values_only=True)))
    col = {name: i for i, name in enumerate(kind.editable_fields())}

    def row(suffix, where=None, **over):
        data = {**record_data(kind, where or world["village_a"], suffix), **over}
        out = [None] * len(titles)
        for name, value in data.items():
            out[col[name]] = value
        return out

    good = row("ok")
    if kind.placed():
        swapped = row("swap")
        swapped[col["lon"]], swapped[col["lat"]] = swapped[col["lat"]], swapped[col["lon"]]
        outside = row("out", lon=121.47, lat=31.23)
    else:
        # Rows 3 and 4: no such region, and no region at all (a regional record's region is required).
        swapped, outside = row("nowhere", region="330112999999"), row("blank", region=None)
    duplicate = row("ok")
    foreign = row("foreign", world["village_b"])
    existing = row("exists", code=records[kind.slug]["a"].code)
    count = kind.model.objects.count()
    report = import_xlsx(staff, kind, _xlsx([titles, good, swapped, outside, duplicate, foreign, existing]),
                         dry_run=False)
    assert not report.ok and kind.model.objects.count() == count
    by_row = {}
    for e in report.errors:
        by_row.setdefault(e["row"], []).append(e)
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if kind.placed():
        assert {e["column"] for e in by_row[3]} == {letter[col["lon"]]} and "填反" in by_row[3][0]["message"]
        assert "临安区" in by_row[4][0]["message"]
    else:
        assert {e["column"] for e in by_row[3]} == {letter[col["region"]]}
        assert {e["column"] for e in by_row[4]} == {letter[col["region"]]} and "区划代码" in by_row[4][0]["message"]
    assert by_row[5][0]["field"] == "code" and "2" in by_row[5][0]["message"]
    assert by_row[6][0]["field"] == "region" and by_row[6][0]["column"] == letter[col["region"]]
    assert by_row[7][0]["field"] == "code"
    assert 2 not in by_row
    assert all(e["message_en"] for e in report.errors)
    # Each problem names the row's record, so a person finds it in their sheet.
    assert by_row[6][0]["code"] == foreign[col["code"]] and by_row[6][0]["name"] == foreign[col["name"]]
    assert by_row[5][0]["code"] == good[col["code"]]


def test_excel_import_reports_malformed_files_and_columns(world):
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("shelters")
    staff = world["users"]["town_staff"]
    report = import_xlsx(staff, kind, io.BytesIO(b"not a spreadsheet"), dry_run=True)
    assert not report.ok and report.errors[0]["row"] is None
    report = import_xlsx(staff, kind, _xlsx([["编码", "名称", "颜色"]]), dry_run=True)
    messages = [e["message"] for e in report.errors]
    assert any("颜色" in m for m in messages) and any("容纳人数" in m for m in messages)
    assert report.errors[0]["column"] == "C"


def test_excel_import_updates_existing_when_asked(world, records):
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("shelters")
    staff = world["users"]["town_staff"]
    data = export_xlsx(visible(staff, kind), kind)
    ws = load_workbook(io.BytesIO(data)).active
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    cap = kind.editable_fields().index("capacity")
    rows[1][cap] = 99
    report = import_xlsx(staff, kind, _xlsx(rows), dry_run=False, update_existing=True)
    assert report.ok and report.updated == 1 and report.created == 0
    obj = records["shelters"]["a"]
    obj.refresh_from_db()
    assert obj.capacity == 99 and obj.history.count() == 2


def test_excel_import_says_how_many_rows_actually_change(world, records, client):
    """The dry run counts new, changed and unchanged rows; unchanged ones are not written (no history)."""
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("shelters")
    staff = world["users"]["town_staff"]
    first = records["shelters"]["a"]
    second = create_record(staff, kind, record_data(kind, world["village_a"], "second"))
    rows = [list(r) for r in load_workbook(io.BytesIO(export_xlsx(visible(staff, kind), kind))).active.iter_rows(
        values_only=True)]
    fields = kind.editable_fields()
    code, cap = fields.index("code"), fields.index("capacity")
    for row in rows[1:]:
        if row[code] == first.code:
            row[cap] = first.capacity + 7
    new = record_data(kind, world["village_a"], "third")
    rows.append([new.get(n) for n in fields])
    dry = import_xlsx(staff, kind, _xlsx(rows), dry_run=True, update_existing=True)
    assert dry.ok and (dry.created, dry.updated, dry.unchanged) == (1, 1, 1), dry.as_dict()
    histories = second.history.count()
    done = import_xlsx(staff, kind, _xlsx(rows), dry_run=False, update_existing=True)
    assert (done.created, done.updated, done.unchanged) == (1, 1, 1)
    assert second.history.count() == histories  # the unchanged row wrote nothing
    again = import_xlsx(staff, kind, _xlsx(rows), dry_run=True, update_existing=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_api_import_endpoint(world, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("experts")
    api(client, world["users"]["town_staff"])
    titles = list(next(load_workbook(io.BytesIO(template_xlsx(kind))).active.iter_rows(values_only=True)))
    fields = kind.editable_fields()
    data = record_data(kind, world["village_a"], "api")
    buf = _xlsx([titles, [data.get(n) for n in fields]])
    upload = SimpleUploadedFile("e.xlsx", buf.getvalue())
    r = client.post("/api/v1/experts/import", {"file": upload, "dry_run": "true"})
    assert r.status_code == 200 and r.json()["ok"] and r.json()["created"] == 1
    assert not kind.model.objects.filter(code=data["code"]).exists()
    upload = SimpleUploadedFile("e.xlsx", buf.getvalue())
    r = client.post("/api/v1/experts/import", {"file": upload, "dry_run": "false"})
    assert r.json()["created"] == 1 and kind.model.objects.filter(code=data["code"]).exists()


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_pages_list_detail_create_edit_delete(kind, world, records, client):
    client.force_login(world["users"]["town_staff"])
    a, b = records[kind.slug]["a"], records[kind.slug]["b"]
    r = client.get(f"/r/{kind.slug}/")
    assert r.status_code == 200 and a.name in r.text and OUTSIDE_MARK not in r.text
    # A placed kind offers GeoJSON and shows its point on a map; a regional kind neither.
    assert (f"/r/{kind.slug}/export.geojson" in r.text) == kind.placed()
    r = client.get(f"/r/{kind.slug}/{a.pk}/")
    assert r.status_code == 200 and a.code in r.text
    assert ('id="detail-map"' in r.text) == kind.placed() and ("leaflet" in r.text) == kind.placed()
    assert client.get(f"/r/{kind.slug}/{b.pk}/").status_code == 404
    assert client.get(f"/r/{kind.slug}/export.geojson").status_code == (200 if kind.placed() else 404)
    assert client.get(f"/r/{kind.slug}/new/").status_code == 200

    data = record_data(kind, world["village_a"], "page")
    r = client.post(f"/r/{kind.slug}/new/", data)
    assert r.status_code == 302, r.text[:2000]
    obj = kind.model.objects.get(code=data["code"])
    bad = dict(data, code=f"{data['code']}-2", **({"lat": "abc"} if kind.placed() else {"region": ""}))
    r = client.post(f"/r/{kind.slug}/new/", bad)
    assert r.status_code == 200 and "errorlist" in r.text
    r = client.post(f"/r/{kind.slug}/{obj.pk}/edit/", dict(data, name="页面改名"))
    assert r.status_code == 302
    obj.refresh_from_db()
    assert obj.name == "页面改名"
    assert client.post(f"/r/{kind.slug}/{obj.pk}/delete/").status_code == 302
    assert not kind.model.objects.filter(pk=obj.pk).exists()
    r = client.get(f"/r/{kind.slug}/export.xlsx")
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxml")


def test_page_import_dry_run_then_confirm(world, client):
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("warehouses")
    client.force_login(world["users"]["town_staff"])
    titles = list(next(load_workbook(io.BytesIO(template_xlsx(kind))).active.iter_rows(values_only=True)))
    data = record_data(kind, world["village_a"], "imp")
    buf = _xlsx([titles, [data.get(n) for n in kind.editable_fields()]])
    buf.name = "w.xlsx"
    r = client.post(f"/r/{kind.slug}/import/", {"file": buf})
    assert r.status_code == 200 and "confirm-import" in r.text
    assert not kind.model.objects.filter(code=data["code"]).exists()
    token = r.context["token"]
    r = client.post(f"/r/{kind.slug}/import/", {"token": token})
    assert r.status_code == 302 and kind.model.objects.filter(code=data["code"]).exists()


def test_shelter_area_per_person_rule(world, client):
    client.force_login(world["users"]["town_staff"])
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("shelters")
    body = record_data(kind, world["village_a"], "tight", capacity=500, floor_area_m2=300)
    r = client.post("/api/v1/shelters/", body, content_type="application/json")
    assert r.status_code == 422 and any(e["field"] == "capacity" for e in r.json()["errors"])


def test_linked_records_are_named_by_code_everywhere(world, client):
    """A sensor names its station by code in the API, the Excel sheets and the forms."""
    from tianmu.core.registry.kinds import get_kind
    from tianmu.core.registry.services import create_record

    stations, sensors = get_kind("stations"), get_kind("sensors")
    admin, staff = world["users"]["admin"], world["users"]["town_staff"]
    own = create_record(admin, stations, record_data(stations, world["village_a"], "s"))
    other = create_record(admin, stations, record_data(stations, world["village_b"], "s"))
    api(client, staff)
    body = record_data(sensors, world["village_a"], "linked", station=own.code)
    r = client.post("/api/v1/sensors/", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["station"] == own.code
    sensor = sensors.model.objects.get(code=body["code"])
    assert sensor.station == own

    r = client.post("/api/v1/sensors/", record_data(sensors, world["village_a"], "x", station=other.code),
                    content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "station"

    rows = [list(x) for x in load_workbook(io.BytesIO(export_xlsx(visible(staff, sensors), sensors))).active
            .iter_rows(values_only=True)]
    col = sensors.editable_fields().index("station")
    assert rows[1][col] == own.code
    rows[1][0] = "copy-of-linked"
    report = import_xlsx(staff, sensors, _xlsx(rows), dry_run=False)
    assert report.ok, report.errors
    assert sensors.model.objects.get(code="copy-of-linked").station == own
    assert client.get(f"/r/sensors/{sensor.pk}/edit/").status_code == 200


def test_omitted_fields_take_the_model_default(world, client):
    api(client, world["users"]["town_staff"])
    from tianmu.core.registry.kinds import get_kind

    kind = get_kind("shelters")
    body = {k: v for k, v in record_data(kind, world["village_a"], "d").items() if k != "has_water"}
    r = client.post("/api/v1/shelters/", body, content_type="application/json")
    assert r.status_code == 201 and r.json()["has_water"] is True
