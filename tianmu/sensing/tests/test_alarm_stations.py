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
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Event
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record, update_record
from tianmu.sensing.choices import ACTIVE_STATUSES, LEVEL_RANK
from tianmu.sensing.models import Alarm, Sensor
from tianmu.sensing.queries import AlarmFilter, alarms_by_station, open_alarms_by_group, station_groups
from tianmu.sensing.services import acknowledge_alarm, acknowledge_station_alarms, close_alarm

from .conftest import make_sensor
from .test_pages import assert_csp_clean
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
    # What 确认全部 would acknowledge on each row: one more query for the page.
    with CaptureQueriesContext(connection) as ctx:
        pending = open_alarms_by_group(commander, [g["group"] for g in groups])
    assert len(ctx.captured_queries) == 1
    assert {g["code"]: len(pending.get(g["group"], [])) for g in groups} == {
        "ST-RAIN-A": 3, "ST-LEVEL-A": 1, "GS-A": 1, "ST-RAIN-B": 2}
    assert [a["level"] for a in pending[groups[0]["group"]]] == sorted(
        (a["level"] for a in pending[groups[0]["group"]]), key=lambda lv: -LEVEL_RANK[lv])


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


# ---- 确认全部: acknowledging a station's open alarms at once ---------------------------------------------------------

ACK_API = API + "/{key}/acknowledge"


def open_of(**where) -> list[Alarm]:
    return list(Alarm.objects.filter(status="open", **where).order_by("pk"))


def seen_of(alarms) -> list[tuple[int, str]]:
    """The guard a page showing these alarms sends back."""
    return [(a.pk, a.level) for a in alarms]


def snapshot() -> dict[int, tuple]:
    return {a["id"]: a for a in Alarm.objects.values("id", "status", "level", "acknowledged_by", "acknowledged_at",
                                                     "acknowledged_note", "closed_by")}


def test_station_alarms_acknowledged_at_once_with_one_event_each(world, net, grouped):
    staff, commander = world["users"]["town_staff"], world["users"]["commander"]
    rain_a = net["stations"]["rain_a"]
    shown = open_of(station=rain_a)
    # Two sensors, three open rules; the flash flood was acknowledged before by the commander.
    assert {f"{a.sensor.code}:{a.rule}" for a in shown} == {"RG-A:rainstorm", "RG-A:geohazard", "WL-A2:rise_rate"}
    before = snapshot()
    events_before = set(Event.objects.values_list("pk", flat=True))

    n = acknowledge_station_alarms(staff, rain_a, "  已通知甲一村转移低洼户  ", seen=seen_of(shown))

    assert n == 3
    after = snapshot()
    done = {a.pk for a in shown}
    stamps = set()
    for pk in done:
        a = after[pk]
        assert (a["status"], a["acknowledged_by"], a["acknowledged_note"]) == ("acknowledged", staff.pk,
                                                                                "已通知甲一村转移低洼户")
        assert a["level"] == before[pk]["level"]
        stamps.add(a["acknowledged_at"])
    assert len(stamps) == 1 and None not in stamps
    # Everything else as it was: the earlier acknowledgement, the other station, town B, the closed alarm.
    assert {pk: row for pk, row in after.items() if pk not in done} == {
        pk: row for pk, row in before.items() if pk not in done}
    assert after[grouped["RG-A:flash_flood"].pk]["acknowledged_by"] == commander.pk
    # One acknowledged event per alarm, as acknowledge_alarm writes it (actor, region, note), and nothing else.
    new = list(Event.objects.exclude(pk__in=events_before).order_by("pk"))
    assert [e.type for e in new] == ["sensing.alarm.acknowledged"] * 3
    assert sorted(e.subject for e in new) == sorted(f"alarm:{pk}" for pk in done)
    for e in new:
        assert e.actor_id == staff.pk and e.region_id == world["village_a"].pk
        assert e.payload["note"] == "已通知甲一村转移低洼户" and e.payload["status"] == "acknowledged"
        assert e.payload["station"] == "ST-RAIN-A" and e.payload["together"] == 3
    # The grouped view now counts nothing unacknowledged at that station.
    rows = {g["code"]: g for g in station_groups(staff, list(alarms_by_station(staff, AlarmFilter(status="active"))))}
    assert rows["ST-RAIN-A"]["unacknowledged"] == 0 and rows["ST-LEVEL-A"]["unacknowledged"] == 1

    # A stand-alone device is a group of its own, named by its sensor.
    gas = Sensor.objects.get(code="GS-A")
    assert acknowledge_station_alarms(staff, gas, "", seen=seen_of(open_of(sensor=gas))) == 1
    assert open_of(sensor=gas) == [] and Alarm.objects.get(sensor=gas).acknowledged_note == ""
    # Nothing left to acknowledge is said so.
    with pytest.raises(ServiceError) as exc:
        acknowledge_station_alarms(staff, rain_a, "", seen=seen_of(shown))
    assert list(exc.value.errors) == ["status"]


