"""Alarms grouped per station (the alarm list's 按站点 view and GET /api/v1/sensing/alarms/by-station): the same
scope and filters as the per-alarm list, counts and levels aggregated by the database, a stand-alone device as
a group of its own, the station filter of the per-alarm list, and both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tianmu.conftest import OUTSIDE_MARK
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record
from tianmu.sensing.choices import ACTIVE_STATUSES, LEVEL_RANK
from tianmu.sensing.models import Alarm
from tianmu.sensing.queries import AlarmFilter, alarms_by_station, station_groups
from tianmu.sensing.services import acknowledge_alarm, close_alarm

from .conftest import make_sensor
from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)
API = "/api/v1/sensing/alarms/by-station"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def grouped(world, net, t0):
    """Town A: a rain station whose gauge raises three rain rules and whose second sensor (a water level) a
    rise-rate alarm, one of them acknowledged; a river station over its guaranteed level; a stand-alone gas
    detector. Town B: a rain station with the same cloudburst, one alarm closed."""
    admin, commander = world["users"]["admin"], world["users"]["commander"]
    second = make_sensor(admin, net["stations"]["rain_a"], "WL-A2", "water_level", valid_min=-5, valid_max=50)
    village = world["village_a"]
    gas = create_record(admin, get_kind("sensors"), {
        "code": "GS-A", "name": "独立可燃气体探测器", "region": village.code, "lon": village.lon + 0.003,
        "lat": village.lat + 0.003, "sensor_type": "gas", "interval_s": 300, "valid_min": 0, "valid_max": 100})
    for sensor in (net["rain_a"], net["rain_b"]):
        send(sensor, *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    send(net["level_a"], (t0, 2.0), (t0 + 30 * M, 4.2))
    send(second, (t0 - 60 * M, 1.0), (t0, 1.6))
    send(gas, (t0 + 40 * M, 30.0))
    alarms = {f"{a.sensor.code}:{a.rule}": a for a in Alarm.objects.select_related("sensor")}
    assert {"RG-A:rainstorm", "RG-A:flash_flood", "RG-A:geohazard", "WL-A2:rise_rate", "WL-A:water_level",
            "GS-A:gas", "RG-B:flash_flood", "RG-B:rainstorm"} <= set(alarms)
    acknowledge_alarm(commander, alarms["RG-A:flash_flood"], "已通知")
    close_alarm(commander, alarms["RG-B:rainstorm"], "误报")
    return alarms


def expected_groups(qs) -> dict[str, dict]:
    """The per-station figures worked out row by row in Python, to compare with the database's grouping."""
    out: dict[str, dict] = {}
    for a in qs.select_related("station", "sensor"):
        key = a.station.code if a.station_id else a.sensor.code
        g = out.setdefault(key, {"alarms": 0, "unacknowledged": 0, "top": 0, "rules": set(), "newest": a.opened_at})
        g["alarms"] += 1
        g["unacknowledged"] += a.status == "open"
        g["top"] = max(g["top"], LEVEL_RANK[a.level])
        g["rules"].add(a.rule)
        g["newest"] = max(g["newest"], a.opened_at)
    return out


def as_figures(results: list[dict]) -> dict[str, dict]:
    return {r["station"] or r["sensor"]: {"alarms": r["alarms"], "unacknowledged": r["unacknowledged"],
                                          "top": LEVEL_RANK[r["level"]], "rules": {x["rule"] for x in r["rules"]}}
            for r in results}


def without_time(groups: dict[str, dict]) -> dict[str, dict]:
    return {k: {f: v for f, v in g.items() if f != "newest"} for k, g in groups.items()}


