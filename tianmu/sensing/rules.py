"""Alarm rules: what a sensor measures at its latest reading (rainfall windows, effective rainfall, water level
and its rise, displacement, gas, wind), which thresholds apply to it, and the level each rule reaches.

Only reads: services.py turns assessments into alarm changes. Metrics are computed at the sensor's latest
observation time t (not the wall clock), from the hourly aggregates plus the raw readings of the partial
hours at the window edges — never by scanning a sensor's history.

Rainfall over D hours is the sum of readings in (t − D, t]. The effective rainfall of geological-hazard
warnings is R = P₀ + P_a with P₀ the last 24 h and P_a = Σᵢ Kⁱ·Pᵢ over the previous days (i = 1 … n, 24 h
blocks aligned to the hour), the textbook antecedent precipitation index P_a,t+1 = K·(P_a,t + P_t).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from .choices import LEVELS_ASCENDING, Metric, Rule, SensorType, Soil, level_rank
from .conf import conf
from .models import HourlyAggregate, Reading, Sensor, SensorLatest, Threshold
from .storage import floor_hour

__all__ = ["RAIN_WINDOWS", "Evaluation", "Assessment", "ThresholdBook", "compute_metrics", "soil_state",
           "assess", "assess_sensor", "level_for", "stuck_values"]

HOUR = timedelta(hours=1)
RAIN_WINDOWS = {Metric.RAIN_1H: 1, Metric.RAIN_3H: 3, Metric.RAIN_6H: 6, Metric.RAIN_12H: 12,
                Metric.RAIN_24H: 24}
EDGE_CHUNK = 50


@dataclass
class Evaluation:
    """The metrics of one sensor at its latest observation time."""

    sensor_id: int
    at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    soil: str | None = None
    antecedent: float | None = None
    antecedent_hour: datetime | None = None
    antecedent_changed: bool = False


@dataclass
class Assessment:
    """The level a rule reaches now, and the level it holds with the hysteresis margin."""

    rule: str
    level: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    calm_level: str | None = None
    calm_metric: str | None = None
    calm_value: float | None = None
    calm_threshold: float | None = None


# ---- metrics ---------------------------------------------------------------------------------------------------

def soil_state(antecedent: float | None) -> str:
    """Dry / normal / wet soil from the antecedent precipitation index (mm) [U boundaries, configurable]."""
    if antecedent is None:
        return Soil.NORMAL
    if antecedent < conf("SENSING_SOIL_DRY_BELOW"):
        return Soil.DRY
    if antecedent >= conf("SENSING_SOIL_WET_FROM"):
        return Soil.WET
    return Soil.NORMAL


def _rain_metrics(sensors: list[Sensor], latest: dict[int, SensorLatest], out: dict[int, Evaluation]) -> None:
    ids = [s.pk for s in sensors]
    t_of = {sid: latest[sid].ts for sid in ids}
    earliest = min(floor_hour(t) for t in t_of.values()) - 24 * HOUR
    hourly: dict[int, dict[datetime, float]] = defaultdict(dict)
    for sid, hour, total in HourlyAggregate.objects.filter(sensor_id__in=ids, hour__gte=earliest).values_list(
            "sensor_id", "hour", "total"):
        hourly[sid][floor_hour(hour)] = total
    # Raw readings of the partial hour at the start of each window.
    edges: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for i in range(0, len(ids), EDGE_CHUNK):
        cond = Q()
        for sid in ids[i:i + EDGE_CHUNK]:
            t = t_of[sid]
            ranges = Q()
            for hours in RAIN_WINDOWS.values():
                start = t - hours * HOUR
                ranges |= Q(ts__gt=start, ts__lt=floor_hour(start) + HOUR)
            cond |= Q(sensor_id=sid) & ranges
        for sid, ts, value in Reading.objects.filter(cond).values_list("sensor_id", "ts", "value"):
            edges[sid].append((ts, value))
    for sid in ids:
        t, top = t_of[sid], floor_hour(t_of[sid])
        ev = out[sid]
        for metric, hours in RAIN_WINDOWS.items():
            start = t - hours * HOUR
            first = floor_hour(start)
            full = sum(v for h, v in hourly[sid].items() if first < h <= top)
            edge = sum(v for ts, v in edges[sid] if start < ts < first + HOUR)
            ev.metrics[metric] = round(full + edge, 3)
    _antecedent(sensors, latest, out)


def _antecedent(sensors: list[Sensor], latest: dict[int, SensorLatest], out: dict[int, Evaluation]) -> None:
    """P_a for each rain gauge, cached in SensorLatest for the hour of its latest reading."""
    k, days = conf("SENSING_API_K"), conf("SENSING_API_DAYS")
    misses = []
    for s in sensors:
        lt, ev = latest[s.pk], out[s.pk]
        hour = floor_hour(lt.ts)
        ev.antecedent_hour = hour
        if lt.antecedent_hour is not None and floor_hour(lt.antecedent_hour) == hour and \
                lt.antecedent_index is not None:
            ev.antecedent = lt.antecedent_index
        else:
            misses.append(s.pk)
    if misses:
        end_of = {sid: out[sid].antecedent_hour - 24 * HOUR for sid in misses}
        start = min(end_of.values()) - days * 24 * HOUR
        totals: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
        for sid, hour, total in HourlyAggregate.objects.filter(
                sensor_id__in=misses, hour__gte=start, hour__lt=max(end_of.values())).values_list(
                "sensor_id", "hour", "total"):
            totals[sid].append((floor_hour(hour), total))
        for sid in misses:
            end = end_of[sid]
            blocks = [0.0] * (days + 1)
            for hour, total in totals[sid]:
                if hour < end:
                    i = int((end - hour) / (24 * HOUR)) + 1  # [end − 24h, end) is day 1
                    if 1 <= i <= days:
                        blocks[i] += total
            out[sid].antecedent = round(sum(k ** i * blocks[i] for i in range(1, days + 1)), 3)
            out[sid].antecedent_changed = True
    for s in sensors:
        ev = out[s.pk]
        ev.soil = soil_state(ev.antecedent)
        ev.metrics[Metric.RAIN_EFFECTIVE] = round(ev.metrics[Metric.RAIN_24H] + (ev.antecedent or 0.0), 3)


def _value_before(sensor_id: int, at: datetime, slack: timedelta) -> float | None:
    """The newest reading at or before `at` (no older than at − slack)."""
    row = (Reading.objects.filter(sensor_id=sensor_id, ts__lte=at, ts__gte=at - slack).order_by("-ts")
           .values_list("value", flat=True)[:1])
    return row[0] if row else None


def compute_metrics(sensors: list[Sensor], latest: dict[int, SensorLatest]) -> dict[int, Evaluation]:
    """The metrics of each sensor (that has a latest reading) at its latest observation time."""
    out: dict[int, Evaluation] = {}
    rain = []
    for s in sensors:
        lt = latest.get(s.pk)
        if lt is None:
            continue
        ev = out[s.pk] = Evaluation(sensor_id=s.pk, at=lt.ts)
        if s.sensor_type == SensorType.RAINFALL:
            rain.append(s)
        elif s.sensor_type == SensorType.WATER_LEVEL:
            ev.metrics[Metric.WATER_LEVEL] = lt.value
            before = _value_before(s.pk, lt.ts - HOUR, HOUR)
            if before is not None:
                ev.metrics[Metric.RISE_RATE_1H] = round(lt.value - before, 4)
        elif s.sensor_type == SensorType.DISPLACEMENT:
            before = _value_before(s.pk, lt.ts - 24 * HOUR, 2 * HOUR)
            if before is not None:
                ev.metrics[Metric.DISPLACEMENT_RATE_24H] = round(lt.value - before, 4)
        elif s.sensor_type == SensorType.GAS:
            ev.metrics[Metric.GAS] = lt.value
        elif s.sensor_type == SensorType.WIND:
            ev.metrics[Metric.WIND_SPEED] = lt.value
    if rain:
        _rain_metrics(rain, latest, out)
    return out


def stuck_values(sensor: Sensor, at: datetime) -> tuple[int, bool] | None:
    """(N, all the same) over the sensor's last N readings, for types where a constant value is suspicious."""
    n = conf("SENSING_STUCK_READINGS").get(sensor.sensor_type)
    if not n:
        return None
    values = list(Reading.objects.filter(sensor_id=sensor.pk, ts__lte=at).order_by("-ts")
                  .values_list("value", flat=True)[:n])
    return n, len(values) == n and len(set(values)) == 1


