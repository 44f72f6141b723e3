"""Monitoring pages: the alarm list (filters, scope, acknowledge and close through the services, live fragment),
a sensor's chart page, the dead letters; strict CSP (no inline script)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tianmu.conftest import OUTSIDE_MARK
from tianmu.core.models import DeadLetter
from tianmu.sensing.models import Alarm

from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)


@pytest.fixture
def storm(net, t0):
    """A cloudburst on both towns' gauges and a river over its guaranteed level in town A: open alarms."""
    for sensor in (net["rain_a"], net["rain_b"]):
        send(sensor, *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    send(net["level_a"], (t0, 2.0), (t0 + 30 * M, 4.2))
    alarms = {a.sensor.code + ":" + a.rule: a for a in Alarm.objects.select_related("sensor")}
    assert {"RG-A:flash_flood", "RG-B:flash_flood", "WL-A:water_level"} <= set(alarms)
    return alarms


def page(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params)


def assert_csp_clean(html: str):
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", html)


def test_alarm_list_is_scoped_and_filtered(client, world, storm):
    users = world["users"]
    html = page(client, users["commander"], "/sensing/alarms/").content.decode()
    assert "RG-A" in html and "RG-B" in html and "WL-A" in html
    assert_csp_clean(html)
    assert 'href="/sensing/alarms/"' in html  # the top navigation's 监测预警 entry
    assert "蔺镇" in html  # the town filter lists every town for the district

    mine = page(client, users["town_staff"], "/sensing/alarms/").content.decode()
    assert "RG-A" in mine and "WL-A" in mine
    assert "RG-B" not in mine and OUTSIDE_MARK not in mine

    by_level = page(client, users["commander"], "/sensing/alarms/", level="red", rule="water_level").content.decode()
    assert "WL-A" in by_level and "RG-A" not in by_level
    by_town = page(client, users["commander"], "/sensing/alarms/", town=world["town_b"].code).content.decode()
    assert "RG-B" in by_town and "RG-A" not in by_town
    faults = page(client, users["commander"], "/sensing/alarms/", kind="device_fault").content.decode()
    assert "没有符合条件的告警" in faults
    # A town filter outside one's scope shows nothing of it; a malformed one is reported, not applied.
    other = page(client, users["town_staff"], "/sensing/alarms/", town=world["town_b"].code).content.decode()
    assert "RG-B" not in other and OUTSIDE_MARK not in other
    bad = page(client, users["commander"], "/sensing/alarms/", town="x'", level="purple")
    assert bad.status_code == 400 and "errorlist" in bad.content.decode()


def test_live_fragment_is_the_table_only(client, world, storm):
    res = page(client, world["users"]["town_staff"], "/sensing/alarms/", fragment="1", status="active")
    html = res.content.decode()
    assert res.status_code == 200 and "<html" not in html and 'id="alarms"' in html
    assert "RG-A" in html and OUTSIDE_MARK not in html
    # Actions return to the list itself, never to the fragment.
    assert "fragment" not in re.search(r'name="next" value="([^"]*)"', html).group(1)
    full = page(client, world["users"]["town_staff"], "/sensing/alarms/").content.decode()
    assert 'data-stream="/events/stream"' in full and "sensing/alarms.js" in full


def test_acknowledge_and_close_through_the_services(client, world, storm):
    staff = world["users"]["town_staff"]
    a, b = storm["RG-A:flash_flood"], storm["RG-B:flash_flood"]
    client.force_login(staff)
    res = client.post(f"/sensing/alarms/{a.pk}/acknowledge/", {"note": "已通知村里", "next": "/sensing/alarms/?level=red"})
    assert res.status_code == 302 and res["Location"] == "/sensing/alarms/?level=red"
    a.refresh_from_db()
    assert a.status == "acknowledged" and a.acknowledged_by == staff and a.acknowledged_note == "已通知村里"

    # Another town's alarm: not even visible.
    assert client.post(f"/sensing/alarms/{b.pk}/acknowledge/", {"note": "x"}).status_code == 404
    assert client.post(f"/sensing/alarms/{b.pk}/close/", {"note": "x"}).status_code == 404
    b.refresh_from_db()
    assert b.status == "open"

    # Closing needs a note; an unsafe `next` falls back to the list.
    client.post(f"/sensing/alarms/{a.pk}/close/", {"note": ""})
    a.refresh_from_db()
    assert a.status == "acknowledged"
    res = client.post(f"/sensing/alarms/{a.pk}/close/", {"note": "雨停,巡查无险情", "next": "https://evil.example/"})
    assert res.status_code == 302 and res["Location"] == "/sensing/alarms/"
    a.refresh_from_db()
    assert a.status == "closed" and a.closed_note == "雨停,巡查无险情"
    assert client.get(f"/sensing/alarms/{a.pk}/close/").status_code == 405


def test_read_only_roles_cannot_act(client, world, storm):
    b = storm["RG-B:flash_flood"]
    for role in ("leader", "api_client"):
        client.force_login(world["users"][role])
        html = client.get("/sensing/alarms/").content.decode()
        assert f'/sensing/alarms/{b.pk}/acknowledge/' not in html, role
        client.post(f"/sensing/alarms/{b.pk}/acknowledge/", {"note": "x"})
        b.refresh_from_db()
        assert b.status == "open", role
    client.force_login(world["users"]["commander"])
    html = client.get("/sensing/alarms/").content.decode()
    assert f'/sensing/alarms/{b.pk}/acknowledge/' in html


def test_sensor_page_draws_thresholds_and_is_scoped(client, world, net, storm):
    res = page(client, world["users"]["town_staff"], f"/sensing/sensors/{net['level_a'].pk}/")
    html = res.content.decode()
    assert res.status_code == 200
    assert_csp_clean(html)
    config = json.loads(re.search(r'<script id="sensor-config" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert config["code"] == "WL-A" and config["readingsUrl"] == "/api/v1/sensing/sensors/WL-A/readings"
    assert [(t["level"], t["value"]) for t in config["thresholds"]["levels"]] == [("yellow", 3.0), ("red", 4.0)]
    assert "vendor/echarts/echarts.min.js" in html and "sensing/sensor.js" in html
    rain = json.loads(re.search(r'id="sensor-config" type="application/json">(.*?)</script>',
                                page(client, world["users"]["commander"],
                                     f"/sensing/sensors/{net['rain_a'].pk}/").content.decode(), re.S).group(1))
    assert rain["thresholds"]["metric"] == "rain_1h" and rain["thresholds"]["soil"] == "dry"
    assert [t["value"] for t in rain["thresholds"]["levels"]] == [32, 40]
    assert page(client, world["users"]["town_staff"], f"/sensing/sensors/{net['rain_b'].pk}/").status_code == 404


def test_dead_letters_page_for_district_writers_only(client, world):
    DeadLetter.objects.create(source="mqtt", key="tianmu/v1/X/Y/data", payload='{"ts": 1}',
                              reason="readings[0] unknown_sensor: 未登记的传感器编码:Y")
    html = page(client, world["users"]["commander"], "/sensing/dead-letters/").content.decode()
    assert "unknown_sensor" in html and "tianmu/v1/X/Y/data" in html
    assert_csp_clean(html)
    for role in ("town_staff", "village_responder", "leader"):
        assert page(client, world["users"][role], "/sensing/dead-letters/").status_code == 403, role
    assert "/sensing/dead-letters/" not in page(client, world["users"]["town_staff"], "/sensing/alarms/").content.decode()


def test_latest_page_links_sensors(client, world, net, storm):
    html = page(client, world["users"]["town_staff"], "/sensing/").content.decode()
    assert f'/sensing/sensors/{net["rain_a"].pk}/' in html and OUTSIDE_MARK not in html


def test_sensor_list_searches_filters_by_town_and_pages(client, world, net, storm, monkeypatch):
    commander = world["users"]["commander"]
    everything = page(client, commander, "/sensing/").content.decode()
    assert "RG-A" in everything and "RG-B" in everything and "WL-A" in everything
    found = page(client, commander, "/sensing/", q="rg-").content.decode()
    assert "RG-A" in found and "RG-B" in found and "WL-A" not in found
    by_station = page(client, commander, "/sensing/", q="ST-LEVEL").content.decode()
    assert "WL-A" in by_station and "RG-A" not in by_station
    town_b = page(client, commander, "/sensing/", town=world["town_b"].code).content.decode()
    assert "RG-B" in town_b and "RG-A" not in town_b
    levels = page(client, commander, "/sensing/", sensor_type="water_level").content.decode()
    assert "WL-A" in levels and "RG-A" not in levels
    # Town staff asking for the other town get nothing of it; bad values are reported, not applied.
    other = page(client, world["users"]["town_staff"], "/sensing/", town=world["town_b"].code).content.decode()
    assert "RG-B" not in other and OUTSIDE_MARK not in other
    bad = page(client, commander, "/sensing/", town="x", sensor_type="laser")
    assert bad.status_code == 400 and "errorlist" in bad.content.decode()
    # Paging keeps the filters.
    monkeypatch.setattr("tianmu.sensing.views.LATEST_PAGE_SIZE", 1)
    first = page(client, commander, "/sensing/", q="RG").content.decode()
    assert re.search(r'href="\?q=RG&amp;page=2"', first)
    second = page(client, commander, "/sensing/", q="RG", page="2").content.decode()
    shown = [c for c in ("RG-A", "RG-B") if c in first.split('id="latest"')[1]]
    shown2 = [c for c in ("RG-A", "RG-B") if c in second.split('id="latest"')[1]]
    assert len(shown) == len(shown2) == 1 and shown != shown2
