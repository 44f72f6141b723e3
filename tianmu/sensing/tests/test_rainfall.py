"""Rainfall products (rainfall.py): per-gauge window and process totals at any past time, areal rainfall by
Thiessen polygons, the inverse-distance distribution layer, their API, scope and Excel export."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from openpyxl import load_workbook

from tianmu.sensing.rainfall import (
    areal_rainfall,
    distribution,
    idw_grid,
    rain_classes,
    station_rainfall,
    stations_xlsx,
    thiessen_weights,
)
from tianmu.sensing.services.readings import submit_readings

from .conftest import make_sensor, make_station

M = timedelta(minutes=1)
H = timedelta(hours=1)
API = "/api/v1/sensing"


def send(world, sensor, rows):
    out = submit_readings(world["users"]["admin"], [{"sensor": sensor.code, "ts": ts.isoformat(), "value": v}
                                                    for ts, v in rows])
    assert not out.get("errors"), out


def square(lon, lat, half):
    return json.dumps({"type": "Polygon", "coordinates": [[[lon - half, lat - half], [lon + half, lat - half],
                                                           [lon + half, lat + half], [lon - half, lat + half],
                                                           [lon - half, lat - half]]]})


def test_window_and_process_totals_at_a_past_time(world, net, t0):
    """Two storms 14 h apart (the process separation is 12 dry hours): at the end of the second the process is
    the second only; asked `at` the middle of the first, the table shows the first as it stood then."""
    gauge = net["rain_a"]
    first = [(t0 - 20 * H + k * 5 * M, 1.0) for k in range(1, 37)]  # 36 mm over 3 h
    second = [(t0 + k * 5 * M, 2.0) for k in range(1, 25)]  # 48 mm over 2 h, after 17 dry hours
    send(world, gauge, first + second)
    at, rows = station_rainfall(world["users"]["commander"], t0 + 2 * H)
    row = next(r for r in rows if r.code == gauge.code)
    assert row.totals == {1: 24.0, 3: 48.0, 6: 48.0, 12: 48.0, 24: 84.0}
    assert row.event_total == 48.0 and row.event_start == t0 and row.event_end == t0 + 2 * H
    assert row.effective == 84.0
    mid = t0 - 20 * H + 90 * M  # 18 readings of the first storm
    _at, rows = station_rainfall(world["users"]["commander"], mid)
    row = next(r for r in rows if r.code == gauge.code)
    assert row.totals[1] == 12.0 and row.totals[24] == 18.0
    assert row.event_total == 18.0 and row.event_start == t0 - 20 * H and row.event_end == mid
    # The other gauge reported nothing: no totals, not zeros.
    silent = next(r for r in rows if r.code == net["rain_b"].code)
    assert silent.totals[24] is None and not silent.reporting


def test_scope_town_filter_and_sort(world, net, t0):
    send(world, net["rain_a"], [(t0 + 5 * M, 3.0)])
    send(world, net["rain_b"], [(t0 + 5 * M, 7.0)])
    _at, rows = station_rainfall(world["users"]["commander"], t0 + H, sort="h1")
    assert [r.code for r in rows] == ["RG-B", "RG-A"]
    _at, rows = station_rainfall(world["users"]["commander"], t0 + H, town=world["town_a"].code)
    assert [r.code for r in rows] == ["RG-A"]
    _at, rows = station_rainfall(world["users"]["town_staff"], t0 + H)
    assert [r.code for r in rows] == ["RG-A"]  # town B's gauge is outside town A's scope


def test_thiessen_gauges_at_one_place_share_their_cell():
    town = square(120.0, 30.0, 0.1)
    w = dict(thiessen_weights(((1, 119.95, 30.0), (2, 119.95, 30.0), (3, 120.05, 30.0)), (("t", town),))["t"])
    assert w == {1: pytest.approx(0.25), 2: pytest.approx(0.25), 3: pytest.approx(0.5)}


def test_thiessen_weights_by_hand():
    """Two gauges at the quarter points of a square town split it in halves; a third far outside takes
    nothing; weights sum to 1."""
    town = square(120.0, 30.0, 0.1)
    w = thiessen_weights(((1, 119.95, 30.0), (2, 120.05, 30.0), (3, 121.0, 30.0)), (("t", town),))
    assert dict(w["t"]) == {1: pytest.approx(0.5), 2: pytest.approx(0.5)}
    # One gauge at a corner region: the cells follow perpendicular bisectors in the local projection.
    w = thiessen_weights(((1, 119.95, 30.05), (2, 120.05, 29.95)), (("t", town),))
    assert sum(x for _s, x in w["t"]) == pytest.approx(1.0)
    assert dict(w["t"])[1] == pytest.approx(0.5, abs=0.02)
    assert thiessen_weights(((7, 125.0, 35.0),), (("t", town),)) == {"t": [(7, 1.0)]}


def test_areal_rainfall_uniform_rain_and_scope(world, net, t0):
    """The same rain at every gauge gives that areal rainfall in every town; a town with its own gauge and a
    neighbour's half way takes a weighted mean; only visible towns are answered."""
    extra = make_station(world["users"]["admin"], world["village_a"], "ST-RAIN-C", lon=119.28, lat=30.13)
    gauge_c = make_sensor(world["users"]["admin"], extra, "RG-C")
    for g in (net["rain_a"], net["rain_b"], gauge_c):
        send(world, g, [(t0 + k * 10 * M, 2.0) for k in range(1, 7)])
    out = areal_rainfall(world["users"]["commander"], t0 + H, 1)
    assert {t["town"]: t["value"] for t in out["towns"]} == {world["town_a"].code: 12.0, world["town_b"].code: 12.0}
    assert out["method"] == "thiessen" and out["gauges"] == 3
    send(world, net["rain_b"], [(t0 + 65 * M, 6.0)])
    out = areal_rainfall(world["users"]["commander"], t0 + 70 * M, 1, sort="value")
    values = {t["town"]: t["value"] for t in out["towns"]}
    # Town B (119.4–119.6) lies in RG-B's cell (from 119.402, half way to RG-A) but for a 1 % sliver.
    # (RG-A: 10 mm in (t0 + 10 min, t0 + 70 min]; rounded to 0.1 mm.)
    assert values[world["town_b"].code] == pytest.approx(0.99 * 16 + 0.01 * 10, abs=0.05)
    assert out["towns"][0]["town"] == world["town_b"].code  # wettest first
    mine = areal_rainfall(world["users"]["town_staff"], t0 + 70 * M, 1)
    assert [t["town"] for t in mine["towns"]] == [world["town_a"].code]
    assert areal_rainfall(world["users"]["village_responder"], t0 + 70 * M, 1)["towns"] == []


