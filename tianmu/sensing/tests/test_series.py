"""Rules at every reading's own time (issue 9, point 1): whatever the batch shape or arrival order, a sensor is
evaluated at each new reading, in time order; a late reading re-evaluates the windows it changed within the
look-back; older ones are stored without alarms. And a batch writes only the alarms whose state changed."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tianmu.core.models import Event
from tianmu.sensing.choices import ACTIVE_STATUSES
from tianmu.sensing.models import Alarm, Reading
from tianmu.sensing.services import ingest_messages

from .conftest import make_sensor, make_station

M = timedelta(minutes=1)
H = timedelta(hours=1)
STORM = [7.0] * 6 + [0.0] * 12  # the reproduction: 42 mm in 30 minutes, then an hour of nothing


def batch(*readings):
    """One gateway message with these (sensor, ts, value) readings."""
    body = {"readings": [{"sensor": s.code, "ts": ts.isoformat(), "value": v} for s, ts, v in readings]}
    return ingest_messages([("tianmu/v1/gw/batch", json.dumps(body).encode())])


def history(sensor):
    """What the alarms of a sensor went through: (rule, event, from level, level) in order, and the peaks."""
    ids = list(Alarm.objects.filter(sensor=sensor).values_list("pk", flat=True))
    steps = [(e.payload["rule"], e.type.rsplit(".", 1)[1], e.payload.get("from_level"), e.payload["level"])
             for e in Event.objects.filter(type__startswith="sensing.alarm.", subject__in=[f"alarm:{i}" for i in ids])
             .order_by("id")]
    peaks = dict(Alarm.objects.filter(sensor=sensor).values_list("rule", "peak_level"))
    return steps, peaks


def gauge(world, code):
    admin = world["users"]["admin"]
    return make_sensor(admin, make_station(admin, world["village_a"], f"ST-{code}"), code, valid_min=0,
                       valid_max=200)


def test_one_batch_alarms_like_one_reading_per_request(world, t0):
    """The issue's reproduction: 18 five-minute readings in one batch used to raise nothing (only the newest, an
    hour of 0 mm, was evaluated); one per request, flash-flood red. Now both give the same alarms."""
    one, each = gauge(world, "RG-BATCH"), gauge(world, "RG-EACH")
    times = [t0 + i * 5 * M for i in range(len(STORM))]
    batch(*[(one, ts, v) for ts, v in zip(times, STORM, strict=True)])
    for ts, v in zip(times, STORM, strict=True):
        batch((each, ts, v))
    steps, peaks = history(one)
    assert peaks["flash_flood"] == "red"  # 1 h = 42 mm ≥ 40 (dry soil)
    assert (steps, peaks) == history(each)
    alarm = Alarm.objects.get(sensor=one, rule="flash_flood")
    red = Event.objects.filter(subject=f"alarm:{alarm.pk}", payload__level="red").order_by("id").first()
    assert red.payload["observed_at"] == times[5].isoformat()  # at the sixth reading's own time
    assert red.payload["value"] == 42


def test_late_readings_within_the_look_back_re_evaluate_and_older_ones_only_store(world, t0, settings):
    settings.SENSING_LATE_LOOKBACK_HOURS = 2
    late, old = gauge(world, "RG-LATE"), gauge(world, "RG-OLD")
    times = [t0 + i * 5 * M for i in range(len(STORM))]
    for sensor, ago in ((late, 0 * H), (old, 3 * H)):
        # The dry part arrives first; the rain of the first half hour comes later.
        batch(*[(sensor, ts, 0.0) for ts in times[6:]], (sensor, times[-1] + ago, 0.0))
        batch(*[(sensor, ts, v) for ts, v in zip(times[:6], STORM[:6], strict=True)])
    assert Alarm.objects.get(sensor=late, rule="flash_flood").peak_level == "red"
    assert Alarm.objects.get(sensor=late, rule="flash_flood").observed_at <= times[11]
    # More than 2 hours older than the gauge's newest reading: stored, but no live alarm.
    assert Reading.objects.filter(sensor=old).count() == len(STORM) + 1
    assert not Alarm.objects.filter(sensor=old).exists()


def _fleet(world, n, prefix):
    admin = world["users"]["admin"]
    kinds = [("rain", "rainfall", 0, 200), ("water_level", "water_level", -5, 50),
             ("displacement", "displacement", -1000, 1000), ("gas", "gas", 0, 100)]
    out = []
    for i in range(n):
        station_type, sensor_type, lo, hi = kinds[i % len(kinds)]
        station = make_station(admin, world["village_a"], f"ST-{prefix}-{i}", station_type)
        out.append(make_sensor(admin, station, f"{prefix}-{i}", sensor_type, valid_min=lo, valid_max=hi))
    return out


def test_queries_do_not_grow_with_readings_per_sensor(world, t0, settings):
    """A batch of 6 readings per sensor costs the queries of a batch of 1 per sensor, in order and late alike."""
    settings.SENSING_STUCK_READINGS = {"water_level": 4}
    fleet = _fleet(world, 8, "QR")

    def value(s, k):
        return 0.2 if s.sensor_type == "rainfall" else 1.0 + (k % 3) * 0.1

    batch(*[(s, t0 + k * 5 * M, value(s, k)) for k in range(12) for s in fleet])  # an hour of history
    counts = {}
    # Each case starts a new hour (antecedent indexes are cached per hour), or is late within the look-back.
    for name, ks in (("one", [13]), ("six", range(25, 31)), ("one late", [0.5]),
                     ("six late", [1.5, 2.5, 3.5, 4.5, 5.5, 6.5])):
        rows = [(s, t0 + k * 5 * M, value(s, int(k))) for k in ks for s in fleet]
        with CaptureQueriesContext(connection) as ctx:
            outcome = batch(*rows)
        assert outcome.stored == len(rows)
        counts[name] = len(ctx.captured_queries)
    assert not Alarm.objects.exists()
    assert counts["one"] == counts["six"] and counts["one late"] == counts["six late"], counts


def test_a_batch_writes_only_the_alarms_whose_state_changed(world, t0):
    """Storm state: alarms that hold their level are not written again, whatever their number."""
    fleet = [gauge(world, f"RG-S{i}") for i in range(6)]
    batch(*[(s, t0 + k * 5 * M, 12.0) for k in range(6) for s in fleet])  # 72 mm in 30 minutes: red everywhere
    assert Alarm.objects.filter(status__in=ACTIVE_STATUSES).count() >= 12
    with CaptureQueriesContext(connection) as ctx:
        batch(*[(s, t0 + 30 * M, 0.0) for s in fleet])  # every alarm holds its level
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("UPDATE") and "sensing_alarm" in q["sql"]]
    assert writes == []


_examples = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(values=st.lists(st.sampled_from([0.0, 0.0, 0.5, 3.0, 7.0, 12.0]), min_size=6, max_size=24),
       seed=st.integers(0, 2**32 - 1))
def test_same_series_same_alarms_whatever_the_arrival(world, t0, values, seed):
    """One rain series, four ways: one reading per request; random partitions into batches (in time order);
    the same partitions shuffled within each batch; and readings arriving out of order across batches, each
    at most the look-back late. The first three give the same alarm history (rule, every level transition,
    peak); late arrivals give the same rules and peaks (an alarm already raised on partial data is not taken
    back, so intermediate transitions may differ: docs/sensing.md)."""
    rng = random.Random(seed)
    tag = next(_examples)
    times = [t0 + i * 5 * M for i in range(len(values))]
    series = list(zip(times, values, strict=True))
    ways = {name: gauge(world, f"P{tag}-{name}") for name in ("each", "parts", "shuffled", "late")}
    for ts, v in series:
        batch((ways["each"], ts, v))
    cuts = sorted(rng.sample(range(1, len(series)), rng.randint(0, min(4, len(series) - 1))))
    parts = [series[a:b] for a, b in zip([0, *cuts], [*cuts, len(series)], strict=True)]
    for part in parts:
        batch(*[(ways["parts"], ts, v) for ts, v in part])
        mixed = part[:]
        rng.shuffle(mixed)
        batch(*[(ways["shuffled"], ts, v) for ts, v in mixed])
    # Late: each reading may arrive up to 6 positions (30 minutes, well within the look-back) after its turn.
    order = sorted(range(len(series)), key=lambda i: i + rng.uniform(0, 6))
    chunk = rng.randint(1, 4)
    for i in range(0, len(order), chunk):
        batch(*[(ways["late"], *series[j]) for j in order[i:i + chunk]])
    expected = history(ways["each"])
    assert history(ways["parts"]) == expected
    assert history(ways["shuffled"]) == expected
    assert history(ways["late"])[1] == expected[1]
