"""Alarms that belong to hazard zones (issue 9): the representation map (a zone's N nearest gauges within a
distance, per zone rule), flash-flood critical rainfall only at gauges that represent a danger zone, and the
alarm detail (page and API) that lists the zones an alarm stands for."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tianmu.conftest import record_data
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record
from tianmu.sensing.choices import ACTIVE_STATUSES
from tianmu.sensing.models import Alarm
from tianmu.sensing.services import acknowledge_alarm, ingest_messages
from tianmu.sensing.services.directory import ZONE_RULES, representing_gauges

from .conftest import make_sensor, make_station

M = timedelta(minutes=1)
H = timedelta(hours=1)
KM_LON = 1 / 96.3  # degrees of longitude per km at 30.15° N (about)


def send(sensor, *readings):
    station = sensor.station.code if sensor.station_id else "-"
    body = {"readings": [{"ts": ts.isoformat(), "value": v} for ts, v in readings]}
    return ingest_messages([(f"tianmu/v1/{station}/{sensor.code}/data", json.dumps(body).encode())])


def active(sensor, rule):
    return Alarm.objects.filter(sensor=sensor, rule=rule, status__in=ACTIVE_STATUSES).first()


def zone(world, lon, lat, *, hazard_type="flash_flood", suffix="1", region="village_a", **extra):
    kind = get_kind("hazards")
    return create_record(world["users"]["admin"], kind, record_data(
        kind, world[region], f"{hazard_type[:3]}-{suffix}", lon=lon, lat=lat, hazard_type=hazard_type, **extra))


def gauge(world, code, lon, lat, region="village_a"):
    admin = world["users"]["admin"]
    station = make_station(admin, world[region], f"ST-{code}", lon=lon, lat=lat)
    return make_sensor(admin, station, code, valid_min=0, valid_max=200)


def test_every_zone_rule_names_a_hazard_type_and_its_settings():
    from tianmu.registry.choices import HazardType
    from tianmu.sensing.conf import conf

    assert ZONE_RULES["flash_flood"].hazard_type == HazardType.FLASH_FLOOD
    assert ZONE_RULES["geohazard"].hazard_type == HazardType.GEOLOGICAL
    for rule in ZONE_RULES.values():
        for name in ("RADIUS_M", "GAUGES_PER_ZONE", "RISK_LEVELS"):
            conf(f"{rule.settings}_{name}")  # declared with a default


def test_a_zone_is_represented_by_its_nearest_gauges_within_the_distance(world, settings):
    """A hand-made layout on one parallel (x in km east of village A's centre): gauges at 0, 2, 3 and 9 km,
    danger zones at 1.1 km (nearest: the 2 km gauge, then the one at 0), 8.5 km (the 9 km gauge) and 20 km (none
    within 5 km)."""
    lon0, lat = world["village_a"].lon, world["village_a"].lat
    g0, g2, g3 = (gauge(world, f"RG-{x}", lon0 + x * KM_LON, lat) for x in (0, 2, 3))
    g9 = gauge(world, "RG-9", lon0 + 9 * KM_LON, lat, region="town_a")
    near = zone(world, lon0 + 1.1 * KM_LON, lat, suffix="near")
    east = zone(world, lon0 + 8.5 * KM_LON, lat, suffix="east", region="town_a")
    zone(world, lon0 + 20 * KM_LON, lat, suffix="far", region="village_b")
    geo = zone(world, lon0 + 3 * KM_LON, lat, hazard_type="geological", suffix="geo")  # another rule's zone

    settings.SENSING_FLASH_FLOOD_RADIUS_M, settings.SENSING_FLASH_FLOOD_GAUGES_PER_ZONE = 5000, 1
    assert representing_gauges("flash_flood").zones == {g2.pk: (near.pk,), g9.pk: (east.pk,)}  # 0.9 km, 0.5 km
    settings.SENSING_FLASH_FLOOD_GAUGES_PER_ZONE = 2
    # The near zone's two nearest (0.9 and 1.1 km); the east zone's second nearest (3 km gauge, 5.5 km away) is
    # beyond the radius.
    assert representing_gauges("flash_flood").zones == {g0.pk: (near.pk,), g2.pk: (near.pk,), g9.pk: (east.pk,)}
    settings.SENSING_FLASH_FLOOD_RADIUS_M = 400
    assert representing_gauges("flash_flood").zones == {}  # zones exist, none has a gauge that near
    # Each rule has its own zones: the geological zone at 3 km belongs to the gauge there, under geohazard's settings.
    assert representing_gauges("geohazard").zones == {g3.pk: (geo.pk,)}


def test_only_the_risk_levels_that_count(world, settings):
    lon0, lat = world["village_a"].lon, world["village_a"].lat
    g = gauge(world, "RG-0", lon0, lat)
    low = zone(world, lon0 + 0.5 * KM_LON, lat, suffix="low", risk_level="low")
    major = zone(world, lon0 - 0.5 * KM_LON, lat, suffix="major", risk_level="major")
    assert set(representing_gauges("flash_flood").zones[g.pk]) == {low.pk, major.pk}
    settings.SENSING_FLASH_FLOOD_RISK_LEVELS = ["major"]
    assert representing_gauges("flash_flood").zones == {g.pk: (major.pk,)}


def test_flash_flood_alarms_only_at_gauges_that_represent_a_danger_zone(world, net, t0):
    """The same 60 mm in an hour: gauge A (1 km from a danger zone) raises flash flood red (立即转移); gauge B
    (19 km away) raises none, and its rainstorm and geohazard rules are unchanged (no geological zone is
    registered, so every gauge still evaluates geohazard)."""
    a, b = net["rain_a"], net["rain_b"]
    zone(world, a.lon + KM_LON, a.lat)
    for sensor in (a, b):
        send(sensor, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    assert active(a, "flash_flood").level == "red"
    assert active(b, "flash_flood") is None
    for sensor in (a, b):
        assert active(sensor, "rainstorm").level == "orange" and active(sensor, "geohazard").level == "blue"


def test_without_any_danger_zone_every_gauge_evaluates_flash_flood(world, net, t0):
    a, b = net["rain_a"], net["rain_b"]
    zone(world, a.lon + KM_LON, a.lat, hazard_type="geological")  # a geological zone does not count
    for sensor in (a, b):
        send(sensor, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    assert active(a, "flash_flood").level == "red" and active(b, "flash_flood").level == "red"
    assert active(b, "geohazard") is None  # but geohazard now belongs to the geological zone near A


def test_a_flash_flood_alarm_of_a_gauge_that_stops_representing_clears(world, net, t0):
    a = net["rain_a"]
    send(a, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    assert active(a, "flash_flood").level == "red"  # no danger zone registered yet
    zone(world, a.lon + 0.2, a.lat, region="village_b")  # 19 km away: A represents nothing
    send(a, *[(t0 + H + i * 5 * M, 0.0) for i in range(1, 4)])
    assert active(a, "flash_flood").cleared_at is not None


# ---- the alarm detail ------------------------------------------------------------------------------------------

@pytest.fixture
def flood(world, net, t0, settings):
    """Flash flood red at gauge A, which represents two danger zones (each zone's 2 nearest gauges within 20 km):
    one in village A1, one across the border in village B1 (15 km east of A); acknowledged with a note by the
    town's staff."""
    settings.SENSING_FLASH_FLOOD_RADIUS_M, settings.SENSING_FLASH_FLOOD_GAUGES_PER_ZONE = 20000, 2
    a = net["rain_a"]
    mine = zone(world, a.lon + KM_LON, a.lat, suffix="mine", threatened_people=321, threatened_households=97,
                responsible_unit="甲镇人民政府")
    theirs = zone(world, world["village_b"].lon - 0.04, a.lat, suffix="theirs", region="village_b",
                  threatened_people=55)
    send(a, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    alarm = active(a, "flash_flood")
    acknowledge_alarm(world["users"]["town_staff"], alarm, note="已通知村里转移<b>")
    return {"alarm": alarm, "mine": mine, "theirs": theirs}


def page(user, url):
    client = Client()
    client.force_login(user)
    return client.get(url)


def test_the_alarm_page_explains_the_alarm(world, flood):
    alarm = flood["alarm"]
    r = page(world["users"]["town_staff"], f"/sensing/alarms/{alarm.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    # What triggered it, against the threshold row that applied: at the 8th reading 40 mm in 1 h ≥ 40 mm (dry soil),
    # 立即转移 (the value and data time of its last level change).
    assert "40 mm</b> ≥ 40 mm" in html and "立即转移" in html and "土壤干燥" in html
    assert '<td class="num reached">≥ 40</td>' in html  # the red cell of the dry-soil row 32 / 40
    # Its history from the events, with who and the note (escaped: text from data is never HTML).
    assert "告警产生" in html and "确认" in html and "已通知村里转移&lt;b&gt;" in html and "town_a" in html
    # The hours around it: 12 of 5 mm in the hour ending at the alarm's data time.
    assert 'class="bar marked"' in html and "60" in html
    # The zone it stands for in the user's town, linked to its record; the one in town B only counted.
    mine, theirs = flood["mine"], flood["theirs"]
    assert f"/r/hazards/{mine.pk}/" in html and mine.code in html and "321" in html and "甲镇人民政府" in html
    assert theirs.code not in html and "另有 1 处危险区在您的辖区之外" in html
    # The lifecycle's button the user may press now: close (acknowledged already), posting to the generic view.
    assert f'action="/wf/sensing.alarm/{alarm.pk}/close/"' in html
    assert f"/wf/sensing.alarm/{alarm.pk}/acknowledge/" not in html


def test_the_district_sees_every_zone_and_a_leader_no_buttons(world, flood):
    alarm = flood["alarm"]
    html = page(world["users"]["commander"], f"/sensing/alarms/{alarm.pk}/").content.decode()
    assert flood["mine"].code in html and flood["theirs"].code in html and "辖区之外" not in html
    html = page(world["users"]["leader"], f"/sensing/alarms/{alarm.pk}/").content.decode()
    assert flood["theirs"].code in html and 'class="transitions"' not in html


def test_another_towns_alarm_is_a_404(world, flood):
    alarm = flood["alarm"]
    assert page(world["users"]["other_town_staff"], f"/sensing/alarms/{alarm.pk}/").status_code == 404
    assert page(world["users"]["other_town_staff"], f"/api/v1/sensing/alarms/{alarm.pk}").status_code == 404
    assert page(world["users"]["town_staff"], "/sensing/alarms/999999/").status_code == 404


def test_the_api_gives_the_alarm_with_its_zones_and_history(world, flood):
    alarm = flood["alarm"]
    r = page(world["users"]["town_staff"], f"/api/v1/sensing/alarms/{alarm.pk}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == alarm.pk and body["rule"] == "flash_flood" and body["level"] == "red"
    assert body["trigger"] == {"metric": "rain_1h", "metric_label": "1小时降雨量(mm)", "value": 40.0, "threshold": 40.0,
                               "level": "red", "meaning": "立即转移", "soil": "dry", "soil_label": "干燥",
                               "row": {"blue": None, "yellow": None, "orange": 32.0, "red": 40.0}}
    # Opened orange (准备转移) at 35 mm ≥ 32, escalated red at 40 mm, acknowledged by the town's staff with a note.
    assert [(h["event"], h["level"], h["value"], h["actor"]) for h in body["history"]] == [
        ("opened", "orange", 35.0, None), ("escalated", "red", 40.0, None), ("acknowledged", "red", 40.0, "town_a")]
    assert body["history"][2]["note"] == "已通知村里转移<b>"
    assert body["zones_registered"] is True and body["zones_outside_scope"] == 1
    (z,) = body["zones"]
    assert z == {"id": flood["mine"].pk, "code": flood["mine"].code, "name": flood["mine"].name,
                 "hazard_type": "山洪灾害危险区", "risk_level": flood["mine"].get_risk_level_display(),
                 "town": "甲镇", "village": "甲一村", "threatened_people": 321, "threatened_households": 97,
                 "responsible_unit": "甲镇人民政府"}
    assert any(s["value"] == 60.0 and s["marked"] for s in body["series"])


def test_the_api_schema_documents_the_detail(world):
    r = page(world["users"]["commander"], "/api/v1/openapi.json")
    spec = r.json()
    op = spec["paths"]["/api/v1/sensing/alarms/{alarm_id}"]["get"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    props = spec["components"]["schemas"][ref]["properties"]
    assert {"trigger", "history", "zones", "zones_registered", "zones_outside_scope", "series"} <= set(props)


def test_closing_from_the_alarm_page_returns_to_it(world, flood):
    """The page's 关闭 button posts to the generic transition view, which closes the alarm (note required) and
    comes back to the page, now with the closing in the history and no button left."""
    alarm = flood["alarm"]
    client = Client()
    client.force_login(world["users"]["town_staff"])
    here = f"/sensing/alarms/{alarm.pk}/"
    r = client.post(f"/wf/sensing.alarm/{alarm.pk}/close/", {"note": "", "next": here})
    alarm.refresh_from_db()
    assert r.status_code == 302 and r["Location"] == here and alarm.status == "acknowledged"  # refused: no note
    client.post(f"/wf/sensing.alarm/{alarm.pk}/close/", {"note": "已转移完毕", "next": here})
    alarm.refresh_from_db()
    assert alarm.status == "closed" and alarm.closed_by == world["users"]["town_staff"]
    html = client.get(here).content.decode()
    assert "已转移完毕" in html and 'class="transitions"' not in html


def test_a_device_fault_and_a_rule_without_zones_explain_themselves_too(world, net, t0):
    """No threshold row for a device fault; no zone section for a rule that belongs to none; and for a zone rule
    while no zone of its type is registered, the page says every gauge evaluates it."""
    from tianmu.sensing.services import check_no_data

    a, level = net["rain_a"], net["level_a"]
    send(a, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    send(level, (t0 + 5 * M, 4.2))
    check_no_data(now=timezone.now() + 5 * H)  # silent for 5 h of the wall clock: no-data faults
    user = world["users"]["commander"]
    geo = page(user, f"/sensing/alarms/{active(a, 'geohazard').pk}/").content.decode()
    assert "代表的危险区" in geo and "登记中尚无此类危险区" in geo
    water = page(user, f"/sensing/alarms/{active(level, 'water_level').pk}/").content.decode()
    assert "代表的危险区" not in water and "≥ 4</td>" in water.replace('class="num reached">', ">")
    fault = Alarm.objects.filter(rule="no_data", status__in=ACTIVE_STATUSES).first()
    r = page(user, f"/sensing/alarms/{fault.pk}/")
    assert r.status_code == 200 and "设备故障" in r.content.decode() and "适用的阈值" not in r.content.decode()
    body = page(user, f"/api/v1/sensing/alarms/{fault.pk}").json()
    assert body["trigger"]["row"] is None and body["zone_rule"] is False and body["zones"] == []
