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
from tianmu.sensing.storage import backfill_daily, day_of, floor_hour, partition_name, store_readings

M = timedelta(minutes=1)


def store(rows):
    with transaction.atomic():
        return store_readings(rows)


def test_store_is_idempotent_and_aggregates_count_each_reading_once(net, t0):
    sid = net["rain_a"].pk
    rows = [(sid, t0 + i * 10 * M, 1.5) for i in range(6)]
    assert len(store(rows)) == 6
    assert store(rows) == []  # a redelivered batch changes nothing
    assert len(store(rows[:3] + [(sid, t0 + 60 * M, 2.0)])) == 1
    assert Reading.objects.filter(sensor=net["rain_a"]).count() == 7
    hours = {floor_hour(h.hour): h for h in HourlyAggregate.objects.filter(sensor_id=sid)}
    first, second = hours[t0], hours[t0 + timedelta(hours=1)]
    assert (first.readings, first.total, first.minimum, first.maximum) == (6, 9.0, 1.5, 1.5)
    assert (second.readings, second.total) == (1, 2.0)
    latest = SensorLatest.objects.get(pk=sid)
    assert latest.ts == t0 + 60 * M and latest.value == 2.0


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
    hour = HourlyAggregate.objects.get(sensor_id=sid, hour=t0)
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


def test_daily_aggregates_follow_the_08_00_beijing_day(net, t0):
    """Daily totals run 08:00–08:00 Beijing time (00:00 UTC), match a brute-force sum, count each reading once,
    and the migration's backfill from raw readings gives the same rows."""
    assert day_of(datetime(2026, 7, 1, 23, 59, tzinfo=UTC)) == date(2026, 7, 1)  # 07:59 on 2 July in Beijing
    assert day_of(datetime(2026, 7, 2, 0, 0, tzinfo=UTC)) == date(2026, 7, 2)  # 08:00 on 2 July: a new day
    rng = random.Random(3)
    sid = net["rain_a"].pk
    rows = [(sid, t0 - timedelta(hours=50) + i * 7 * M, round(rng.random() * 4, 1)) for i in range(700)]
    rng.shuffle(rows)
    for i in range(0, len(rows), 150):
        store(rows[i:i + 150])
    store(rows[:200])  # redelivered
    expected = defaultdict(list)
    for _sid, ts, value in rows:
        expected[(ts.astimezone(ZoneInfo("Asia/Shanghai")) - timedelta(hours=8)).date()].append(value)

    def stored():
        return {d.day: (d.readings, round(d.total, 6), d.minimum, d.maximum)
                for d in DailyAggregate.objects.filter(sensor_id=sid)}

    assert stored() == {day: (len(v), round(sum(v), 6), min(v), max(v)) for day, v in expected.items()}
    before = stored()
    DailyAggregate.objects.all().delete()
    backfill_daily(None, SimpleNamespace(connection=connection))
    assert stored() == before
