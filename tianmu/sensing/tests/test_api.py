"""The monitoring API: scoped reads, acknowledging and closing alarms within scope, gateway submissions with
per-reading errors, CSV history import (dry run, all or nothing), dead letters and thresholds."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tianmu.conftest import OUTSIDE_MARK
from tianmu.core.errors import ScopeError
from tianmu.core.models import ApiToken, DeadLetter, Event
from tianmu.sensing.models import Alarm, HourlyAggregate, Reading
from tianmu.sensing.services import acknowledge_alarm, ingest_messages

API = "/api/v1/sensing"
M = timedelta(minutes=1)


def login(client, user):
    client.force_login(user)
    return client


def rain(net, sensor_key, t0, values, step=10 * M):
    sensor = net[sensor_key]
    body = {"readings": [{"ts": (t0 + i * step).isoformat(), "value": v} for i, v in enumerate(values)]}
    ingest_messages([(f"tianmu/v1/{sensor.station.code}/{sensor.code}/data", json.dumps(body).encode())])


@pytest.fixture
def storm(net, t0):
    """Rainstorm (orange) and flash-flood (red) alarms in village A1 and B1: 70 mm in an hour each."""
    rain(net, "rain_a", t0, [10.0] * 7)
    rain(net, "rain_b", t0, [10.0] * 7)
    return {"a": Alarm.objects.get(sensor=net["rain_a"], rule="rainstorm"),
            "b": Alarm.objects.get(sensor=net["rain_b"], rule="rainstorm")}


def test_latest_values_are_scoped(world, net, t0, storm, client):
    rows = login(client, world["users"]["town_staff"]).get(f"{API}/latest").json()
    assert {r["sensor"] for r in rows} == {"RG-A"}
    assert rows[0]["value"] == 10.0 and rows[0]["alarm_level"] == "red" and rows[0]["station"] == "ST-RAIN-A"
    rows = login(client, world["users"]["leader"]).get(f"{API}/latest", {"alarming": "true"}).json()
    assert {r["sensor"] for r in rows} == {"RG-A", "RG-B"}
    assert client.get(f"{API}/latest", {"sensor_type": "rainfall", "region": world["town_b"].code}).json()[0][
        "sensor"] == "RG-B"
    assert client.get(f"{API}/latest", {"level": "purple"}).status_code == 422


def test_sensor_readings_raw_hourly_and_daily(world, net, t0, storm, client):
    login(client, world["users"]["town_staff"])
    params = {"start": (t0 - M).isoformat(), "end": (t0 + 2 * 60 * M).isoformat()}
    r = client.get(f"{API}/sensors/RG-A/readings", params)
    assert r.status_code == 200 and [p[1] for p in r.json()["points"]] == [10.0] * 7
    r = client.get(f"{API}/sensors/RG-A/readings", {**params, "resolution": "hourly"})
    hours = r.json()["points"]
    assert sum(h[1] for h in hours) == 7 and sum(h[2] for h in hours) == 70.0
    assert client.get(f"{API}/sensors/RG-B/readings", params).status_code == 404  # another town's sensor
    days = client.get(f"{API}/sensors/RG-A/readings", {**params, "resolution": "daily"}).json()["points"]
    assert sum(d[1] for d in days) == 7 and sum(d[2] for d in days) == 70.0
    assert all(d[0].endswith("T08:00:00+08:00") for d in days)  # observation days start at 08:00 Beijing time
    assert client.get(f"{API}/sensors/RG-A/readings", {"resolution": "weekly"}).status_code == 422
    assert client.get(f"{API}/sensors/RG-A/readings", {"start": "yesterday"}).status_code == 422


def test_acknowledge_and_close_within_scope(world, net, storm, client):
    a, b = storm["a"], storm["b"]
    login(client, world["users"]["town_staff"])
    r = client.get(f"{API}/alarms", {"status": "active"})
    assert {x["rule"] for x in r.json()["results"]} == {"rainstorm", "flash_flood", "geohazard"}
    assert {x["sensor"] for x in r.json()["results"]} == {"RG-A"} and OUTSIDE_MARK not in r.text
    r = client.get(f"{API}/alarms", {"status": "active", "rule": "rainstorm"})
    assert [x["id"] for x in r.json()["results"]] == [a.pk]
    assert client.post(f"{API}/alarms/{b.pk}/acknowledge", {}, content_type="application/json").status_code == 404
    r = client.post(f"{API}/alarms/{a.pk}/acknowledge", {"note": "已电话通知村干部"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"] == str(world["users"]["town_staff"])
    r = client.post(f"{API}/alarms/{a.pk}/acknowledge", {}, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = client.post(f"{API}/alarms/{a.pk}/close", {"note": ""}, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note"

    login(client, world["users"]["leader"])  # reads everything, changes nothing
    assert client.post(f"{API}/alarms/{b.pk}/close", {"note": "x"}, content_type="application/json").status_code == 403
    with pytest.raises(ScopeError):
        acknowledge_alarm(world["users"]["other_town_staff"], a, "越权")

    login(client, world["users"]["village_responder"])
    r = client.post(f"{API}/alarms/{a.pk}/close", {"note": "雨停,巡查无险情"}, content_type="application/json")
    assert r.json()["status"] == "closed" and r.json()["closed_note"] == "雨停,巡查无险情" and r.json()["level"] == "orange"
    types = list(Event.objects.filter(subject=f"alarm:{a.pk}").values_list("type", flat=True))
    assert types == ["sensing.alarm.opened", "sensing.alarm.acknowledged", "sensing.alarm.closed"]
    login(client, world["users"]["commander"])
    r = client.get(f"{API}/alarms", {"status": "closed", "rule": "rainstorm"})
    assert [x["id"] for x in r.json()["results"]] == [a.pk]
    assert client.get(f"{API}/alarms", {"status": "sleeping"}).status_code == 422


def test_gateway_submission_reports_each_refused_reading(world, net, t0, client):
    user = world["users"]["api_client"]
    key = ApiToken.new_key()
    ApiToken.objects.create(user=user, name="网关", prefix=key[:8], key_hash=ApiToken.hash_key(key))
    body = {"readings": [
        {"sensor": "RG-A", "ts": t0.isoformat(), "value": 1.5},
        {"sensor": "RG-A", "ts": "not a time", "value": 1},
        {"sensor": "NOPE", "ts": t0.isoformat(), "value": 1},
        {"sensor": "RG-B", "ts": (t0 + M).isoformat(), "value": 999},
        {"sensor": "WL-A", "ts": t0.timestamp(), "value": 2.5},
        {"sensor": "RG-A", "ts": t0.isoformat(), "value": 1.5},
    ]}
    r = client.post(f"{API}/readings", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 200, r.content
    data = r.json()
    assert (data["received"], data["stored"], data["duplicates"]) == (6, 2, 1)
    assert [(e["index"], e["code"]) for e in data["errors"]] == [(1, "bad_ts"), (2, "unknown_sensor"),
                                                                (3, "out_of_range")]
    assert all(e["message"] and e["message_en"] for e in data["errors"])
    assert Reading.objects.count() == 2 and not DeadLetter.objects.exists()

    login(client, world["users"]["other_town_staff"])  # town B may not submit for town A's sensors
    r = client.post(f"{API}/readings", {"readings": [{"sensor": "RG-A", "ts": t0.isoformat(), "value": 1}]},
                    content_type="application/json")
    assert r.json()["errors"][0]["code"] == "out_of_scope"
    login(client, world["users"]["leader"])
    assert client.post(f"{API}/readings", {"readings": []}, content_type="application/json").status_code == 403
    assert client.post(f"{API}/readings", {"rows": []}, content_type="application/json").status_code == 422


def _csv(text: str, encoding="utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile("h.csv", text.encode(encoding), content_type="text/csv")


def test_csv_history_import_dry_run_then_all_or_nothing(world, net, t0, client):
    login(client, world["users"]["town_staff"])
    ts = [(t0 - (i + 1) * 10 * M).isoformat() for i in range(4)]
    bad = f"传感器编码,时间,数值\nRG-A,{ts[0]},1.0\nRG-A,{ts[1]},abc\nRG-B,{ts[2]},1\nRG-A,{ts[0]},2\nRG-A,{ts[3]},900\n"
    r = client.post(f"{API}/readings/import", {"file": _csv(bad), "dry_run": "false"})
    report = r.json()
    assert r.status_code == 200 and not report["ok"] and Reading.objects.count() == 0
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(3, "C"), (4, "A"), (5, "B"), (6, "C")]

    good = "sensor,ts,value\n" + "".join(f"RG-A,{t},0.5\n" for t in ts)
    r = client.post(f"{API}/readings/import", {"file": _csv(good, "gb18030"), "dry_run": "true"})
    assert r.json()["ok"] and r.json()["created"] == 4 and Reading.objects.count() == 0
    r = client.post(f"{API}/readings/import", {"file": _csv(good), "dry_run": "false"})
    assert r.json()["created"] == 4 and Reading.objects.count() == 4
    assert sum(HourlyAggregate.objects.values_list("total", flat=True)) == 2.0
    r = client.post(f"{API}/readings/import", {"file": _csv(good), "dry_run": "false"})
    assert r.json()["ok"] and r.json()["created"] == 0 and Reading.objects.count() == 4  # already stored
    assert Event.objects.filter(type="sensing.readings.imported").count() == 2
    r = client.post(f"{API}/readings/import", {"file": _csv("颜色\n红\n"), "dry_run": "true"})
    assert not r.json()["ok"] and len(r.json()["errors"]) == 4


def test_dead_letters_are_for_district_writers(world, net, client):
    ingest_messages([("tianmu/v1/ST-RAIN-A/RG-A/data", b"\x00garbage")])
    r = login(client, world["users"]["commander"]).get(f"{API}/dead-letters")
    assert r.status_code == 200 and r.json()["count"] == 1
    assert r.json()["results"][0]["reason"].startswith("malformed_json") and "\\x00" in r.json()["results"][0]["payload"]
    assert login(client, world["users"]["town_staff"]).get(f"{API}/dead-letters").status_code == 403
    assert login(client, world["users"]["leader"]).get(f"{API}/dead-letters").status_code == 403


def test_thresholds_list_and_change(world, net, client):
    login(client, world["users"]["town_staff"])
    rows = client.get(f"{API}/thresholds", {"rule": "rainstorm"}).json()
    assert {(r["metric"], r["blue"], r["yellow"], r["orange"], r["red"]) for r in rows} == {
        ("rain_12h", 50, None, None, None), ("rain_6h", None, 50, None, None), ("rain_3h", None, None, 50, 100)}
    body = {"rule": "gas", "metric": "gas", "sensor_type": "gas", "yellow": 5, "orange": 20, "red": 40}
    assert client.put(f"{API}/thresholds", body, content_type="application/json").status_code == 403
    r = client.put(f"{API}/thresholds", {**body, "station": "ST-RAIN-A"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["station"] == "ST-RAIN-A"
    r = client.put(f"{API}/thresholds", {**body, "station": "ST-RAIN-B"}, content_type="application/json")
    assert r.status_code == 404
    r = client.put(f"{API}/thresholds", {**body, "station": "ST-RAIN-A", "red": 1}, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "red"
    login(client, world["users"]["commander"])
    r = client.put(f"{API}/thresholds", body, content_type="application/json")
    assert r.status_code == 200 and r.json()["yellow"] == 5
    assert Event.objects.filter(type="sensing.threshold.changed").count() == 2


def test_pages_list_latest_values_and_alarms(world, net, storm, client):
    login(client, world["users"]["town_staff"])
    r = client.get("/sensing/")
    assert r.status_code == 200 and "RG-A" in r.text and OUTSIDE_MARK not in r.text
    r = client.get("/sensing/alarms/")
    assert r.status_code == 200 and "RG-A" in r.text and "RG-B" not in r.text
    r = client.post(f"/sensing/alarms/{storm['a'].pk}/acknowledge/", {"note": "收到"})
    assert r.status_code == 302
    storm["a"].refresh_from_db()
    assert storm["a"].status == "acknowledged"
    assert client.post(f"/sensing/alarms/{storm['b'].pk}/close/", {"note": "x"}).status_code == 404
