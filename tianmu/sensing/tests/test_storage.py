"""Storing readings: idempotent on (sensor, ts), out-of-order accepted, hourly aggregates and latest values
kept exactly in step with what was really new."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from tianmu.sensing.models import DailyAggregate, HourlyAggregate, Reading, SensorLatest
from tianmu.sensing.rules import compute_series
from tianmu.sensing.storage import (
    backfill_daily,
    day_of,
    hour_of,
    partition_name,
    rebuild_aggregates,
    store_readings,
)

M = timedelta(minutes=1)


def store(rows):
    with transaction.atomic():
        return store_readings(rows)


def test_store_is_idempotent_and_aggregates_count_each_reading_once(net, t0):
    sid = net["rain_a"].pk
    rows = [(sid, t0 + i * 10 * M, 1.5) for i in range(1, 7)]  # 10, 20, … 60 minutes: the hour ending t0 + 1 h
    assert len(store(rows)) == 6
    assert store(rows) == []  # a redelivered batch changes nothing
    assert len(store(rows[:3] + [(sid, t0 + 70 * M, 2.0)])) == 1
    assert Reading.objects.filter(sensor=net["rain_a"]).count() == 7
    hours = {h.hour: h for h in HourlyAggregate.objects.filter(sensor_id=sid)}
    first, second = hours[t0 + timedelta(hours=1)], hours[t0 + timedelta(hours=2)]
    assert (first.readings, first.total, first.minimum, first.maximum) == (6, 9.0, 1.5, 1.5)
    assert (second.readings, second.total) == (1, 2.0)
    latest = SensorLatest.objects.get(pk=sid)
    assert latest.ts == t0 + 70 * M and latest.value == 2.0


def test_first_value_wins_for_the_same_sensor_and_time(net, t0):
    sid = net["rain_a"].pk
    store([(sid, t0, 1.0), (sid, t0, 9.0)])
    store([(sid, t0, 5.0)])
    assert list(Reading.objects.filter(sensor_id=sid).values_list("value", flat=True)) == [1.0]
    assert HourlyAggregate.objects.get(sensor_id=sid).total == 1.0


def test_out_of_order_readings_are_stored_and_latest_stays_newest(net, t0):
    sid = net["level_a"].pk
    store([(sid, t0 + 50 * M, 3.2)])
    store([(sid, t0 + 10 * M, 2.0), (sid, t0 + 5 * M, 1.0)])
    store([(sid, t0 - timedelta(days=40), 0.5)])  # weeks late, another month's partition on PostgreSQL
    assert Reading.objects.filter(sensor_id=sid).count() == 4
    latest = SensorLatest.objects.get(pk=sid)
    assert latest.ts == t0 + 50 * M and latest.value == 3.2
    hour = HourlyAggregate.objects.get(sensor_id=sid, hour=t0 + timedelta(hours=1))
    assert (hour.readings, hour.minimum, hour.maximum) == (3, 1.0, 3.2)
    ordered = list(Reading.objects.filter(sensor_id=sid).order_by("ts").values_list("value", flat=True))
    assert ordered == [0.5, 1.0, 2.0, 3.2]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")
def test_postgresql_partitions_by_month(net, t0):
    old = t0 - timedelta(days=400)
    store([(net["rain_a"].pk, old, 1.0)])
    with connection.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'sensing_reading'")
        names = {row[0] for row in cur.fetchall()}
        cur.execute("SELECT tableoid::regclass::text FROM sensing_reading WHERE ts = %s", [old])
        (holder,) = cur.fetchone()
    assert partition_name(old.year, old.month) in names and holder == partition_name(old.year, old.month)


def test_an_hours_total_is_the_rain_that_fell_in_it(net, t0):
    """Hours are (start, end] and labelled by their end, like the rule windows: the hour ending E holds the
    readings after E − 1 h up to E, so its total is the 1 h rainfall the rules compute at E (issue 9: with
    [start, end) buckets they differed by up to 2.5 mm)."""
    assert hour_of(t0) == t0 and hour_of(t0 + 1 * M) == t0 + timedelta(hours=1)
    rng = random.Random(5)
    gauge = net["rain_a"]
    rows = [(gauge.pk, t0 + i * 5 * M, round(rng.random() * 3, 1)) for i in range(1, 6 * 12 + 1)]
    rng.shuffle(rows)
    store(rows)
    hours = {h.hour: h.total for h in HourlyAggregate.objects.filter(sensor_id=gauge.pk)}
    assert sorted(hours) == [t0 + timedelta(hours=k) for k in range(1, 7)]
    latest = {gauge.pk: SensorLatest.objects.get(pk=gauge.pk)}
    ends = [t0 + timedelta(hours=k) for k in range(1, 7)]
    evs = compute_series([gauge], latest, {gauge.pk: [(e, 0.0) for e in ends]})[gauge.pk]
    for end, ev in zip(ends, evs, strict=True):
        fell = sum(v for _sid, ts, v in rows if end - timedelta(hours=1) < ts <= end)
        assert hours[end] == pytest.approx(fell) == pytest.approx(ev.metrics["rain_1h"])


def test_the_single_08_00_reading_closes_the_day_before(net, t0):
    """A hydrological day is (08:00, 08:00 next day], named by the date it starts on [U]: a gauge reporting
    hourly no longer makes a 1-reading "day" of the 08:00 reading."""
    sid = net["rain_a"].pk
    eight = datetime(2026, 7, 2, 0, 0, tzinfo=UTC)  # 08:00 on 2 July, Beijing time
    store([(sid, eight - timedelta(hours=h), 0.4) for h in range(24)])  # 09:00 on 1 July … 08:00 on 2 July
    days = list(DailyAggregate.objects.filter(sensor_id=sid).values_list("day", "readings"))
    assert days == [(date(2026, 7, 1), 24)]


def test_daily_aggregates_follow_the_08_00_beijing_day(net, t0):
    """Daily totals run (08:00, 08:00] Beijing time (00:00 UTC), match a brute-force sum, count each reading
    once, and the migration's rebuild from raw readings gives the same rows, hourly and daily."""
    assert day_of(datetime(2026, 7, 1, 23, 59, tzinfo=UTC)) == date(2026, 7, 1)  # 07:59 on 2 July in Beijing
    assert day_of(datetime(2026, 7, 2, 0, 0, tzinfo=UTC)) == date(2026, 7, 1)  # 08:00 on 2 July: closes 1 July
    assert day_of(datetime(2026, 7, 2, 0, 5, tzinfo=UTC)) == date(2026, 7, 2)  # 08:05: the new day
    rng = random.Random(3)
    sid = net["rain_a"].pk
    rows = [(sid, t0 - timedelta(hours=50) + i * 7 * M, round(rng.random() * 4, 1)) for i in range(700)]
    rng.shuffle(rows)
    for i in range(0, len(rows), 150):
        store(rows[i:i + 150])
    store(rows[:200])  # redelivered
    expected = defaultdict(list)
    for _sid, ts, value in rows:
        expected[(ts.astimezone(ZoneInfo("Asia/Shanghai")) - timedelta(hours=8, microseconds=1)).date()].append(value)

    def stored():
        return {d.day: (d.readings, round(d.total, 6), d.minimum, d.maximum)
                for d in DailyAggregate.objects.filter(sensor_id=sid)}

    assert stored() == {day: (len(v), round(sum(v), 6), min(v), max(v)) for day, v in expected.items()}
    before = stored()

    def hourly():
        return {h.hour: (h.readings, round(h.total, 6), h.minimum, h.maximum)
                for h in HourlyAggregate.objects.filter(sensor_id=sid)}

    hours_before = hourly()
    assert sum(n for n, *_rest in hours_before.values()) == 700
    DailyAggregate.objects.all().delete()
    backfill_daily(None, SimpleNamespace(connection=connection))
    assert stored() == before
    HourlyAggregate.objects.filter(sensor_id=sid).update(total=0)  # wrong buckets, as before the migration
    rebuild_aggregates(None, SimpleNamespace(connection=connection))
    assert stored() == before and hourly() == hours_before