def test_api_aggregates_per_station(world, grouped, client):
    client.force_login(world["users"]["commander"])
    r = client.get(API)
    assert r.status_code == 200, r.content
    data = r.json()
    active = Alarm.objects.filter(status__in=ACTIVE_STATUSES)
    assert data["count"] == 4 and as_figures(data["results"]) == without_time(expected_groups(active))
    rows = {x["station"] or x["sensor"]: x for x in data["results"]}
    # Several rules of two sensors on one station: one row, its highest level, the acknowledged one counted.
    rain_a = rows["ST-RAIN-A"]
    assert (rain_a["alarms"], rain_a["unacknowledged"], rain_a["level"]) == (4, 3, "red")
    assert {x["rule"] for x in rain_a["rules"]} == {"rainstorm", "flash_flood", "geohazard", "rise_rate"}
    assert rain_a["rules"][0]["level"] == "red" and rain_a["rules"][0]["rule_label"] == "山洪(临界雨量)"
    assert [LEVEL_RANK[x["level"]] for x in rain_a["rules"]] == sorted(
        (LEVEL_RANK[x["level"]] for x in rain_a["rules"]), reverse=True)
    assert (rain_a["town_name"], rain_a["region_name"]) == ("甲镇", "甲一村")
    # A stand-alone device is a group of its own; the closed alarm of station B is not active.
    assert rows["GS-A"]["station"] is None and rows["GS-A"]["level"] == "orange" and rows["GS-A"]["alarms"] == 1
    assert rows["ST-RAIN-B"]["alarms"] == len(expected_groups(active)["ST-RAIN-B"]["rules"])
    newest = max(a.opened_at for a in active.filter(station__code="ST-RAIN-A"))
    assert rain_a["newest_opened_at"].endswith("+08:00") and rain_a["newest_opened_at"].startswith(
        newest.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))
    # Most severe first, then newest.
    keys = [(-LEVEL_RANK[x["level"]], x["newest_opened_at"]) for x in data["results"]]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)

    everything = client.get(API, {"status": "all"}).json()
    assert as_figures(everything["results"]) == without_time(expected_groups(Alarm.objects.all()))
    closed = client.get(API, {"status": "closed"}).json()["results"]
    assert [(x["station"], x["alarms"], x["unacknowledged"]) for x in closed] == [("ST-RAIN-B", 1, 0)]


def test_api_is_scoped_and_filtered(world, grouped, client):
    client.force_login(world["users"]["town_staff"])
    r = client.get(API)
    assert {x["station"] or x["sensor"] for x in r.json()["results"]} == {"ST-RAIN-A", "ST-LEVEL-A", "GS-A"}
    assert OUTSIDE_MARK not in r.text
    assert client.get(API, {"region": world["town_b"].code}).json()["count"] == 0
    client.force_login(world["users"]["village_responder"])
    assert client.get(API).json()["count"] == 3  # all of town A's alarms are in village A1

    client.force_login(world["users"]["commander"])
    for params in ({"level": "red"}, {"rule": "flash_flood"}, {"kind": "threshold"}, {"region": world["town_b"].code},
                   {"level": "orange", "rule": "gas"}):
        qs = Alarm.objects.filter(status__in=ACTIVE_STATUSES)
        qs = qs.filter(**{"level": params["level"]} if "level" in params else {})
        qs = qs.filter(**{"rule": params["rule"]} if "rule" in params else {})
        qs = qs.filter(**{"region__code__startswith": params["region"]} if "region" in params else {})
        got = client.get(API, params).json()["results"]
        assert as_figures(got) == without_time(expected_groups(qs)), params
    red = {x["station"]: x for x in client.get(API, {"level": "red"}).json()["results"]}
    assert red["ST-RAIN-A"]["alarms"] == 1 and [x["rule"] for x in red["ST-RAIN-A"]["rules"]] == ["flash_flood"]
    assert client.get(API, {"kind": "device_fault"}).json()["count"] == 0
    assert client.get(API, {"level": "purple"}).status_code == 422
    assert client.get(API, {"sort": "colour"}).status_code == 422
    by_time = client.get(API, {"sort": "time"}).json()["results"]
    assert [x["newest_opened_at"] for x in by_time] == sorted((x["newest_opened_at"] for x in by_time), reverse=True)


def test_grouping_is_done_by_the_database(world, grouped):
    """A page costs the same few queries whatever its length: no query per station."""
    commander = world["users"]["commander"]
    flt = AlarmFilter(status="active")
    with CaptureQueriesContext(connection) as ctx:
        rows = list(alarms_by_station(commander, flt))
        groups = station_groups(commander, rows, flt)
    assert len(groups) == 4 and len(ctx.captured_queries) <= 4
    assert "GROUP BY" in ctx.captured_queries[0]["sql"].upper()


