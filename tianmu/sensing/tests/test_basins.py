"""River basins (流域): the record, the GeoJSON import (dry run listing every bad feature, nothing written), scope
(district basins serve the towns below), areal rainfall per basin against a hand-worked Thiessen example, replay
at a past time, the API's 4xx, the pages, the Excel export and the demo grouping."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import shapely
from django.urls import reverse
from openpyxl import load_workbook

from tianmu.core.errors import ServiceError
from tianmu.core.models import Event
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record, update_record
from tianmu.sensing.basins import visible_basins
from tianmu.sensing.models import Basin
from tianmu.sensing.rainfall import basin_detail, basin_rainfall
from tianmu.sensing.services.basins import import_basins
from tianmu.sensing.services.readings import submit_readings

M = timedelta(minutes=1)
H = timedelta(hours=1)
API = "/api/v1/sensing"


def feature(code, name, geometry, **props):
    return {"type": "Feature", "geometry": geometry, "properties": {"code": code, "name": name, **props}}


def rect(w, s, e, n):
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def collection(*features) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


# The hand-worked basin: lon 119.30–119.50, lat 30.10–30.20, across towns A (119.2–119.4) and B (119.4–119.6).
# The net's gauges RG-A (119.302, 30.152) and RG-B (119.502, 30.152) split it at their bisector, lon 119.402
# (same latitude: the bisector is the meridian half way), so RG-A holds (119.402 − 119.30) / 0.2 = 51 % of it
# and RG-B 49 %.
CROSS = rect(119.30, 30.10, 119.50, 30.20)
# Far in the south-east corner of the district: no gauge inside or within 5 km (RG-B is ~25 km away).
FAR = rect(119.70, 29.80, 119.78, 29.85)


def send(world, sensor, rows):
    out = submit_readings(world["users"]["admin"], [{"sensor": sensor.code, "ts": ts.isoformat(), "value": v}
                                                    for ts, v in rows])
    assert not out.get("errors"), out


@pytest.fixture
def basins(world):
    report = import_basins(world["users"]["admin"], collection(
        feature("B-CROSS", "跨镇流域", CROSS, river="测试溪", system="测试水系"),
        feature("B-FAR", "远端小流域", FAR, parent="B-CROSS"),
        feature("B-TOWN-B", "蔺镇小流域", rect(119.45, 30.10, 119.55, 30.20), region=world["town_b"].code)),
        dry_run=False)
    assert report.ok, report.errors
    return {b.code: b for b in Basin.objects.all()}


def test_import_writes_with_history_area_and_one_event(world, basins):
    cross = basins["B-CROSS"]
    assert cross.region == world["district"] and basins["B-FAR"].parent == cross
    # Geodesic: 0.2° × 0.1° at 30.15° N ≈ 19.26 km × 11.09 km.
    assert cross.area_km2 == pytest.approx(213.6, rel=0.01)
    assert cross.history.count() == 1 and cross.history.first().history_user == world["users"]["admin"]
    assert Event.objects.filter(type="sensing.basin.imported").count() == 1
    # The same file again: unchanged, nothing written; a changed name and outline: updated.
    again = import_basins(world["users"]["admin"], collection(
        feature("B-CROSS", "跨镇流域", CROSS, river="测试溪", system="测试水系")), dry_run=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert cross.history.count() == 1
    changed = import_basins(world["users"]["admin"], collection(
        feature("B-CROSS", "跨镇流域(新)", rect(119.30, 30.10, 119.48, 30.20), river="测试溪", system="测试水系")),
        dry_run=False)
    assert (changed.created, changed.updated) == (0, 1)
    cross.refresh_from_db()
    assert cross.name == "跨镇流域(新)" and cross.area_km2 < 213 and cross.history.count() == 2
    # Only a name, or only the parent: changed too (the report compares with the basin as it was).
    renamed = import_basins(world["users"]["admin"], collection(
        feature("B-CROSS", "跨镇流域(再改)", rect(119.30, 30.10, 119.48, 30.20), river="测试溪", system="测试水系")),
        dry_run=False)
    assert (renamed.updated, renamed.unchanged) == (1, 0)
    assert cross.history.count() == 3 and cross.history.first().name == "跨镇流域(再改)"
    moved = import_basins(world["users"]["admin"], collection(feature("B-FAR", "远端小流域", FAR)), dry_run=False)
    assert (moved.updated, moved.unchanged) == (1, 0)
    assert Basin.objects.get(code="B-FAR").parent is None


def test_dry_run_lists_every_bad_feature_and_writes_nothing(world, settings):
    settings.SENSING_BASIN_MAX_VERTICES = 50
    bowtie = {"type": "Polygon", "coordinates": [[[119.3, 30.1], [119.4, 30.2], [119.4, 30.1], [119.3, 30.2],
                                                  [119.3, 30.1]]]}
    many = {"type": "Polygon", "coordinates": [[[119.3 + 0.001 * i, 30.1 + (0.01 if i % 2 else 0)]
                                                for i in range(60)] + [[119.3, 30.1]]]}
    data = collection(
        feature("OK-1", "好流域", CROSS),
        feature("BAD-GEOM", "自相交", bowtie),
        feature("BAD-OUT", "区外", rect(120.5, 30.1, 120.6, 30.2)),
        feature("OK-1", "重复编码", CROSS),
        feature("BAD-PARENT", "上级不存在", CROSS, parent="NOPE"),
        feature("BAD-MANY", "顶点太多", many),
        feature("BAD-TYPE", "点", {"type": "Point", "coordinates": [119.3, 30.1]}),
        feature("", "", CROSS),
        {"type": "Feature", "geometry": CROSS},
    )
    report = import_basins(world["users"]["admin"], data, dry_run=False)
    assert not report.ok and Basin.objects.count() == 0
    found = {(e["row"], e["field"]) for e in report.errors}
    assert {(2, "geometry"), (3, "geometry"), (4, "code"), (5, "parent"), (6, "geometry"), (7, "geometry"),
            (8, "code"), (8, "name"), (9, "feature")} <= found
    assert all(e["row"] != 1 for e in report.errors)
    messages = {e["row"]: e["message"] for e in report.errors}
    assert "自相交" in messages[2] or "Self-intersection" in messages[2]
    assert "超出本区" in messages[3] and "61" in messages[6]
    # A file too large, not JSON, not a FeatureCollection: refused as a whole.
    settings.SENSING_BASIN_MAX_BYTES = 100
    assert import_basins(world["users"]["admin"], data).errors[0]["field"] == "file"
    settings.SENSING_BASIN_MAX_BYTES = 10_000_000
    deep = b'{"type": "FeatureCollection", "features": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nan = collection(feature("NAN", "非数", {"type": "Polygon", "coordinates": [[["x", 1], [2, 3], [4, 5], ["x", 1]]]}))
    assert import_basins(world["users"]["admin"], nan).errors[0]["field"] == "geometry"
    for bad in (b"not json", b'{"type": "Feature"}', "\u00ff".encode("latin-1"), deep):
        assert import_basins(world["users"]["admin"], bad).errors[0]["field"] == "file"
    # A cycle through the file: A's parent B, B's parent A.
    cyc = import_basins(world["users"]["admin"], collection(feature("C-A", "甲", CROSS, parent="C-B"),
                                                            feature("C-B", "乙", CROSS, parent="C-A")))
    assert {e["field"] for e in cyc.errors} == {"parent"} and Basin.objects.count() == 0


def test_a_valid_dry_run_reports_counts_and_writes_nothing(world):
    report = import_basins(world["users"]["admin"], collection(feature("N-1", "新流域", CROSS)), dry_run=True)
    assert report.ok and report.created == 1 and Basin.objects.count() == 0


def test_scope_reads_up_the_chain_and_writes_by_region(world, basins):
    users = world["users"]
    assert set(visible_basins(users["commander"]).values_list("code", flat=True)) == set(basins)
    # A town user reads the district's basins (they cross towns) and their own town's, not another town's.
    assert set(visible_basins(users["town_staff"]).values_list("code", flat=True)) == {"B-CROSS", "B-FAR"}
    assert set(visible_basins(users["village_responder"]).values_list("code", flat=True)) == {"B-CROSS", "B-FAR"}
    assert "B-TOWN-B" in set(visible_basins(users["other_town_staff"]).values_list("code", flat=True))
    # A town user cannot import a district basin, nor change one (its code is in use, without saying where).
    report = import_basins(users["town_staff"], collection(feature("T-NEW", "甲镇流域", CROSS)))
    assert [e["field"] for e in report.errors] == ["region"]
    report = import_basins(users["town_staff"], collection(feature("B-CROSS", "改名", CROSS)))
    assert [e["field"] for e in report.errors] == ["code"]
    report = import_basins(users["town_staff"], collection(feature("T-OWN", "甲镇小流域", rect(119.25, 30.1, 119.35, 30.2),
                                                                    region=world["town_a"].code)), dry_run=False)
    assert report.ok and Basin.objects.get(code="T-OWN").region == world["town_a"]
    # A town's own basin lies in that town.
    report = import_basins(users["town_staff"], collection(feature("T-OUT", "越界", rect(119.45, 30.1, 119.55, 30.2),
                                                                    region=world["town_a"].code)))
    assert [e["field"] for e in report.errors] == ["geometry"] and "甲镇" in report.errors[0]["message"]
    # Read-only roles may not import at all.
    with pytest.raises(Exception):  # noqa: B017 -- ScopeError, a PermissionDenied
        import_basins(users["leader"], collection(feature("L-1", "领导", CROSS)))


def test_parent_cycle_refused_by_the_record_form(world, basins):
    kind = get_kind("basins")
    with pytest.raises(ServiceError) as exc:
        update_record(world["users"]["admin"], kind, basins["B-CROSS"], {"parent": "B-FAR"})
    assert "parent" in exc.value.errors
    # Created in the form: no outline, honestly shown as such in the areal table.
    create_record(world["users"]["admin"], kind, {"code": "B-NEW", "name": "新流域", "region": world["district"].code})
    rows = {r["code"]: r for r in basin_rainfall(world["users"]["commander"])["basins"]}
    assert rows["B-NEW"]["state"] == "no_outline" and rows["B-NEW"]["value"] is None


def test_areal_rainfall_per_basin_by_hand_and_replay(world, net, basins, t0):
    """RG-A 10 mm and RG-B 20 mm in the hour: the crossing basin has 0.51 × 10 + 0.49 × 20 = 14.9 mm."""
    send(world, net["rain_a"], [(t0 + k * 10 * M, 10 / 6) for k in range(1, 7)])
    send(world, net["rain_b"], [(t0 + k * 10 * M, 20 / 6) for k in range(1, 7)])
    at = t0 + H
    out = basin_rainfall(world["users"]["commander"], at, 1)
    rows = {r["code"]: r for r in out["basins"]}
    assert rows["B-CROSS"]["value"] == pytest.approx(14.9, abs=0.05)
    # RG-B (119.502) lies just outside the basin's east edge (119.50) and still holds 49 % of it.
    assert rows["B-CROSS"]["state"] == "ok" and rows["B-CROSS"]["gauges"] == 1 and rows["B-CROSS"]["weights"] == 2
    assert rows["B-TOWN-B"]["value"] == pytest.approx(20.0, abs=0.05)  # wholly in RG-B's cell
    assert rows["B-FAR"]["state"] == "no_gauge" and rows["B-FAR"]["value"] is None  # not 0 mm
    assert [r["code"] for r in out["basins"]][0] == "B-TOWN-B"  # wettest first; no value last
    assert out["basins"][-1]["value"] is None
    detail = basin_detail(world["users"]["commander"], "B-CROSS", at, 1)
    shares = {s["sensor"]: s["share"] for s in detail["shares"]}
    assert {s["sensor"]: s["inside"] for s in detail["shares"]} == {"RG-A": True, "RG-B": False}
    assert shares == {"RG-A": pytest.approx(0.51, abs=0.002), "RG-B": pytest.approx(0.49, abs=0.002)}
    # A town-A user sees RG-A's share and RG-B only as another town's gauge with its summed share.
    mine = basin_detail(world["users"]["town_staff"], "B-CROSS", at, 1)
    assert [s["sensor"] for s in mine["shares"]] == ["RG-A"] and mine["hidden_gauges"] == 1
    assert mine["hidden_share"] == pytest.approx(0.49, abs=0.002) and mine["value"] == detail["value"]
    # Later rain at RG-B changes the present, not the past.
    send(world, net["rain_b"], [(t0 + 90 * M, 30.0)])
    past = {r["code"]: r["value"] for r in basin_rainfall(world["users"]["commander"], at, 1)["basins"]}
    assert past["B-CROSS"] == pytest.approx(14.9, abs=0.05)
    later = {r["code"]: r["value"] for r in basin_rainfall(world["users"]["commander"], t0 + 2 * H, 3)["basins"]}
    assert later["B-CROSS"] == pytest.approx(0.51 * 10 + 0.49 * 50, abs=0.05)


def test_thiessen_cache_follows_a_changed_outline(world, net, basins, t0):
    send(world, net["rain_a"], [(t0 + 30 * M, 10.0)])
    send(world, net["rain_b"], [(t0 + 30 * M, 20.0)])
    before = basin_detail(world["users"]["commander"], "B-CROSS", t0 + H, 1)["value"]
    # Move the basin wholly into RG-A's cell: the cached weights of the old outline are not used.
    import_basins(world["users"]["admin"], collection(
        feature("B-CROSS", "跨镇流域", rect(119.25, 30.10, 119.35, 30.20), river="测试溪", system="测试水系")),
        dry_run=False)
    assert before == pytest.approx(14.9, abs=0.05)
    assert basin_detail(world["users"]["commander"], "B-CROSS", t0 + H, 1)["value"] == pytest.approx(10.0)


def test_api_routes_and_4xx(client, world, net, basins, t0):
    send(world, net["rain_a"], [(t0 + 30 * M, 10.0)])
    client.force_login(world["users"]["commander"])
    at = (t0 + H).isoformat()
    r = client.get(f"{API}/rainfall/basins", {"at": at, "window": "1"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert {b["code"] for b in body["basins"]} == set(basins) and body["method"] == "thiessen"
    r = client.get(f"{API}/rainfall/basins/B-CROSS", {"at": at, "window": "1"})
    assert r.status_code == 200 and r.json()["shares"][0]["sensor"] == "RG-A"
    for url, params, field in ((f"{API}/rainfall/basins", {"window": "5"}, "window"),
                               (f"{API}/rainfall/basins", {"sort": "nope"}, "sort"),
                               (f"{API}/rainfall/basins", {"at": "yesterday"}, "at"),
                               (f"{API}/rainfall/basins/B-CROSS", {"window": "0"}, "window"),
                               ("/api/v1/map/basins", {"window": "2"}, "window")):
        r = client.get(url, params)
        assert r.status_code in (400, 422), (url, params, r.status_code)
        assert field in json.dumps(r.json()), r.json()
    client.force_login(world["users"]["town_staff"])
    assert client.get(f"{API}/rainfall/basins/B-TOWN-B").status_code == 404
    assert client.get(f"{API}/rainfall/basins/NOPE").status_code == 404
    layer = client.get("/api/v1/map/basins", {"window": "24"}).json()
    assert {f["id"] for f in layer["basins"]["features"]} == {"B-CROSS", "B-FAR"}
    geo = client.get(f"{API}/basins/geojson").json()
    assert {f["id"] for f in geo["features"]} == {"B-CROSS", "B-FAR"}
    # The import over the API: a dry run with an error, per feature.
    client.force_login(world["users"]["admin"])
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("b.geojson", collection(feature("X-1", "区外", rect(120.5, 30.1, 120.6, 30.2))))
    r = client.post(f"{API}/basins/import", {"file": bad, "dry_run": "true"})
    assert r.status_code == 200 and r.json()["errors"][0]["field"] == "geometry"


def test_pages_export_and_import(client, world, net, basins, t0):
    send(world, net["rain_a"], [(t0 + 30 * M, 10.0)])
    client.force_login(world["users"]["commander"])
    at = (t0 + H).isoformat()
    page = client.get("/sensing/rainfall/areal/", {"by": "basin", "at": at, "window": "1"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "跨镇流域" in text and "按流域" in text and 'data-state="no_gauge"' in text
    assert client.get("/sensing/rainfall/areal/", {"by": "basin", "window": "7"}).status_code == 400
    assert client.get("/sensing/rainfall/areal/", {"by": "basin", "sort": "nope"}).status_code == 400
    detail = client.get("/sensing/rainfall/basins/B-CROSS/", {"at": at, "window": "1"})
    assert detail.status_code == 200 and "basin-weights" in detail.content.decode()
    assert client.get("/sensing/rainfall/basins/NOPE/").status_code == 404
    x = client.get("/sensing/rainfall/areal/export.xlsx", {"by": "basin", "at": at, "window": "1"})
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    cells = [c.value for row in ws.iter_rows() for c in row]
    assert "B-CROSS" in cells and not any(isinstance(v, str) and v.startswith("=") for v in cells)
    assert client.get("/sensing/rainfall/areal/export.xlsx", {"window": "1"}).status_code == 200
    record = client.get(reverse("records:detail", args=["basins", basins["B-CROSS"].pk])).content.decode()
    assert "basin-outline-svg" in record and "面雨量与站点权重" in record
    # The list page offers the outline import (to those who may import), the export and the areal table.
    listing = client.get("/r/basins/").content.decode()
    assert "/sensing/basins/import/" in listing and "/sensing/rainfall/areal/?by=basin" in listing
    client.force_login(world["users"]["village_responder"])
    listing = client.get("/r/basins/").content.decode()
    assert "/sensing/basins/import/" not in listing and "/sensing/basins/export.geojson" in listing
    assert client.get("/sensing/basins/import/").status_code == 403
    # The import page: upload (dry run), then confirm with the token.
    client.force_login(world["users"]["admin"])
    from django.core.files.uploadedfile import SimpleUploadedFile

    up = SimpleUploadedFile("b.geojson", collection(feature("P-1", "页面导入", CROSS)))
    r = client.post("/sensing/basins/import/", {"file": up})
    assert r.status_code == 200 and not Basin.objects.filter(code="P-1").exists()
    token = r.context["token"]
    assert token
    r = client.post("/sensing/basins/import/", {"token": token})
    assert r.status_code == 302 and Basin.objects.filter(code="P-1").exists()
    assert client.get("/sensing/basins/export.geojson").status_code == 200
    client.force_login(world["users"]["leader"])
    assert client.get("/sensing/basins/import/").status_code == 403


def test_demo_grouping_covers_every_town_once_and_is_plausible():
    """Every demo town in exactly one sub-basin; the groups follow the towns' longitudes west to east (昌化溪 in
    the west, 天目溪 in the middle, the 苕溪 in the east); each dissolved group is one piece."""
    from tianmu.demo import geography
    from tianmu.sensing.demo.basins import BASINS, TOWN_BASIN, basin_features

    names = [t[0] for t in geography.TOWNS]
    assert sorted(TOWN_BASIN) == sorted(names) and len(names) == 18
    members = [t for *_r, towns in BASINS for t in towns]
    assert len(members) == len(set(members))
    lon = {t[0]: t[3] for t in geography.TOWNS}

    def span(code):
        return [lon[t] for t in next(m for c, *_r, m in BASINS if c == code)]

    assert max(span("LA-FSJ-CHX")) < min(span("LA-FSJ-TMX")) < max(span("LA-FSJ-TMX")) < min(span("LA-TX-NTX"))
    geo = geography.generate()
    towns = {t["name"]: t["boundary"] for t in geo["towns"]}
    fc = basin_features(towns)
    for f in fc["features"]:
        shape = shapely.from_geojson(json.dumps(f["geometry"]))
        assert shape.is_valid and shape.geom_type == "Polygon", (f["properties"]["code"], shape.geom_type)
    district = shapely.from_geojson(json.dumps(geo["district"]["boundary"]))
    top = [shapely.from_geojson(json.dumps(f["geometry"])) for f in fc["features"] if not f["properties"]["parent"]]
    assert shapely.union_all(top).area == pytest.approx(district.area, rel=0.001)


def test_management_command_dry_run_then_apply(world, tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "b.geojson"
    path.write_bytes(collection(feature("CMD-1", "命令导入", CROSS)))
    out = io.StringIO()
    call_command("import_basins", str(path), "--user", "admin", stdout=out)
    assert "1 new" in out.getvalue() and not Basin.objects.exists()
    call_command("import_basins", str(path), "--user", "admin", "--apply", stdout=out)
    assert Basin.objects.filter(code="CMD-1").exists()
    path.write_bytes(collection(feature("CMD-2", "区外", rect(120.5, 30.1, 120.6, 30.2))))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_basins", str(path), "--user", "admin", "--apply", stdout=out, stderr=err)
    assert "geometry" in err.getvalue() and not Basin.objects.filter(code="CMD-2").exists()
    with pytest.raises(CommandError):
        call_command("import_basins", str(path), "--user", "leader")