def assert_stale(exc, *texts_en):
    errors = exc.value.as_list()
    assert {e["field"] for e in errors} == {"seen"}
    for text in texts_en:
        assert any(text in e["message_en"] for e in errors), (text, errors)
    assert all(e["message"] != e["message_en"] and "请核对后再确认" in e["message"] for e in errors)


def test_a_stale_view_acknowledges_nothing(world, net, grouped, t0):
    """What the page showed is the guard: an alarm escalated, opened or re-opened since refuses the whole batch,
    so a new red alarm is never acknowledged blind; what others acknowledged meanwhile is simply left out."""
    staff = world["users"]["town_staff"]
    rain_a, gauge = net["stations"]["rain_a"], net["rain_a"]
    second = Sensor.objects.get(code="WL-A2")

    # An open alarm escalates after the page was drawn: more rain lifts the geohazard alarm from blue to yellow.
    shown = seen_of(open_of(station=rain_a))
    send(gauge, (t0 + 60 * M, 10.0))
    geo = Alarm.objects.get(sensor=gauge, rule="geohazard", status="open")
    assert (dict(shown)[geo.pk], geo.level) == ("blue", "yellow")
    before = snapshot()
    with pytest.raises(ServiceError) as exc:
        acknowledge_station_alarms(staff, rain_a, "一并确认", seen=shown)
    assert_stale(exc, "level")
    assert snapshot() == before

    # A new alarm on the station: the gauge reports beyond its range (a device fault).
    shown = seen_of(open_of(station=rain_a))
    send(gauge, (t0 + 61 * M, 500.0))
    fault = Alarm.objects.get(sensor=gauge, rule="out_of_range")
    assert fault.status == "open" and fault.pk not in dict(shown)
    before = snapshot()
    with pytest.raises(ServiceError) as exc:
        acknowledge_station_alarms(staff, rain_a, "一并确认", seen=shown)
    assert_stale(exc, "new")
    assert snapshot() == before

    # An acknowledged alarm that escalates needs a new look: open again, and not among those shown.
    rise = Alarm.objects.get(sensor=second, rule="rise_rate")
    acknowledge_alarm(staff, rise, "巡查中")
    shown = seen_of(open_of(station=rain_a))
    send(second, (t0 + 5 * M, 3.2))
    rise.refresh_from_db()
    assert (rise.status, rise.level) == ("open", "red") and rise.pk not in dict(shown)
    before = snapshot()
    with pytest.raises(ServiceError) as exc:
        acknowledge_station_alarms(staff, rain_a, "", seen=shown)
    assert_stale(exc, "new")
    assert snapshot() == before

    # Shown, then acknowledged by someone else: no reason to refuse; the rest is acknowledged.
    shown = open_of(station=rain_a)
    acknowledge_alarm(world["users"]["commander"], shown[0], "指挥中心已确认")
    assert acknowledge_station_alarms(staff, rain_a, "", seen=seen_of(shown)) == len(shown) - 1 == 3
    assert Alarm.objects.get(pk=shown[0].pk).acknowledged_note == "指挥中心已确认"
    assert open_of(station=rain_a) == []


def test_the_guard_must_be_well_formed(world, net, grouped):
    staff = world["users"]["town_staff"]
    rain_a = net["stations"]["rain_a"]
    shown = seen_of(open_of(station=rain_a))
    before = snapshot()
    for seen in ([(shown[0][0], "purple")], [("x", "red")], [(shown[0][0], "red"), (shown[0][0], "blue")], "12:red",
                 None, [(1,)]):
        with pytest.raises(ServiceError) as exc:
            acknowledge_station_alarms(staff, rain_a, "", seen=seen)
        assert list(exc.value.errors) == ["seen"], seen
    # Nothing shown while the station has open alarms: they would all be acknowledged blind.
    with pytest.raises(ServiceError) as exc:
        acknowledge_station_alarms(staff, rain_a, "", seen=[])
    assert_stale(exc, "new")
    assert snapshot() == before


