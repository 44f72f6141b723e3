"""The typhoon simulator: deterministic storm, a timeline that never runs ahead of the clock nor behind stored
data, direct mode through the ingest service (rules run, alarms open at the expected levels), the command,
and MQTT mode through the real broker and ingest worker."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from tianmu.core.models import Event
from tianmu.sensing import simulate
from tianmu.sensing.choices import ACTIVE_STATUSES
from tianmu.sensing.models import Alarm, Reading, SensorLatest
from tianmu.sensing.services import set_threshold
from tianmu.sensing.storage import store_readings

from .conftest import make_sensor, make_station

H = timedelta(hours=1)


@pytest.fixture
def storm_net(world):
    """Town A: a rain gauge, a river gauge and a slope; town B: a rain gauge. History where rules need it."""
    admin = world["users"]["admin"]
    rain_a = make_station(admin, world["village_a"], "ST-RAIN-A")
    river = make_station(admin, world["village_a"], "ST-RIVER-A", "river", warning_level_m=1.2,
                         guaranteed_level_m=1.5)
    slope = make_station(admin, world["village_a"], "ST-SLOPE-A", "displacement")
    rain_b = make_station(admin, world["village_b"], "ST-RAIN-B")
    net = {"rain_a": make_sensor(admin, rain_a, "RG-A", valid_min=0, valid_max=100),
           "river": make_sensor(admin, river, "WL-A", "water_level", valid_min=-5, valid_max=50),
           "slope": make_sensor(admin, slope, "DP-A", "displacement", valid_min=-50, valid_max=2000),
           "rain_b": make_sensor(admin, rain_b, "RG-B", valid_min=0, valid_max=100),
           "stations": {"rain_a": rain_a, "river": river, "slope": slope, "rain_b": rain_b}}
    now = timezone.now()
    with transaction.atomic():  # yesterday's values: the river before the storm, the slope 24 h ago
        store_readings([(net["river"].pk, now - 8 * H, 1.0), (net["slope"].pk, now - 25 * H, 10.0)])
    return net


def active(sensor, rule):
    return Alarm.objects.filter(sensor=sensor, rule=rule, status__in=ACTIVE_STATUSES).first()


def series(storm, steps):
    out = {}
    for k in range(steps):
        for s, value in storm.readings(k):
            out.setdefault(s.code, []).append(value)
    return out


def test_storm_is_deterministic_and_heaviest_in_the_west(storm_net):
    # Simulated time only (72 five-minute steps of a seeded storm): nothing here reads a clock.
    sensors = simulate.load_sensors()
    one = series(simulate.Typhoon(sensors, duration=6 * H, seed=1), 72)
    assert one == series(simulate.Typhoon(sensors, duration=6 * H, seed=1), 72)
    assert one != series(simulate.Typhoon(sensors, duration=6 * H, seed=2), 72)
    # The band reaches the east (town B) first and peaks later in the west (town A).
    a, b = one["RG-A"], one["RG-B"]
    assert b.index(max(b)) < a.index(max(a))
    # Over Lin'an's real geography the core exceeds 50 mm/h in the western mountains, not in the east.
    storm = simulate.Typhoon([], duration=6 * H)
    core, longgang, jincheng = simulate.HOTSPOT, simulate._km(119.0964, 30.2095), simulate._km(119.715, 30.236)
    assert max(storm.intensity(*core, f / 100) for f in range(101)) > 50
    assert max(storm.intensity(*jincheng, f / 100) for f in range(101)) < 25
    assert storm.expected_total(*longgang) > 3 * storm.expected_total(*jincheng)


def test_timeline_catches_up_with_the_clock_and_follows_stored_data():
    wall = timezone.now()
    six = 6 * H
    start = simulate.timeline_start(wall, six, 60, None)
    # speed 60: 6 simulated hours take 6 real minutes and end at the wall clock.
    assert wall + timedelta(minutes=6) - simulate.STEP <= start + six <= wall + timedelta(minutes=6)
    assert start.minute % 5 == 0 and start.second == 0
    assert simulate.timeline_start(wall, six, None, None) + six <= wall
    # Readings already stored: the storm begins after them.
    newest = wall - timedelta(minutes=30)
    later = simulate.timeline_start(wall, six, 60, newest)
    assert newest <= later < newest + simulate.STEP


def test_paced_run_never_sends_readings_from_the_future(storm_net):
    """With a fake clock (no real time passes or is measured): speed 60 takes duration/60 of the fake clock,
    and no reading is stamped ahead of it."""
    t = {"now": 0.0}
    wall0 = timezone.now() + timedelta(days=2)  # far from the stored history
    sent = []

    class Sink:
        mode, prefix = "test", "tianmu/v1"

        def send(self, messages, report, at=None):
            for _topic, payload in messages:
                body = json.loads(payload)
                for item in body.get("readings", [body]):
                    sent.append((t["now"], item["ts"]))

    def sleep(seconds):
        t["now"] += seconds

    report = simulate.run_typhoon(sink=Sink(), duration=H, speed=60, clock=lambda: t["now"], sleep=sleep,
                                  wall=lambda: wall0 + timedelta(seconds=t["now"]))
    assert report.steps == 12 and report.readings == 12 * 4
    assert 55 <= t["now"] <= 61
    for real, stamp in sent:
        assert datetime.fromisoformat(stamp) <= wall0 + timedelta(seconds=real)


def test_direct_mode_opens_alarms_at_expected_levels(world, storm_net):
    admin = world["users"]["admin"]
    # Station A's rainstorm thresholds are set low enough that the storm's edge reaches red there.
    set_threshold(admin, rule="rainstorm", metric="rain_3h", sensor_type="rainfall",
                  station=storm_net["stations"]["rain_a"], levels={"blue": 5, "yellow": 10, "orange": 15, "red": 20})
    # Town B: a threshold no storm reaches.
    set_threshold(admin, rule="rainstorm", metric="rain_3h", sensor_type="rainfall",
                  station=storm_net["stations"]["rain_b"], levels={"red": 500})
    report = simulate.run_typhoon(sink=simulate.DirectSink(), duration=6 * H, speed=None, batch_minutes=30)
    assert report.steps == 72 and report.stored == 72 * 4 and report.dead_letters == 0
    assert report.alarm_changes > 0

    rain_a = active(storm_net["rain_a"], "rainstorm")
    assert rain_a is not None and rain_a.level == "red" and rain_a.peak_level == "red"
    assert active(storm_net["rain_b"], "rainstorm") is None
    # The river rose past its guaranteed level; the creeping slope moved > 50 mm in 24 h.
    river = active(storm_net["river"], "water_level")
    assert river is not None and river.peak_level == "red"
    assert max(Reading.objects.filter(sensor=storm_net["river"]).values_list("value", flat=True)) >= 1.5
    slope = active(storm_net["slope"], "displacement")
    assert slope is not None and slope.level == "red" and slope.value > 50
    # Through the ingest service: latest values, events in the outbox, readings on the 5-minute grid.
    latest = SensorLatest.objects.get(pk=storm_net["rain_a"].pk)
    assert latest.alarm_level == "red" and latest.ts == report.end <= timezone.now()
    opened = Event.objects.filter(type="sensing.alarm.opened", subject=f"alarm:{rain_a.pk}")
    assert opened.exists() and opened.first().region_code == world["village_a"].code
    assert not Reading.objects.filter(sensor=storm_net["rain_a"]).exclude(ts__minute__in=range(0, 60, 5)).exists()
    # Running again cannot rewrite history: the next storm starts after the newest reading.
    t = {"now": 0.0}
    wall0 = timezone.now()
    again = simulate.run_typhoon(sink=simulate.DirectSink(), duration=simulate.STEP, speed=None,
                                 clock=lambda: t["now"], sleep=lambda s: t.__setitem__("now", t["now"] + s),
                                 wall=lambda: wall0 + timedelta(seconds=t["now"]))
    assert again.start >= report.end and again.duplicates == 0


def test_command_direct(storm_net):
    out = StringIO()
    call_command("simulate", "typhoon", "--direct", "--speed", "0", "--duration-minutes", "60", stdout=out)
    text = out.getvalue()
    assert "direct" in text and "done: 48 readings stored" in text
    assert Reading.objects.filter(sensor=storm_net["rain_a"]).count() == 12


def test_command_refuses_bad_options(storm_net):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("simulate", "typhoon", "--direct", "--speed", "0.5", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("simulate", "typhoon", "--mqtt", "--url", "mqtt://127.0.0.1:1", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not simulate.broker_reachable(), reason="no MQTT broker at settings.MQTT_URL")
def test_mqtt_mode_reaches_the_store_through_the_worker(storm_net):
    """Published on the devices' topics at QoS 1 and stored by the real ingest worker."""
    from tianmu.sensing.ingest import IngestWorker

    from .test_mqtt import WAIT

    tag = uuid.uuid4().hex[:10]
    prefix = f"tianmu-test/{tag}"
    worker = IngestWorker(client_id=f"tianmu-test-{tag}", prefix=prefix, share_group="", wait_ms=50)
    worker.start()
    try:
        assert worker.subscribed.wait(WAIT)
        sink = simulate.MqttSink(prefix=prefix)
        try:
            report = simulate.run_typhoon(sink=sink, duration=H, speed=None, batch_minutes=60)
        finally:
            sink.close()
        assert report.published == 4  # one message per device carrying its 12 readings
        assert worker.run_until(lambda: Reading.objects.filter(sensor_id__in=[
            storm_net[k].pk for k in ("rain_a", "river", "slope", "rain_b")]).count() >= 48 + 2, WAIT)
    finally:
        worker.shutdown()
    assert SensorLatest.objects.get(pk=storm_net["rain_b"].pk).ts == report.end