def test_idw_surface_is_exact_at_gauges_and_bounded():
    pts = np.array([[120.0, 30.0], [120.2, 30.0]])
    vals = np.array([10.0, 50.0])
    grid = idw_grid(pts, vals, (119.9, 29.9, 120.3, 30.1), 41, 21)
    assert grid.min() >= 10.0 and grid.max() <= 50.0
    assert grid[10, 10] == pytest.approx(10.0, abs=0.5) and grid[10, 30] == pytest.approx(50.0, abs=0.5)
    assert grid[10, 20] == pytest.approx(30.0, abs=0.5)  # half way: the mean


def test_distribution_layer_classes_and_clip(world, net, t0):
    send(world, net["rain_a"], [(t0 + k * 5 * M, 5.0) for k in range(1, 13)])  # 60 mm: 暴雨 in 24 h
    send(world, net["rain_b"], [(t0 + 5 * M, 0.0)])
    out = distribution(world["users"]["commander"], t0 + H, 24)
    assert [c["lo"] for c in out["classes"]] == [0.1, 10.0, 25.0, 50.0, 100.0, 250.0]
    assert out["classes"][3]["name"] == "暴雨"
    by_code = {g[0]: g for g in out["gauges"]}
    assert by_code["RG-A"][4] == 60.0 and by_code["RG-A"][6] == 3
    assert by_code["RG-B"][4] == 0.0 and by_code["RG-B"][6] == -1  # no rain: no class
    grid = out["grid"]
    assert len(grid["cells"]) == grid["nx"] * grid["ny"]
    assert grid["bbox"] == pytest.approx([119.0, 29.75, 119.8, 30.55])  # the district square
    assert set(grid["cells"]) <= set(".0123")
    rows = [grid["cells"][i * grid["nx"]:(i + 1) * grid["nx"]] for i in range(grid["ny"])]
    middle = rows[grid["ny"] // 2]
    assert "3" in middle and middle[0] > middle[-1]  # 暴雨 around RG-A, less towards the dry gauge
    # A town user's surface is clipped to their town.
    mine = distribution(world["users"]["town_staff"], t0 + H, 24)
    assert mine["grid"]["bbox"] == pytest.approx([119.2, 30.05, 119.4, 30.25])
    assert [g[0] for g in mine["gauges"]] == ["RG-A"]


def test_rain_classes_per_window(settings):
    assert [c["lo"] for c in rain_classes(12)] == [0.1, 5.0, 15.0, 30.0, 70.0, 140.0]
    settings.SENSING_RAIN_CLASSES = {"24": [1, 2, 3, 4, 5, 6], "1": [1, 2, 3, 4, 5, 6]}
    assert rain_classes(6)[0]["lo"] == 1  # a window without its own row takes the 24 h grades


def test_api_and_export(client, world, net, t0):
    net["rain_a"].name = "=HYPERLINK(\"http://x\")"
    net["rain_a"].save()
    send(world, net["rain_a"], [(t0 + k * 5 * M, 1.0) for k in range(1, 13)])
    client.force_login(world["users"]["commander"])
    at = (t0 + H).isoformat()
    r = client.get(f"{API}/rainfall/stations", {"at": at, "sort": "h1"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["stations"][0]["sensor"] == "RG-A" and body["stations"][0]["h1"] == 12.0
    r = client.get(f"{API}/rainfall/areal", {"at": at, "window": "1"})
    assert r.status_code == 200 and r.json()["towns"]
    r = client.get("/api/v1/map/rainfall", {"at": at, "window": "3"})
    assert r.status_code == 200 and r.json()["grid"]["nx"] > 0
    for url, params, field in ((f"{API}/rainfall/areal", {"window": "5"}, "window"),
                               ("/api/v1/map/rainfall", {"window": "x"}, "window"),
                               (f"{API}/rainfall/stations", {"at": "yesterday"}, "at"),
                               (f"{API}/rainfall/stations", {"at": (t0 + 30 * 24 * H).isoformat()}, "at"),
                               (f"{API}/rainfall/stations", {"sort": "nope"}, "sort"),
                               (f"{API}/rainfall/stations", {"town": "33"}, "town")):
        r = client.get(url, params)
        assert r.status_code == 422, (url, params, r.content)
        errors = r.json()["errors"]
        assert errors[0]["field"] == field and errors[0]["message"] and errors[0]["message_en"]
    at_, rows = station_rainfall(world["users"]["commander"], t0 + H)
    ws = load_workbook(io.BytesIO(stations_xlsx(at_, rows))).active
    names = [row[1].value for row in ws.iter_rows(min_row=3)]
    assert "'=HYPERLINK(\"http://x\")" in names  # stored as text, never a formula
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)


def test_pages_sort_filter_export_and_refuse_bad_input(client, world, net, t0):
    send(world, net["rain_a"], [(t0 + k * 5 * M, 1.0) for k in range(1, 13)])
    send(world, net["rain_b"], [(t0 + k * 5 * M, 3.0) for k in range(1, 13)])
    client.force_login(world["users"]["commander"])
    at = (t0 + H).astimezone().strftime("%Y-%m-%dT%H:%M")
    r = client.get("/sensing/rainfall/", {"at": (t0 + H).isoformat(), "sort": "h1"})
    assert r.status_code == 200
    page = r.content.decode()
    assert page.index("RG-B") < page.index("RG-A") and "36.0" in page and "12.0" in page
    r = client.get("/sensing/rainfall/", {"at": (t0 + H).isoformat(), "town": world["town_a"].code})
    assert "RG-A" in r.content.decode() and "RG-B" not in r.content.decode()
    r = client.get("/sensing/rainfall/export.xlsx", {"at": (t0 + H).isoformat()})
    assert r.status_code == 200 and r["Content-Disposition"].startswith("attachment")
    ws = load_workbook(io.BytesIO(r.content)).active
    assert {row[0].value for row in ws.iter_rows(min_row=3)} == {"RG-A", "RG-B"}
    r = client.get("/sensing/rainfall/areal/", {"at": at, "window": "1"})
    assert r.status_code == 200 and world["town_a"].name in r.content.decode()
    for params in ({"at": "soon"}, {"window": "5"}, {"town": "x"}, {"sort": "nope"}):
        r = client.get("/sensing/rainfall/areal/" if "window" in params else "/sensing/rainfall/", params)
        assert r.status_code == 400, params
    r = client.get("/sensing/rainfall/export.xlsx", {"at": "soon"})
    assert r.status_code == 302
    # A town user sees only their own town's gauges and town.
    client.force_login(world["users"]["town_staff"])
    page = client.get("/sensing/rainfall/", {"at": (t0 + H).isoformat()}).content.decode()
    assert "RG-A" in page and "RG-B" not in page
    page = client.get("/sensing/rainfall/areal/", {"at": (t0 + H).isoformat()}).content.decode()
    assert world["town_a"].name in page and world["town_b"].name not in page