def test_station_acknowledgement_is_all_or_nothing_on_scope(world, net, grouped, t0):
    """A station that moved to town B keeps its earlier alarms in town A, where they opened, and opens new ones in
    B: nobody whose scope covers only one of the towns acknowledges any of them; the commander all."""
    users = world["users"]
    rain_a = net["stations"]["rain_a"]
    village_b = world["village_b"]
    rain_a = update_record(users["admin"], get_kind("stations"), rain_a,
                           {"region": village_b.code, "lon": village_b.lon + 0.002, "lat": village_b.lat + 0.002})
    send(net["rain_a"], (t0 + 61 * M, 500.0))
    alarms = open_of(station=rain_a)
    assert {a.region.code for a in alarms} == {world["village_a"].code, village_b.code}
    before = snapshot()
    for role in ("town_staff", "village_responder", "other_town_staff", "leader", "api_client"):
        with pytest.raises(ScopeError):
            acknowledge_station_alarms(users[role], rain_a, "越权", seen=seen_of(alarms))
        assert snapshot() == before, role
    # Scope is judged before the guard: a stale view outside one's scope is still a refusal of scope.
    with pytest.raises(ScopeError):
        acknowledge_station_alarms(users["town_staff"], rain_a, "", seen=[])
    assert acknowledge_station_alarms(users["commander"], rain_a, "", seen=seen_of(alarms)) == len(alarms) == 4


def post_ack(client, key, body):
    return client.post(ACK_API.format(key=key), body, content_type="application/json")


