"""The demo's quiet-weather feed: after the storm that `tianmu demo` replays, the demo network keeps reporting.

Why: nothing else feeds the demo sensors, so SENSING_NO_DATA_INTERVALS intervals after the demo is served
every one of them would raise a 数据中断 (no data) alarm, and the storm's alarms would stay as they were. This
feed plays the devices' timed reports (定时报) through the ingest worker's own path (`services.ingest_messages`:
parsing, storage, rules, alarms, events), so readings are stored, the storm's alarms de-escalate with
hysteresis and clear, and the alarm list and the map update live.

It invents data, so only `tianmu demo` starts it (`tianmu run --demo-feed` supervises `tianmu demo_feed`);
`tianmu run` alone never does.

* **On each sensor's own interval.** Report times lie on the sensor's grid (whole multiples of `interval_s`
  since 2000-01-01 UTC: hourly sensors report on the hour). A tick sends every report due since the sensor's
  newest reading, at most CATCH_UP back (a station back from an outage sends what it stored meanwhile).
  Storage keeps the first value per (sensor, ts), so a restart, a repeated tick or a second feed never
  stores a reading twice. Sensors that never reported and retired ones are left alone.
* **It never raises an alarm itself.** Rain gauges report 0 mm (every rainfall window and the effective
  rainfall can then only shrink); water levels recede exponentially toward a dry-weather level below their
  warning level (rivers within hours, reservoirs within days) and never rise above where they are, apart from
  a 2 cm daily swing and millimetres of sensor noise; slopes creep a fraction of a millimetre a day; gas, wind
  and soil moisture stay at quiet values; every value is kept inside the sensor's valid range.
* **Deterministic.** The noise is a function of the sensor and the time, so the same tick sends the same
  values, and the next value follows from the stored one with that noise taken out: no state of its own.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from ..choices import SensorType, StationType
from ..conf import conf
from ..models import Sensor
from ..services.readings import IngestOutcome, ingest_messages

__all__ = ["FED", "CATCH_UP", "GRID_EPOCH", "FeedSensor", "FeedReport", "grid_times", "load_sensors", "dry_level",
           "next_value", "tick"]

FED = (SensorType.RAINFALL, SensorType.WATER_LEVEL, SensorType.DISPLACEMENT, SensorType.GAS, SensorType.WIND,
       SensorType.SOIL_MOISTURE)
GRID_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CATCH_UP = timedelta(hours=24)
BATCH_READINGS = 2000  # readings per ingest transaction at most

# Water levels fall back to a dry-weather level this far below the warning level (demo assumption: rivers run
# 2–3 m under 警戒水位 in dry weather, a reservoir's pool ~1 m under its 汛限水位), with this time constant.
DRY_MARGIN_M = {StationType.RESERVOIR: 1.2}
DEFAULT_DRY_MARGIN_M = 2.7
RECESSION_H = {StationType.RESERVOIR: 24.0}
DEFAULT_RECESSION_H = 6.0
SWING_M = 0.02  # daily swing of a water level
SOIL_FIELD_CAPACITY = 28.0  # % the soil dries toward after rain, over SOIL_DRYING_H
SOIL_DRYING_H = 72.0
# Sensor noise (standard deviation) and rounding, per measured quantity.
NOISE = {SensorType.WATER_LEVEL: 0.003, SensorType.DISPLACEMENT: 0.1, SensorType.SOIL_MOISTURE: 0.3}
DIGITS = {SensorType.WATER_LEVEL: 3, SensorType.DISPLACEMENT: 2}


@dataclass
class FeedSensor:
    """What the feed needs to know of one sensor: where it reports and its newest stored reading."""

    pk: int
    code: str
    station: str  # station code for the topic, "-" for a stand-alone device
    sensor_type: str
    station_type: str
    interval_s: int
    ts: datetime
    value: float
    warning: float | None = None
    valid_min: float | None = None
    valid_max: float | None = None


@dataclass
class FeedReport(IngestOutcome):
    """What a tick did: the ingest outcomes of its batches summed, and how many sensors had reports due."""

    sensors: int = 0


def grid_times(newest: datetime, interval_s: int, now: datetime) -> list[datetime]:
    """The report times due by `now` after the newest stored reading: the sensor's grid points in
    (max(newest, now − CATCH_UP), now]."""
    step = timedelta(seconds=max(1, interval_s))
    after = max(newest, now - CATCH_UP)
    t = GRID_EPOCH + ((after - GRID_EPOCH) // step + 1) * step
    out = []
    while t <= now:
        out.append(t)
        t += step
    return out


def load_sensors() -> list[FeedSensor]:
    """Every active sensor of a fed quantity that has reported before, with its newest reading (one query)."""
    rows = (Sensor.objects.filter(retired=False, sensor_type__in=FED, latest__isnull=False).order_by("code")
            .values_list("pk", "code", "station__code", "sensor_type", "station__station_type", "interval_s",
                         "latest__ts", "latest__value", "station__warning_level_m", "valid_min", "valid_max"))
    return [FeedSensor(pk=pk, code=code, station=station or "-", sensor_type=st, station_type=station_type or "",
                       interval_s=interval or 300, ts=ts, value=value, warning=warning, valid_min=lo, valid_max=hi)
            for pk, code, station, st, station_type, interval, ts, value, warning, lo, hi in rows]


def _noise(s: FeedSensor, ts: datetime) -> float:
    """The sensor's deviation at `ts` from the quantity it measures: noise, and a water level's daily swing."""
    sigma = NOISE.get(s.sensor_type, 0.0)
    value = random.Random(f"feed|{s.code}|{ts.isoformat()}").gauss(0, sigma) if sigma else 0.0
    if s.sensor_type == SensorType.WATER_LEVEL:
        hour = ts.astimezone(ZoneInfo(settings.TIME_ZONE))
        value += SWING_M * math.sin(2 * math.pi * (hour.hour + hour.minute / 60 - 8) / 24)
    return value


def dry_level(s: FeedSensor) -> float | None:
    """The level a water-level sensor recedes toward: below its warning level, inside its valid range. None
    without a warning level (the level then holds where it is)."""
    if s.warning is None:
        return None
    level = s.warning - DRY_MARGIN_M.get(s.station_type, DEFAULT_DRY_MARGIN_M)
    return level if s.valid_min is None else max(level, s.valid_min)


def _recede(current: float, target: float | None, hours: float, time_constant_h: float) -> float:
    """Exponential recession toward `target`, never upward."""
    if target is None or current <= target:
        return current
    return target + (current - target) * math.exp(-hours / time_constant_h)


def next_value(s: FeedSensor, prev_ts: datetime, prev_value: float, ts: datetime) -> float:
    """The sensor's quiet-weather reading at `ts`, following its reading `prev_value` at `prev_ts`."""
    rng = random.Random(f"feed|{s.code}|{ts.isoformat()}|value")
    hours = (ts - prev_ts).total_seconds() / 3600
    underlying = prev_value - _noise(s, prev_ts)  # what the sensor measured, without its noise
    if s.sensor_type == SensorType.RAINFALL:
        value = 0.0
    elif s.sensor_type == SensorType.WATER_LEVEL:
        value = _recede(underlying, dry_level(s), hours, RECESSION_H.get(s.station_type, DEFAULT_RECESSION_H))
    elif s.sensor_type == SensorType.DISPLACEMENT:
        creep_mm_per_day = random.Random(f"feed|{s.code}|creep").uniform(0.05, 0.3)
        value = underlying + creep_mm_per_day * hours / 24
    elif s.sensor_type == SensorType.SOIL_MOISTURE:
        value = _recede(underlying, SOIL_FIELD_CAPACITY, hours, SOIL_DRYING_H)
    elif s.sensor_type == SensorType.GAS:
        value = max(0.0, rng.gauss(0.6, 0.4))
    else:  # wind: a breeze
        value = max(0.0, rng.gauss(2.5, 1.0))
    value = round(value + _noise(s, ts), DIGITS.get(s.sensor_type, 1))
    if s.valid_min is not None:
        value = max(value, s.valid_min)
    if s.valid_max is not None:
        value = min(value, s.valid_max)
    return value


