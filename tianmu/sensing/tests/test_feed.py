"""The demo's quiet-weather feed: one reading per due sensor on its own interval grid, nothing twice, no no-data
alarm for the sensors it feeds, no alarm of its own making (the storm's alarms only calm down), and only
`tianmu demo` starts it."""

from __future__ import annotations

from datetime import UTC, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tianmu.core.management.commands import run
from tianmu.core.models import DeadLetter, Event
from tianmu.sensing.choices import ACTIVE_STATUSES, LEVEL_RANK
from tianmu.sensing.demo import feed
from tianmu.sensing.models import Alarm, Reading, Sensor, SensorLatest
from tianmu.sensing.services import check_no_data

from .conftest import make_sensor, make_station
from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture
def hourly(world):
    """Three sensors of village A1: two reporting hourly (rain, river), one every 10 minutes (slope)."""
    admin = world["users"]["admin"]
    rain = make_station(admin, world["village_a"], "ST-RAIN")
    river = make_station(admin, world["village_a"], "ST-RIVER", "river", warning_level_m=12.0, guaranteed_level_m=13.0)
    slope = make_station(admin, world["village_a"], "ST-SLOPE", "displacement")
    return {"rain": make_sensor(admin, rain, "RG-1", valid_min=0, valid_max=100, interval_s=3600),
            "river": make_sensor(admin, river, "WL-1", "water_level", valid_min=0, valid_max=30, interval_s=3600),
            "slope": make_sensor(admin, slope, "DP-1", "displacement", valid_min=-50, valid_max=2000, interval_s=600)}


def readings_of(sensor):
    return list(Reading.objects.filter(sensor=sensor).order_by("ts").values_list("ts", "value"))


def test_one_tick_stores_one_reading_per_due_sensor_and_a_repeat_stores_nothing(hourly, t0):
    send(hourly["rain"], (t0 + 10 * M, 0.5))  # hourly: due again at t0 + 1 h
    send(hourly["river"], (t0 + 60 * M + 1 * M, 9.0))  # hourly, just reported: due at t0 + 2 h
    send(hourly["slope"], (t0 + 60 * M, 20.0))  # every 10 minutes: due at t0 + 1 h 10 min
    now = t0 + 60 * M + 14 * M
    report = feed.tick(now)
    assert (report.sensors, report.readings, report.stored, report.dead_letters) == (2, 2, 2, 0)
    assert readings_of(hourly["rain"])[-1] == (t0 + H, 0.0)
    assert [ts for ts, _v in readings_of(hourly["slope"])] == [t0 + H, t0 + 70 * M]
    assert len(readings_of(hourly["river"])) == 1
    # Received now, through the ingest path: the latest values moved on.
    assert SensorLatest.objects.get(pk=hourly["slope"].pk).received_at == now

    before = Reading.objects.count()
    again = feed.tick(now)
    assert (again.sensors, again.stored) == (0, 0) and Reading.objects.count() == before
    # Later in the same hour only the 10-minute sensor is due; every reading lies on its sensor's grid.
    later = feed.tick(now + 10 * M)
    assert (later.sensors, later.stored) == (1, 1)
    for s in hourly.values():
        assert all(ts.timestamp() % s.interval_s == 0 for ts, _v in readings_of(s)[1:]), s.code


def test_a_restart_neither_duplicates_nor_skips(hourly, t0):
    """A feed that was down sends the reports it missed (up to CATCH_UP), once."""
    send(hourly["rain"], (t0, 0.0))
    report = feed.tick(t0 + 5 * H + 30 * M)
    assert report.stored == 5
    assert [ts for ts, _v in readings_of(hourly["rain"])] == [t0 + i * H for i in range(6)]
    assert feed.tick(t0 + 5 * H + 59 * M).stored == 0
    send(hourly["river"], (t0 - 3 * 24 * H, 9.0))
    caught_up = feed.tick(t0 + 5 * H + 59 * M)
    assert caught_up.stored == feed.CATCH_UP // H == 24


def test_fed_sensors_raise_no_no_data_alarm(world, hourly, t0):
    old = t0 - 5 * H
    for s in hourly.values():
        send(s, (old, 1.0))
    # Reported long ago, received long ago: without the feed, each would be silent for 5 intervals.
    SensorLatest.objects.update(received_at=old)
    never = make_sensor(world["users"]["admin"], make_station(world["users"]["admin"], world["village_a"], "ST-NEW"),
                        "RG-NEW", interval_s=3600)
    Sensor.objects.filter(pk=never.pk).update(created_at=old)  # registered long ago, never reported: not fed

    report = feed.tick(t0)
    assert report.sensors == 3 and report.dead_letters == 0
    assert check_no_data(now=t0) == 1
    assert list(Alarm.objects.filter(rule="no_data").values_list("sensor__code", flat=True)) == ["RG-NEW"]
    # Hours later, with the feed ticking, still nothing for the fed sensors.
    for k in range(1, 5):
        feed.tick(t0 + k * H + 2 * M)
    assert check_no_data(now=t0 + 4 * H + 2 * M) == 0
    assert Alarm.objects.filter(rule="no_data").count() == 1


