"""The command map's monitoring layers (/api/v1/map/sensors, /api/v1/map/alarms): scoped to the caller, sensors
coloured by their current alarm level, open alarms most severe first; the page loads the layer script."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tianmu.conftest import OUTSIDE_MARK
from tianmu.sensing.models import Alarm
from tianmu.sensing.services import acknowledge_alarm, close_alarm, ingest_messages
from tianmu.sensing.tests.conftest import base_time, make_sensor, make_station

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)


def send(sensor, *readings):
    body = {"readings": [{"ts": ts.isoformat(), "value": v} for ts, v in readings]}
    ingest_messages([(f"tianmu/v1/{sensor.station.code}/{sensor.code}/data", json.dumps(body).encode())])


@pytest.fixture
def gauges(world):
    admin = world["users"]["admin"]
    t0 = base_time()
    a = make_sensor(admin, make_station(admin, world["village_a"], "ST-A"), "RG-A", valid_min=0, valid_max=200)
    level = make_sensor(admin, make_station(admin, world["village_a"], "ST-W", "water_level", warning_level_m=3.0,
                                            guaranteed_level_m=4.0), "WL-A", "water_level")
    b = make_sensor(admin, make_station(admin, world["village_b"], "ST-B", name=f"{OUTSIDE_MARK}雨量站"), "RG-B",
                    valid_min=0, valid_max=200)
    quiet = make_sensor(admin, make_station(admin, world["village_a"], "ST-Q"), "RG-Q")
    send(a, *[(t0 + i * 5 * M, 3.0) for i in range(12)])  # 36 mm in an hour: flash-flood orange (dry soil)
    send(level, (t0, 4.5))  # over the guaranteed level: red
    send(b, *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    return {"a": a, "level": level, "b": b, "quiet": quiet}


def get(client, user, path):
    client.force_login(user)
    res = client.get(f"/api/v1/map{path}")
    assert res.status_code == 200, res.content
    return res.json()


def test_sensor_layer_is_scoped_and_coloured(client, world, gauges):
    data = get(client, world["users"]["town_staff"], "/sensors")
    fields = data["fields"]
    rows = {r[fields.index("code")]: dict(zip(fields, r, strict=True)) for r in data["features"]}
    assert set(rows) == {"RG-A", "WL-A", "RG-Q"}
    assert rows["WL-A"]["alarm_level"] == "red" and rows["WL-A"]["value"] == 4.5 and rows["WL-A"]["unit"] == "m"
    assert rows["RG-A"]["alarm_level"] == "orange"
    assert rows["RG-Q"]["alarm_level"] == "" and rows["RG-Q"]["value"] is None  # never reported: grey, no value
    assert rows["RG-A"]["observed_at"].endswith("+08:00")
    assert data["levels"] == {"red": 1, "orange": 1, "none": 1}
    assert OUTSIDE_MARK not in json.dumps(data, ensure_ascii=False)
    everyone = get(client, world["users"]["leader"], "/sensors")
    assert len(everyone["features"]) == 4


def test_alarm_layer_lists_open_alarms_most_severe_first(client, world, gauges):
    commander = world["users"]["commander"]
    data = get(client, commander, "/alarms")
    assert [a["level"] for a in data["alarms"]][:1] == ["red"]
    codes = {a["sensor_code"] for a in data["alarms"]}
    assert codes == {"RG-A", "WL-A", "RG-B"}
    ranks = [["blue", "yellow", "orange", "red"].index(a["level"]) for a in data["alarms"]]
    assert ranks == sorted(ranks, reverse=True)
    river = next(a for a in data["alarms"] if a["sensor_code"] == "WL-A")
    assert river["level_label"] == "红色" and river["town_name"] == "甲镇" and river["unit"] == "m"
    assert data["levels"]["red"] == 2 and data["count"] == len(data["alarms"])

    mine = get(client, world["users"]["town_staff"], "/alarms")
    assert {a["sensor_code"] for a in mine["alarms"]} == {"RG-A", "WL-A"}
    assert OUTSIDE_MARK not in json.dumps(mine, ensure_ascii=False)

    # Acknowledged alarms stay on the map; closed ones leave it.
    alarm_id = next(a["id"] for a in mine["alarms"] if a["sensor_code"] == "WL-A")
    acknowledge_alarm(commander, Alarm.objects.get(pk=alarm_id))
    assert any(a["id"] == alarm_id and a["status"] == "acknowledged" for a in get(client, commander, "/alarms")["alarms"])
    close_alarm(commander, Alarm.objects.get(pk=alarm_id), "已处置")
    assert all(a["id"] != alarm_id for a in get(client, commander, "/alarms")["alarms"])


def test_monitoring_layers_need_authentication(client, gauges):
    assert client.get("/api/v1/map/sensors").status_code == 401
    assert client.get("/api/v1/map/alarms").status_code == 401


def test_map_page_loads_the_monitoring_layers(client, world, gauges):
    client.force_login(world["users"]["town_staff"])
    html = client.get("/").content.decode()
    assert "sensing/map.js" in html and "sensing/map.css" in html
    assert 'data-sensing="sensors"' in html and 'id="alarm-list"' in html
    config = json.loads(html.split('<script id="map-layer-sensing" type="application/json">')[1].split("</script>")[0])
    assert config["sensorUrl"] == "/sensing/sensors/{id}/" and config["eventsUrl"] == "/events/stream"
    assert config["labels"]["levels"]["red"] == "红色"