def _message(s: FeedSensor, times: list[datetime], prefix: str) -> tuple[str, bytes, int]:
    """One device message with the reports due (the device sends what it has not sent yet in one go)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    items, prev_ts, prev_value = [], s.ts, s.value
    for ts in times:
        value = next_value(s, prev_ts, prev_value, ts)
        items.append({"ts": ts.astimezone(zone).isoformat(timespec="seconds"), "value": value})
        prev_ts, prev_value = ts, value
    body = json.dumps({"readings": items}, separators=(",", ":")).encode()
    return f"{prefix}/{s.station}/{s.code}/data", body, len(items)


def _send(messages: list[tuple[str, bytes]], now: datetime, prefix: str, report: FeedReport) -> None:
    report.add(ingest_messages(messages, prefix=prefix, now=now))


def tick(now: datetime | None = None, *, prefix: str | None = None) -> FeedReport:
    """Send every report due by `now` through the ingest service, in batches of about BATCH_READINGS."""
    now = now or timezone.now()
    prefix = prefix or conf("SENSING_MQTT_TOPIC_PREFIX")
    report = FeedReport()
    batch: list[tuple[str, bytes]] = []
    size = 0
    for s in load_sensors():
        times = grid_times(s.ts, s.interval_s, now)
        if not times:
            continue
        topic, body, n = _message(s, times, prefix)
        batch.append((topic, body))
        report.sensors += 1
        size += n
        if size >= BATCH_READINGS:
            _send(batch, now, prefix, report)
            batch, size = [], 0
    if batch:
        _send(batch, now, prefix, report)
    return report
