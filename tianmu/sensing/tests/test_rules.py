"""Rules and alarms: rainfall windows from hourly aggregates + edge readings, effective rainfall and soil state,
escalation at once, de-escalation only with hysteresis, station overrides, device faults, dead letters."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from tianmu.core.models import DeadLetter, Event
from tianmu.sensing.choices import ACTIVE_STATUSES, AlarmKind, AlarmStatus, Metric
from tianmu.sensing.models import Alarm, Reading, SensorLatest, Threshold
from tianmu.sensing.rules import RAIN_WINDOWS, compute_metrics
from tianmu.sensing.services import (
    acknowledge_alarm,
    check_no_data,
    close_alarm,
    ingest_messages,
    set_threshold,
)

from .conftest import make_sensor, make_station

M = timedelta(minutes=1)
H = timedelta(hours=1)


def send(sensor, *readings):
    """One broker message (and so one evaluation) with these (ts, value) readings."""
    station = sensor.station.code if sensor.station_id else "-"
    body = {"readings": [{"ts": ts.isoformat(), "value": v} for ts, v in readings]}
    return ingest_messages([(f"tianmu/v1/{station}/{sensor.code}/data", json.dumps(body).encode())])


def active(sensor, rule):
    return Alarm.objects.filter(sensor=sensor, rule=rule, status__in=ACTIVE_STATUSES).first()


def events(kind):
    return list(Event.objects.filter(type=f"sensing.alarm.{kind}").order_by("id"))


def metrics_of(sensor):
    sensor.refresh_from_db()
    return compute_metrics([sensor], SensorLatest.objects.in_bulk([sensor.pk]))[sensor.pk]


def test_rain_windows_match_a_brute_force_sum(net, t0):
    rng = random.Random(7)
    sensor = net["rain_a"]
    readings, ts = [], t0 - 30 * H
    while ts < t0:
        ts += timedelta(minutes=rng.choice([3, 5, 7, 11]), seconds=rng.choice([0, 30]))
        readings.append((ts, round(rng.random() * 3, 1)))
    # In several out-of-order batches, with a redelivered one.
    rng.shuffle(readings)
    for i in range(0, len(readings), 97):
        send(sensor, *readings[i:i + 97])
    send(sensor, *readings[:50])
    ev = metrics_of(sensor)
    latest = max(t for t, _ in readings)
    assert ev.at == latest
    for metric, hours in RAIN_WINDOWS.items():
        expected = sum(v for t, v in readings if latest - hours * H < t <= latest)
        assert ev.metrics[metric] == pytest.approx(expected, abs=1e-6), metric


def test_effective_rainfall_and_soil_state_select_flash_flood_thresholds(world, net, t0, settings):
    settings.SENSING_API_K = 0.85
    wet, dry = net["rain_a"], net["rain_b"]
    send(wet, *[(t0 - (25 + i) * H, 5.0) for i in range(10)])  # yesterday: A(t − 24 h) = 0.85 × 50 = 42.5 mm
    for sensor in (wet, dry):
        send(sensor, (t0 + 10 * M, 15.5), (t0 + 40 * M, 15.5))
    ev = metrics_of(wet)
    assert ev.antecedent == pytest.approx(42.5)
    assert ev.metrics[Metric.RAIN_EFFECTIVE] == pytest.approx(31 + 42.5)
    # Soil from A(t − 6 h) = 0.85 × 20 (25–28 h ago) + 0.85² × 30 (29–34 h ago) = 38.7 mm: normal.
    assert ev.soil_index == pytest.approx(0.85 * 20 + 0.85 ** 2 * 30) and ev.soil == "normal"
    assert metrics_of(dry).soil == "dry"
    # 31 mm in an hour: normal soil's critical rainfall (35 mm) is not reached, its alert (28 mm) is; dry soil's
    # alert (32 mm) is not.
    assert active(wet, "flash_flood").level == "orange" and active(wet, "flash_flood").threshold == 28
    assert active(dry, "flash_flood") is None
    assert active(wet, "geohazard").level == "blue"  # 73.5 mm effective ≥ 50 [U default]
    assert SensorLatest.objects.get(pk=wet.pk).antecedent_index == pytest.approx(42.5)


def test_a_long_storm_wets_the_soil_and_the_stricter_critical_rainfall_applies(world, net, t0, settings):
    """Issue 9: the soil state follows the storm's own rain. After 12 hours of 8 mm/h on dry ground the soil
    is wet (A(t − 6 h) = 0.85 × 48 mm ≥ 40 mm), so 31 mm in the next hour reaches wet soil's critical rainfall
    (30 mm, red). Before, only blocks older than 24 h counted: the soil stayed dry after 96 mm of storm, and
    the same hour raised nothing (dry: alert 32 mm)."""
    settings.SENSING_API_K = 0.85
    gauge = net["rain_a"]
    send(gauge, *[(t0 - 12 * H + (i + 1) * 10 * M, 8.0 / 6) for i in range(12 * 6)])  # 96 mm in 12 h
    send(gauge, *[(t0 + (i + 1) * 10 * M, 31.0 / 6) for i in range(6)])  # then 31 mm in an hour
    ev = metrics_of(gauge)
    assert ev.metrics[Metric.RAIN_1H] == pytest.approx(31.0)
    assert ev.soil_index == pytest.approx(0.85 * (96 - 5 * 8), abs=1e-6) and ev.soil == "wet"
    assert ev.antecedent == 0.0  # the storm is all within the last 24 h: P₀, counted once
    assert ev.metrics[Metric.RAIN_EFFECTIVE] == pytest.approx(96 + 31)
    alarm = active(gauge, "flash_flood")
    assert alarm is not None and alarm.level == "red" and alarm.threshold == 30


@pytest.mark.parametrize("minutes", [7, 13])
def test_effective_rainfall_counts_every_reading_exactly_once(world, net, t0, settings, minutes):
    """With K = 1 the effective rainfall is the sum of every reading of the last n + 1 days, whatever the
    reading times: no gap between the 24 h sum and the antecedent blocks (before: up to 55 minutes were in
    neither), no reading in both."""
    settings.SENSING_API_K = 1.0
    settings.SENSING_API_DAYS = 3
    gauge = net["rain_a"]
    rows = [(t0 - 3 * 24 * H + i * minutes * M, 0.1 * (1 + i % 7)) for i in range(3 * 24 * 60 // minutes)]
    for i in range(0, len(rows), 200):
        send(gauge, *rows[i:i + 200])
    ev = metrics_of(gauge)
    assert ev.metrics[Metric.RAIN_EFFECTIVE] == pytest.approx(sum(v for _t, v in rows), abs=1e-6)
    assert ev.metrics[Metric.RAIN_24H] + ev.antecedent == pytest.approx(ev.metrics[Metric.RAIN_EFFECTIVE])


def test_rainstorm_signal_levels_and_station_override(world, net, t0):
    a, b = net["rain_a"], net["rain_b"]
    set_threshold(world["users"]["town_staff"], rule="rainstorm", metric="rain_3h", sensor_type="rainfall",
                  station=net["stations"]["rain_a"], levels={"orange": 50, "red": 60}, source="本站核定")
    for sensor in (a, b):
        send(sensor, *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # 70 mm in 2 h
    assert active(a, "rainstorm").level == "red" and active(a, "rainstorm").threshold == 60
    assert active(b, "rainstorm").level == "orange"
    assert SensorLatest.objects.get(pk=a.pk).alarm_level == "red"


def test_escalation_is_immediate_and_deescalation_needs_hysteresis(world, t0, settings):
    settings.SENSING_HYSTERESIS_MARGIN = 0.1
    settings.SENSING_DEESCALATE_AFTER = 3
    admin = world["users"]["admin"]
    gas = make_sensor(admin, make_station(admin, world["village_a"], "ST-GAS", "gas"), "GAS-1", "gas",
                      valid_min=0, valid_max=100)
    clock = iter(t0 + i * M for i in range(100))

    def level_after(value):
        send(gas, (next(clock), value))
        alarm = active(gas, "gas")
        return alarm.level if alarm else None

    assert level_after(5) is None
    assert level_after(12) == "yellow" and len(events("opened")) == 1
    assert level_after(30) == "orange"
    assert level_after(60) == "red" and len(events("escalated")) == 2
    # 46 is below red (50) but inside the 10 % margin: no countdown.
    assert [level_after(v) for v in (46, 40, 40, 46, 40, 40)] == ["red"] * 6
    assert level_after(40) == "orange"  # third calm evaluation in a row
    assert events("deescalated")[-1].payload["from_level"] == "red"
    assert [level_after(v) for v in (5, 5, 5)] == ["orange"] * 3
    alarm = active(gas, "gas")
    assert alarm.cleared_at is not None and len(events("cleared")) == 1
    assert level_after(30) == "orange" and active(gas, "gas").cleared_at is None

    acknowledge_alarm(world["users"]["town_staff"], alarm, "已通知企业排查")
    assert level_after(70) == "red"
    alarm.refresh_from_db()
    assert alarm.status == AlarmStatus.OPEN and alarm.peak_level == "red"  # a higher level needs a new look
    close_alarm(world["users"]["town_staff"], alarm, "泄漏已处置")
    assert SensorLatest.objects.get(pk=gas.pk).alarm_level == ""
    assert level_after(70) == "red"  # still above: a new alarm
    assert Alarm.objects.filter(sensor=gas).count() == 2
    assert all(e.region_id == gas.region_id for e in Event.objects.filter(type__startswith="sensing.alarm."))


def test_water_level_uses_station_levels_and_rise_rate(net, t0):
    wl = net["level_a"]
    send(wl, (t0, 2.4))
    send(wl, (t0 + H, 3.5))
    assert active(wl, "water_level").level == "yellow"  # above the 3.0 m warning level
    assert active(wl, "rise_rate").level == "orange"  # +1.1 m in an hour
    send(wl, (t0 + H + 10 * M, 4.2))
    assert active(wl, "water_level").level == "red"  # above the 4.0 m guaranteed level
    assert active(wl, "water_level").threshold == 4.0


def test_out_of_range_stuck_and_silent_sensors_are_device_faults(world, net, t0, settings):
    settings.SENSING_STUCK_READINGS = {"water_level": 4}
    rain, wl = net["rain_a"], net["level_a"]
    outcome = send(rain, (t0, 500.0))
    assert outcome.stored == 0 and outcome.dead_letters == 1
    fault = active(rain, "out_of_range")
    assert fault.kind == AlarmKind.DEVICE_FAULT and fault.value == 500 and fault.threshold == 200
    assert "out_of_range" in DeadLetter.objects.get().reason
    send(rain, (t0 + 5 * M, 1.0))
    fault.refresh_from_db()
    assert fault.cleared_at is not None and fault.status == AlarmStatus.OPEN  # a person closes it

    send(wl, *[(t0 + i * 5 * M, 2.0) for i in range(4)])
    assert active(wl, "stuck") is not None
    # After a gap longer than 2 × 4 intervals, one more identical reading is no verdict: still stuck.
    send(wl, (t0 + 2 * H, 2.0))
    assert active(wl, "stuck").cleared_at is None
    send(wl, (t0 + 2 * H + 5 * M, 2.1))  # a different value, even after a gap: not stuck any more
    assert active(wl, "stuck").cleared_at is not None
    stuck = active(wl, "stuck")
    send(wl, *[(t0 + 3 * H + i * 5 * M, 2.3) for i in range(4)])  # stuck again: the open fault is reused
    assert active(wl, "stuck").pk == stuck.pk and active(wl, "stuck").cleared_at is None

    later = timezone.now() + timedelta(days=1)
    assert check_no_data(now=later) == 3
    assert check_no_data(now=later) == 0  # one alarm per silent sensor
    assert active(net["rain_b"], "no_data").value >= 3 * 300
    send(net["rain_b"], (t0, 0.5))
    assert active(net["rain_b"], "no_data").cleared_at is not None


def test_unusable_messages_become_dead_letters(world, net, t0):
    a = net["rain_a"]
    msgs = [
        ("tianmu/v1/ST-RAIN-A/RG-A/data", b"{oops"),
        ("tianmu/v1/ST-X/NOPE/data", json.dumps({"ts": t0.isoformat(), "value": 1}).encode()),
        ("tianmu/v1/ST-RAIN-B/RG-A/data", json.dumps({"ts": t0.isoformat(), "value": 1}).encode()),
        ("tianmu/v1/ST-RAIN-A/RG-A/data", json.dumps({"ts": t0.isoformat(), "value": 1.5}).encode()),
        ("tianmu/v1/GW/batch", json.dumps({"readings": [{"sensor": "RG-A", "ts": (t0 + M).isoformat(), "value": 1},
                                                         {"sensor": "RG-A", "value": 1}]}).encode()),
    ]
    a.retired = True
    a.save()
    outcome = ingest_messages(msgs[4:])
    assert outcome.stored == 0 and outcome.dead_letters == 2
    a.retired = False
    a.save()
    outcome = ingest_messages(msgs)
    assert (outcome.stored, outcome.dead_letters) == (2, 4)
    reasons = sorted(d.reason.split(":")[0] for d in DeadLetter.objects.all())
    assert reasons == ["malformed_json", "readings[0] sensor_inactive", "readings[1] missing_field",
                       "readings[1] missing_field", "station_mismatch", "unknown_sensor"]
    assert Reading.objects.filter(sensor=a).count() == 2


def test_a_broken_rule_is_recorded_and_readings_are_still_stored(net, t0, monkeypatch):
    from tianmu.sensing.services import alarms

    def boom(*args, **kwargs):
        raise ZeroDivisionError("rule bug")

    monkeypatch.setattr(alarms, "compute_series", boom)
    outcome = send(net["rain_a"], (t0, 1.0))
    assert outcome.stored == 1
    assert DeadLetter.objects.get(source="rules").reason.startswith("rule_error")


def test_disabled_station_threshold_switches_a_default_off(world, net, t0):
    set_threshold(world["users"]["commander"], rule="rainstorm", metric="rain_3h", sensor_type="rainfall",
                  station=net["stations"]["rain_b"], levels={"orange": 50, "red": 100}, enabled=False)
    send(net["rain_b"], (t0, 120.0))
    assert active(net["rain_b"], "rainstorm").metric != "rain_3h"  # 12 h / 6 h rows still apply
    assert Threshold.objects.filter(station__isnull=False).count() == 1


def test_displacement_rate_is_the_change_since_a_day_before(world, t0):
    admin = world["users"]["admin"]
    gnss = make_sensor(admin, make_station(admin, world["village_a"], "ST-GNSS", "displacement"), "GNSS-1",
                       "displacement", valid_min=-1000, valid_max=1000, interval_s=3600)
    # Hourly positions: 25 h ago (outside the 2 h slack of "a day before"), 24.5 h ago, then now.
    send(gnss, (t0 - 25 * H - 30 * M, 10.0), (t0 - 24 * H - 30 * M, 12.0), (t0 - 2 * H, 30.0), (t0, 42.0))
    ev = metrics_of(gnss)
    assert ev.metrics[Metric.DISPLACEMENT_RATE_24H] == pytest.approx(30.0)  # 42 − 12, the newest in the slack
    lonely = make_sensor(admin, gnss.station, "GNSS-2", "displacement", valid_min=-1000, valid_max=1000)
    send(lonely, (t0, 5.0))
    assert Metric.DISPLACEMENT_RATE_24H not in metrics_of(lonely).metrics  # nothing a day before: no rate


def test_evaluation_does_not_query_per_sensor(world, t0, settings):
    """A batch of 24 sensors costs the same number of queries as a batch of 6: history is read set-wise."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tianmu.sensing.services import evaluate_sensors

    settings.SENSING_STUCK_READINGS = {"water_level": 4}
    admin = world["users"]["admin"]
    kinds = [("rain", "rainfall", 0, 200), ("water_level", "water_level", -5, 50),
             ("displacement", "displacement", -1000, 1000), ("gas", "gas", 0, 100)]
    fleets = {}
    for size in (6, 24):
        fleet = []
        for i in range(size):
            station_type, sensor_type, lo, hi = kinds[i % len(kinds)]
            station = make_station(admin, world["village_a"], f"ST-Q{size}-{i}", station_type)
            fleet.append(make_sensor(admin, station, f"Q{size}-{i}", sensor_type, valid_min=lo, valid_max=hi))
        for k in range(30):  # 2.5 h of history, including an alarming rain gauge and gas detector
            ingest_messages([("tianmu/v1/gw/batch", json.dumps({"readings": [
                {"sensor": s.code, "ts": (t0 + k * 5 * M).isoformat(), "value": 45.0 if s.sensor_type in (
                    "rainfall", "gas") and k > 25 else 1.0 + (k % 3) * 0.1} for s in fleet]}).encode())])
        fleets[size] = fleet
    counts = {}
    for size, fleet in fleets.items():
        with CaptureQueriesContext(connection) as ctx:
            evaluate_sensors({s.pk for s in fleet})
        counts[size] = len(ctx.captured_queries)
    assert Alarm.objects.filter(sensor__in=fleets[24], status__in=ACTIVE_STATUSES).count() >= 12
    assert counts[24] == counts[6] > 2, counts