def page(client, user, **params):
    client.force_login(user)
    return client.get("/sensing/alarms/", params)


def station_rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-id="g-?\d+"[^>]*data-station="([^"]+)"[^>]*>(.*?)</tr>', html, re.S))


def test_page_by_station_is_scoped_and_links_to_the_alarms(client, world, grouped):
    html = page(client, world["users"]["town_staff"], view="station").content.decode()
    rows = station_rows(html)
    assert set(rows) == {"ST-RAIN-A", "ST-LEVEL-A", "GS-A"} and OUTSIDE_MARK not in html
    rain_a = rows["ST-RAIN-A"]
    assert 'class="tag level-red"' in rain_a and "<b>4</b>" in rain_a and '<span class="status st-open">3</span>' in rain_a
    for label in ("山洪(临界雨量)", "暴雨(气象预警信号标准)", "地质灾害(有效降雨量)", "水位涨率"):
        assert label in rain_a
    assert "甲镇" in rain_a and "甲一村" in rain_a
    assert 'href="?view=station&amp;level=red"' in html  # level chips keep the view
    link = re.search(r'href="\?([^"]*station=ST-RAIN-A)"', rain_a).group(1).replace("&amp;", "&")
    assert "view=" not in link
    # The link leads to the per-alarm list of that station only.
    listed = client.get("/sensing/alarms/?" + link).content.decode()
    assert "RG-A" in listed and "WL-A2" in listed and "RG-B" not in listed and "WL-A<" not in listed
    assert 'id="station-filter"' in listed and "测试站ST-RAIN-A" in listed
    # Another town's station: nothing, not even through the station filter.
    assert "RG-B" not in page(client, world["users"]["town_staff"], station="ST-RAIN-B").content.decode()


def test_page_by_station_filters_and_live_fragment(client, world, grouped):
    commander = world["users"]["commander"]
    rows = station_rows(page(client, commander, view="station", level="red").content.decode())
    assert set(rows) == {"ST-RAIN-A", "ST-RAIN-B", "ST-LEVEL-A"}
    assert set(station_rows(page(client, commander, view="station", town=world["town_b"].code).content.decode())) == {
        "ST-RAIN-B"}
    assert set(station_rows(page(client, commander, view="station", rule="gas").content.decode())) == {"GS-A"}
    faults = page(client, commander, view="station", kind="device_fault").content.decode()
    assert station_rows(faults) == {} and "没有符合条件的告警" in faults
    # The chips count stations per level; the summary counts stations and alarms.
    html = page(client, commander, view="station").content.decode()
    assert 'data-level="red" data-count="3"' in html  # ST-RAIN-A, ST-RAIN-B, ST-LEVEL-A
    active = Alarm.objects.filter(status__in=ACTIVE_STATUSES).count()
    assert f"4 个站点 · {active} 条告警" in html
    # The live fragment of the grouped view is its table, ready for alarms.js to swap in.
    frag = page(client, commander, view="station", fragment="1").content.decode()
    assert "<html" not in frag and 'id="alarm-stations"' in frag and 'id="alarms"' not in frag
    full = page(client, commander, view="station").content.decode()
    assert re.search(r'data-fragment="[^"]*view=station[^"]*fragment=1"', full)
    assert 'aria-current="page">按站点' in full and '<input type="hidden" name="view" value="station">' in full


def test_page_by_station_in_english(client, world, grouped):
    client.cookies["django_language"] = "en"
    html = page(client, world["users"]["commander"], view="station").content.decode()
    rows = station_rows(html)
    assert "By station" in html and "<th>Highest level</th>" in html and ">Unacknowledged</th>" in html
    assert "Flash flood (critical rainfall)" in rows["ST-RAIN-A"] and "Red" in rows["ST-RAIN-A"]
    active = Alarm.objects.filter(status__in=ACTIVE_STATUSES).count()
    assert f"4 stations · {active} alarms" in html and "View 4 alarms" in rows["ST-RAIN-A"]
    assert "按站点" not in html and "涉及规则" not in html
    client.cookies["django_language"] = "zh-hans"
    html = page(client, world["users"]["commander"], view="station").content.decode()
    assert "按站点" in html and "涉及规则" in html and "查看 4 条告警" in html
