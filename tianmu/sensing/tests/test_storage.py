"""Storing readings: idempotent on (sensor, ts), out-of-order accepted, hourly aggregates and latest values
kept exactly in step with what was really new."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction

from tianmu.sensing.models import HourlyAggregate, Reading, SensorLatest
from tianmu.sensing.storage import floor_hour, partition_name, store_readings

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