def test_ingest_sees_registry_edits_between_batches(world, net, t0):
    """Ingest keeps sensors between batches (services.directory.SensorDirectory); an edit of a station or a new sensor
    is seen by the very next batch."""
    from tianmu.core.registry.kinds import get_kind
    from tianmu.core.registry.services import update_record

    admin = world["users"]["admin"]
    wl = net["level_a"]
    send(wl, (t0, 3.5))
    assert active(wl, "water_level").level == "yellow"  # above the 3.0 m warning level, below 4.0 guaranteed
    update_record(admin, get_kind("stations"), net["stations"]["level_a"], {"guaranteed_level_m": 3.4})
    send(wl, (t0 + 5 * M, 3.5))
    assert active(wl, "water_level").level == "red"  # the new guaranteed level applies at once
    late = make_sensor(admin, net["stations"]["level_a"], "WL-A2", "water_level", valid_min=-5, valid_max=50)
    assert send(late, (t0, 1.0)).stored == 1


def test_water_level_hysteresis_is_a_band_in_metres(world, t0, settings):
    """A river's levels are elevations (241.55 m): a 10 % margin would need a 24 m fall before an alarm calms.
    Water levels de-escalate once below the threshold by SENSING_HYSTERESIS_BANDS (0.2 m) instead."""
    settings.SENSING_DEESCALATE_AFTER = 3
    admin = world["users"]["admin"]
    station = make_station(admin, world["village_a"], "ST-RIVER", "river", warning_level_m=241.55,
                           guaranteed_level_m=242.5)
    wl = make_sensor(admin, station, "WL-RIVER", "water_level", valid_min=200, valid_max=260)
    clock = iter(t0 + i * 5 * M for i in range(100))

    def level_after(value):
        send(wl, (next(clock), value))
        alarm = active(wl, "water_level")
        return None if alarm is None or alarm.cleared_at else alarm.level

    assert level_after(242.6) == "red"
    assert [level_after(242.35) for _ in range(4)] == ["red"] * 4  # within 0.2 m of the guaranteed level
    assert [level_after(242.2) for _ in range(3)] == ["red", "red", "yellow"]
    assert [level_after(241.2) for _ in range(3)] == ["yellow", "yellow", None]  # 0.35 m under the warning level