def test_api_acknowledges_a_station(world, net, grouped, client):
    rain_a = net["stations"]["rain_a"]
    shown = [{"id": pk, "level": level} for pk, level in seen_of(open_of(station=rain_a))]
    before = snapshot()
    client.force_login(world["users"]["leader"])  # reads everything, changes nothing
    r = post_ack(client, "ST-RAIN-A", {"note": "x", "seen": shown})
    assert r.status_code == 403 and r.json()["code"] == "forbidden" and r.json()["message_en"]
    client.force_login(world["users"]["other_town_staff"])  # another town's station: not even visible
    assert post_ack(client, "ST-RAIN-A", {"note": "x", "seen": shown}).status_code == 404
    client.force_login(world["users"]["town_staff"])
    assert post_ack(client, "ST-RAIN-B", {"note": "x", "seen": []}).status_code == 404
    assert post_ack(client, "NO-SUCH", {"note": "x", "seen": []}).status_code == 404
    # Bad input: per-field messages in both languages.
    r = post_ack(client, "ST-RAIN-A", {"note": "x"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["seen"]
    assert r.json()["errors"][0]["message"] == "此项为必填项"
    r = post_ack(client, "ST-RAIN-A", {"seen": [{"id": "abc", "level": "red"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "seen.0.id"
    r = post_ack(client, "ST-RAIN-A", {"seen": [{**shown[0], "level": "purple"}, *shown[1:]]})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["seen"]
    r = post_ack(client, "ST-RAIN-A", {"note": "x", "seen": shown[1:]})  # one of them was not shown
    err = r.json()["errors"]
    assert r.status_code == 422 and [e["field"] for e in err] == ["seen"]
    assert "请核对后再确认" in err[0]["message"] and "new" in err[0]["message_en"]
    assert snapshot() == before

    r = post_ack(client, "ST-RAIN-A", {"note": "已通知", "seen": shown})
    assert r.status_code == 200 and r.json() == {"station": "ST-RAIN-A", "sensor": None, "acknowledged": 3}
    listed = client.get("/api/v1/sensing/alarms", {"station": "ST-RAIN-A", "status": "active"}).json()["results"]
    assert sorted((x["id"], x["status"], x["acknowledged_by"], x["acknowledged_note"]) for x in listed) == sorted(
        [(x["id"], "acknowledged", str(world["users"]["town_staff"]), "已通知") for x in shown]
        + [(grouped["RG-A:flash_flood"].pk, "acknowledged", str(world["users"]["commander"]), "已通知")])
    rows = {x["station"] or x["sensor"]: x["unacknowledged"] for x in client.get(API).json()["results"]}
    assert rows == {"ST-RAIN-A": 0, "ST-LEVEL-A": 1, "GS-A": 1}
    r = post_ack(client, "ST-RAIN-A", {"note": "", "seen": shown})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    # A stand-alone device by its sensor code, as the by-station rows name it.
    gas = open_of(sensor__code="GS-A")
    r = post_ack(client, "GS-A", {"seen": [{"id": a.pk, "level": a.level} for a in gas]})
    assert r.status_code == 200 and r.json() == {"station": None, "sensor": "GS-A", "acknowledged": 1}
    # Documented in the OpenAPI description, guard included.
    spec = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/sensing/alarms/by-station/{key}/acknowledge"]
    assert "确认该站全部告警" in spec["post"]["summary"] and "seen" in spec["post"]["summary"]


def ack_forms(html: str) -> dict[str, str]:
    """station code → the 确认全部 form of its row."""
    return {code: form for code, form in re.findall(
        r'<tr data-id="g-?\d+"[^>]*data-station="([^"]+)"[^>]*>.*?(<details class="act ack-station">.*?</details>)',
        html, re.S) if form}


def test_page_offers_acknowledge_all_to_writers_of_the_station(client, world, net, grouped):
    rain_a = net["stations"]["rain_a"]
    html = page(client, world["users"]["town_staff"], view="station").content.decode()
    assert_csp_clean(html)
    forms = ack_forms(html)
    # Every row of theirs with open alarms; the count is the station's open alarms, listed with their levels.
    assert set(forms) == {"ST-RAIN-A", "ST-LEVEL-A", "GS-A"}
    form = forms["ST-RAIN-A"]
    assert "确认全部 <b>3</b>" in form and "确认 3 条告警" in form
    seen = re.search(r'name="seen" value="([^"]*)"', form).group(1)
    assert sorted(seen.split()) == sorted(f"{pk}:{level}" for pk, level in seen_of(open_of(station=rain_a)))
    for label in ("暴雨(气象预警信号标准)", "地质灾害(有效降雨量)", "水位涨率", "WL-A2"):
        assert label in form
    assert "山洪(临界雨量)" not in form  # already acknowledged: not part of the batch
    assert 'action="/sensing/alarms/by-station/ST-RAIN-A/acknowledge/"' in form
    assert 'data-ack-api="/api/v1/sensing/alarms/by-station/ST-RAIN-A/acknowledge"' in form
    assert 'name="csrfmiddlewaretoken"' in form and 'name="note"' in form
    # The guard is the station's, whatever the filter: with level=red the row counts one alarm, the form three.
    red = ack_forms(page(client, world["users"]["town_staff"], view="station", level="red").content.decode())
    assert "确认全部 <b>3</b>" in red["ST-RAIN-A"]
    # Leaders read everything and act on nothing; the commander acts everywhere.
    leader = page(client, world["users"]["leader"], view="station").content.decode()
    assert "ST-RAIN-A" in leader and ack_forms(leader) == {} and "确认全部" not in leader
    assert set(ack_forms(page(client, world["users"]["commander"], view="station").content.decode())) == {
        "ST-RAIN-A", "ST-LEVEL-A", "GS-A", "ST-RAIN-B"}
    # In English.
    client.cookies["django_language"] = "en"
    english = ack_forms(page(client, world["users"]["town_staff"], view="station").content.decode())["ST-RAIN-A"]
    assert "Acknowledge all <b>3</b>" in english and "Acknowledge 3 alarms" in english
    client.cookies["django_language"] = "zh-hans"


def test_page_form_acknowledges_without_javascript(client, world, net, grouped):
    staff = world["users"]["town_staff"]
    rain_a = net["stations"]["rain_a"]
    client.force_login(staff)
    url = "/sensing/alarms/by-station/ST-RAIN-A/acknowledge/"
    shown = " ".join(f"{pk}:{level}" for pk, level in seen_of(open_of(station=rain_a)))
    before = snapshot()
    # Stale (one alarm missing from what was shown): refused, said on the page it returns to.
    r = client.post(url, {"note": "x", "seen": shown.split()[0], "next": "/sensing/alarms/?view=station"}, follow=True)
    assert r.redirect_chain == [("/sensing/alarms/?view=station", 302)] and "请核对后再确认" in r.content.decode()
    assert snapshot() == before
    r = client.post(url, {"note": "已通知低洼户", "seen": shown, "next": "/sensing/alarms/?view=station"}, follow=True)
    assert "已确认 测试站ST-RAIN-A 的 3 条告警" in r.content.decode()
    assert open_of(station=rain_a) == [] and set(Alarm.objects.filter(acknowledged_note="已通知低洼户").values_list(
        "pk", flat=True)) == {int(token.split(":")[0]) for token in shown.split()}
    assert client.get(url).status_code == 405
    # Another town's station: not even visible; a leader is refused.
    assert client.post("/sensing/alarms/by-station/ST-RAIN-B/acknowledge/", {"seen": ""}).status_code == 404
    client.force_login(world["users"]["leader"])
    b = open_of(station=net["stations"]["rain_b"])
    client.post("/sensing/alarms/by-station/ST-RAIN-B/acknowledge/", {"seen": " ".join(f"{a.pk}:{a.level}" for a in b)})
    assert open_of(station=net["stations"]["rain_b"]) == b