# ---- thresholds ------------------------------------------------------------------------------------------------

Key = tuple[str, str, str]  # (rule, metric, soil)


class ThresholdBook:
    """The thresholds that apply to a set of sensors: type defaults, overlaid by station overrides."""

    def __init__(self, sensors: list[Sensor]):
        types = {s.sensor_type for s in sensors}
        stations = {s.station_id for s in sensors if s.station_id}
        self.defaults: dict[str, dict[Key, Threshold]] = defaultdict(dict)
        self.overrides: dict[tuple[int, str], dict[Key, Threshold]] = defaultdict(dict)
        for t in Threshold.objects.filter(sensor_type__in=types).filter(Q(station=None) | Q(station_id__in=stations)):
            key = (t.rule, t.metric, t.soil)
            if t.station_id is None:
                self.defaults[t.sensor_type][key] = t
            else:
                self.overrides[(t.station_id, t.sensor_type)][key] = t

    def for_sensor(self, sensor: Sensor) -> dict[str, dict[tuple[str, str], dict]]:
        """{rule: {(metric, soil): {"blue": …, "yellow": …, "orange": …, "red": …}}} of enabled thresholds."""
        rows: dict[Key, Threshold] = dict(self.defaults.get(sensor.sensor_type, {}))
        station = sensor.station if sensor.station_id else None
        rows.update(self.overrides.get((sensor.station_id, sensor.sensor_type), {}))
        out: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
        for (rule, metric, soil), t in rows.items():
            if not t.enabled:
                continue
            values = t.values()
            if (rule == Rule.WATER_LEVEL and t.station_id is None and station is not None):
                # A station's warning and guaranteed levels stand in for yellow and red [U mapping].
                if station.warning_level_m is not None:
                    values["yellow"] = station.warning_level_m
                if station.guaranteed_level_m is not None:
                    values["red"] = station.guaranteed_level_m
            out[rule][(metric, soil)] = values
        return out