def _zone(world, lon, lat, suffix="1", region="village_a"):
    from tianmu.conftest import record_data
    from tianmu.core.registry.kinds import get_kind
    from tianmu.core.registry.services import create_record

    kind = get_kind("hazards")
    return create_record(world["users"]["admin"], kind, record_data(kind, world[region], suffix, lon=lon,
                                                                    lat=lat, hazard_type="geological"))


def test_geohazard_alarms_only_at_gauges_that_represent_a_zone(world, net, t0, settings):
    """Once geological-hazard zones are registered, only the gauge nearest each zone (within 3 km) evaluates the
    geohazard rule: the same 60 mm gives gauge A (1 km from a zone) a geohazard alarm and gauge B (20 km from
    it) none; B's rainstorm and flash-flood rules are unchanged."""
    a, b = net["rain_a"], net["rain_b"]
    _zone(world, a.lon + 0.01, a.lat)
    for sensor in (a, b):
        send(sensor, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    assert active(a, "geohazard").level == "blue"  # 60 mm effective ≥ 50 [U default]
    assert active(b, "geohazard") is None
    assert active(b, "rainstorm").level == "orange" and active(a, "rainstorm").level == "orange"


def test_geohazard_alarm_of_a_gauge_no_longer_representing_clears(world, net, t0):
    a = net["rain_a"]
    send(a, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])
    assert active(a, "geohazard").level == "blue"  # no zone registered yet: every gauge evaluates
    _zone(world, a.lon + 0.2, a.lat, region="village_b")  # 19 km away, near B: A represents nothing
    send(a, *[(t0 + H + i * 5 * M, 0.0) for i in range(1, 4)])
    assert active(a, "geohazard").cleared_at is not None


def test_a_cleared_alarm_closes_itself_after_the_set_time_unless_it_was_red(world, net, t0, settings):
    settings.SENSING_AUTO_CLOSE_AFTER_HOURS = 2
    a, b = net["rain_a"], net["rain_b"]
    send(a, *[(t0 + i * 5 * M, 5.0) for i in range(1, 13)])  # 60 mm in 1 h: rainstorm orange, flash flood red
    send(b, *[(t0 + i * 5 * M, 2.0) for i in range(1, 31)])  # 60 mm in 2.5 h: rainstorm yellow, no flash flood
    storm_b = active(b, "rainstorm")
    assert storm_b.peak_level == "orange" and active(a, "flash_flood").peak_level == "red"
    for sensor in (a, b):
        send(sensor, *[(t0 + 3 * H + k * H, 0.0) for k in range(0, 20)])  # dry, one reading an hour
    storm_b.refresh_from_db()
    assert storm_b.status == "closed" and storm_b.closed_by is None and "自动关闭" in storm_b.closed_note
    event = events("autoclosed")[-1]
    assert event.payload["reason"] == "cleared" and event.payload["calm_hours"] >= 2
    assert active(a, "flash_flood").cleared_at is not None  # red: cleared, but a person closes it