def test_after_a_storm_the_feed_only_calms_alarms(world, hourly, t0):
    """A cloudburst, a river over its guaranteed level and a creeping slope; then a day and a half of feed."""
    send(hourly["rain"], *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    send(hourly["river"], (t0 - H, 9.4), (t0, 12.6), (t0 + 55 * M, 13.4))
    send(hourly["slope"], (t0 - 24 * H, 20.0), (t0 + 55 * M, 36.0))
    storm = {f"{a.sensor.code}:{a.rule}": a.level for a in Alarm.objects.select_related("sensor")}
    peaks = {f"{a.sensor.code}:{a.rule}": a.peak_level for a in Alarm.objects.select_related("sensor")}
    assert {"RG-1:flash_flood", "WL-1:water_level", "WL-1:rise_rate", "DP-1:displacement"} <= set(storm)
    assert storm["WL-1:water_level"] == "red"
    last_event = Event.objects.order_by("-id").first().pk

    for k in range(1, 37):
        feed.tick(t0 + k * H + 1 * M)
    made = list(Event.objects.filter(pk__gt=last_event, type__startswith="sensing.alarm.").values_list("type", flat=True))
    assert "sensing.alarm.opened" not in made and "sensing.alarm.escalated" not in made
    assert "sensing.alarm.deescalated" in made and "sensing.alarm.cleared" in made
    assert not DeadLetter.objects.exists()
    now = {f"{a.sensor.code}:{a.rule}": a for a in Alarm.objects.filter(status__in=ACTIVE_STATUSES)}
    # No new alarm; those that never went above orange closed themselves 6 h of data after clearing
    # (SENSING_AUTO_CLOSE_AFTER_HOURS), with the reason; the red ones wait for a person. The geohazard alarm
    # holds: yesterday's 72 mm still weighs K × 72 mm in the effective rainfall.
    assert set(now) == {key for key, peak in peaks.items() if peak == "red"} | {"RG-1:geohazard"}
    assert now["RG-1:geohazard"].cleared_at is None
    closed = {f"{a.sensor.code}:{a.rule}": a for a in Alarm.objects.filter(status="closed")}
    assert set(closed) == set(storm) - set(now) and {"RG-1:rainstorm", "DP-1:displacement"} <= set(closed)
    for alarm in closed.values():
        assert alarm.closed_by is None and "自动关闭" in alarm.closed_note
        assert alarm.cleared_at is not None and alarm.closed_at is not None
    assert made.count("sensing.alarm.autoclosed") == len(closed)
    for key, alarm in now.items():
        assert LEVEL_RANK[alarm.level] <= LEVEL_RANK[storm[key]], key
    for key in ("RG-1:flash_flood", "WL-1:water_level", "WL-1:rise_rate"):
        assert now[key].cleared_at is not None, key
    # Quiet values: no rain; the river back under its warning level, receding, inside its range; the slope
    # creeping a fraction of a millimetre a day.
    fed = t0 + 2 * H
    rain = [v for ts, v in readings_of(hourly["rain"]) if ts >= fed]
    river = [v for ts, v in readings_of(hourly["river"]) if ts >= fed]
    slope = [v for ts, v in readings_of(hourly["slope"]) if ts >= fed]
    assert rain and set(rain) == {0.0}
    assert river[-1] < 12.0 and max(river) < 13.4 and min(river) >= 12.0 - feed.DEFAULT_DRY_MARGIN_M - 0.05
    assert all(b <= a + 0.05 for a, b in zip(river, river[1:], strict=False))
    assert abs(slope[-1] - slope[0]) < 1.0


def test_values_are_deterministic():
    s = feed.FeedSensor(pk=1, code="WL-X", station="ST", sensor_type="water_level", station_type="river",
                        interval_s=3600, ts=feed.GRID_EPOCH, value=10.0, warning=9.0, valid_min=0, valid_max=30)
    t1 = feed.GRID_EPOCH.replace(year=2026, tzinfo=UTC)
    assert feed.next_value(s, t1, 10.0, t1 + H) == feed.next_value(s, t1, 10.0, t1 + H)
    assert feed.next_value(s, t1, 10.0, t1 + H) < 10.0  # above the dry level (6.3 m): receding
    assert feed.dry_level(s) == pytest.approx(9.0 - feed.DEFAULT_DRY_MARGIN_M)


def test_only_the_demo_starts_the_feed(monkeypatch, settings, hourly, t0):
    assert "demo-feed" not in run.extra_workers()
    assert run.extra_workers(demo_feed=True)["demo-feed"][-1] == "demo_feed"

    from tianmu.demo.management.commands import demo

    calls = []
    monkeypatch.setattr(demo.dataset, "is_built", lambda: True)
    monkeypatch.setattr(demo, "call_command", lambda *a, **kw: calls.append((a, kw)))
    call_command("demo", stdout=StringIO())
    assert (("run",), {"host": "127.0.0.1", "port": 8000, "demo_feed": True}) in calls

    send(hourly["rain"], (t0, 0.0))
    out = StringIO()
    call_command("demo_feed", "--once", stdout=out)
    assert Reading.objects.filter(sensor=hourly["rain"], ts__gt=t0).exists()
    settings.PRODUCTION = True
    with pytest.raises(CommandError):
        call_command("demo_feed", "--once", stdout=StringIO())