# ---- levels ----------------------------------------------------------------------------------------------------

def level_for(value: float, values: dict, margin: float = 0.0) -> tuple[str | None, float | None]:
    """The highest level whose threshold (lowered by margin × |threshold|) the value reaches."""
    best, best_thr = None, None
    for level in LEVELS_ASCENDING:
        thr = values.get(level.value)
        if thr is not None and value >= thr - margin * abs(thr):
            best, best_thr = level.value, thr
    return best, best_thr


def assess(rule: str, rows: dict[tuple[str, str], dict], metrics: dict[str, float], soil: str | None,
           margin: float) -> Assessment:
    """The level of one rule: the highest over its metrics, each compared with its soil-specific row if any."""
    variants: dict[str, dict[str, dict]] = defaultdict(dict)
    for (metric, row_soil), values in rows.items():
        variants[metric][row_soil] = values
    chosen = {}
    for metric, by_soil in variants.items():
        values = by_soil.get(soil or Soil.ANY) or by_soil.get(Soil.ANY) or by_soil.get(Soil.NORMAL)
        if values is not None:
            chosen[metric] = values
    out = Assessment(rule)
    best_key, calm_key = (0, 0.0), (0, 0.0)
    for metric, values in sorted(chosen.items()):
        value = metrics.get(metric)
        if value is None:
            continue
        level, thr = level_for(value, values)
        if level is not None and (level_rank(level), _ratio(value, thr)) > best_key:
            best_key = (level_rank(level), _ratio(value, thr))
            out.level, out.metric, out.value, out.threshold = level, metric, value, thr
        calm, calm_thr = level_for(value, values, margin)
        if calm is not None and (level_rank(calm), _ratio(value, calm_thr)) > calm_key:
            calm_key = (level_rank(calm), _ratio(value, calm_thr))
            out.calm_level, out.calm_metric, out.calm_value, out.calm_threshold = calm, metric, value, calm_thr
    return out


def _ratio(value: float, threshold: float | None) -> float:
    return value / threshold if threshold else 0.0


def assess_sensor(sensor: Sensor, evaluation: Evaluation, book: ThresholdBook,
                  extra_rules: set[str] = frozenset()) -> list[Assessment]:
    """Every threshold rule of the sensor (plus `extra_rules`, e.g. those with an active alarm)."""
    margin = conf("SENSING_HYSTERESIS_MARGIN")
    rules = book.for_sensor(sensor)
    out = []
    for rule in sorted(set(rules) | set(extra_rules)):
        out.append(assess(rule, rules.get(rule, {}), evaluation.metrics, evaluation.soil, margin))
    return out
