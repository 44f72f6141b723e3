"""Alarm rules: what a sensor measures at each of its readings (rainfall windows, effective rainfall, water level
and its rise, displacement, gas, wind), which thresholds apply to it, and the level each rule reaches.

Only reads: services/alarms.py turns assessments into alarm changes. Metrics are computed at an observation
time t of the sensor, every new reading's own time (not the wall clock), from the hourly aggregates plus the
raw readings of the partial hours at the window edges — never by scanning a sensor's history. A whole batch
is evaluated set-wise: every window of every sensor at every time is a `Span`, and `storage.span_stats` answers
them all in one query per table, so the round trips of a batch grow neither with its number of sensors nor
with its readings per sensor.

Rainfall over D hours is the sum of readings in (t − D, t]. The effective rainfall of geological-hazard
warnings is R = P₀ + A(t − 24 h) with P₀ the last 24 h and A(t0) = Σᵢ Kⁱ·Pᵢ over the 24 h blocks before t0, the
textbook antecedent precipitation index P_a,t+1 = K·(P_a,t + P_t); the soil state follows A(t − W), the rain
before the evaluation window (see _rain_metrics).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from .choices import LEVELS_ASCENDING, Metric, Rule, SensorType, Soil, level_rank
from .conf import conf
from .models import Sensor, SensorLatest, Threshold
from .storage import TINY, Span, hour_of, span_stats, trailing_sums

__all__ = ["RAIN_WINDOWS", "antecedent_cuts", "Evaluation", "Assessment", "ThresholdBook", "compute_metrics", "compute_series",
           "soil_state",
           "assess", "assess_sensor", "level_for"]

HOUR = timedelta(hours=1)
RAIN_WINDOWS = {Metric.RAIN_1H: 1, Metric.RAIN_3H: 3, Metric.RAIN_6H: 6, Metric.RAIN_12H: 12,
                Metric.RAIN_24H: 24}


@dataclass
class Evaluation:
    """The metrics of one sensor at one observation time (one of its readings)."""

    sensor_id: int
    at: datetime
    metrics: dict[str, float] = field(default_factory=dict)
    soil: str | None = None
    antecedent: float | None = None  # A(t − 24 h), the antecedent part of the effective rainfall
    soil_index: float | None = None  # A(t − W), what the soil state is judged from
    antecedent_hour: datetime | None = None
    antecedent_whole: tuple[float, float] | None = None  # the whole-hour parts of both, cached per hour
    antecedent_changed: bool = False
    stuck: tuple[int, bool] | None = None  # (N, the last N readings are all the same); None: no verdict


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


# Stuck detection looks at the last N readings within N × interval × this factor. With fewer readings there
# (a sensor with gaps) the verdict is "not stuck" only if they differ; if they are all the same, no verdict:
# a stuck fault is neither opened nor cleared.
STUCK_LOOKBACK_FACTOR = 2


Point = tuple[datetime, float]  # (observation time, the reading's value)


def antecedent_cuts(top0: datetime, days: int) -> list[datetime]:
    """The trailing-sum cuts of the day blocks of the antecedent index at the hour ending top0: block i (1 … n)
    is the hour labels top0 − 24h·i + 1 h … top0 − 24h·(i − 1), i.e. the readings in (top0 − 24h·i,
    top0 − 24h·(i − 1)]; block i = T(cut i) − T(cut i − 1)."""
    return [top0 + HOUR - 24 * i * HOUR for i in range(days + 1)]


def _hourly_index(sums: list[float], k: float) -> float:
    """Σᵢ Kⁱ·Pᵢ over the day blocks whose trailing sums are `sums` (see antecedent_cuts)."""
    return sum(k ** i * (sums[i] - sums[i - 1]) for i in range(1, len(sums)))


def _rain_metrics(rain: list[tuple[Sensor, Evaluation]], latest: dict[int, SensorLatest],
                  edges: dict[tuple[int, int, str], float], tails: dict[tuple[int, int], float],
                  changed_since: dict[int, datetime]) -> None:
    """Rainfall windows, effective rainfall and soil state at every evaluated time.

    Windows: the full hours from the hourly aggregates, minus the readings after t in t's own hour (the hour's
    total may already hold later readings of the batch), plus the edge readings already read.

    Antecedent index at a time t0, A(t0) = Σᵢ₌₁ⁿ Kⁱ·Pᵢ with Pᵢ the rain of the i-th 24 h before t0: the textbook
    P_a,t+1 = K·(P_a,t + P_t) (facts.md §6) evaluated at t0 rather than at a day boundary. Block 1 ends at t0
    exactly; the older block boundaries are aligned to the hours (blocks 2 … n and block 1's start), so every
    reading falls in exactly one block. Effective rainfall R(t) = P₀ + A(t − 24 h), P₀ the rain in
    (t − 24 h, t]: no reading is counted twice or missed between the two. Soil state from A(t − W), W =
    SENSING_SOIL_WINDOW_HOURS: the rain already fallen in the storm before the evaluation window counts.

    A(t0) = H(hour_of(t0)) − K·(readings in (t0, hour_of(t0)]), where H, over whole hours, depends only on t's
    hour and the edge term is the window edge already read. H is read once per gauge and hour, unless the values
    cached on SensorLatest for that hour are still valid (no new reading falls in their blocks)."""
    k, days = conf("SENSING_API_K"), conf("SENSING_API_DAYS")
    soil_hours = int(conf("SENSING_SOIL_WINDOW_HOURS"))
    soil_metric = next((m for m, h in RAIN_WINDOWS.items() if h == soil_hours), None)
    if soil_metric is None:
        raise ValueError(f"SENSING_SOIL_WINDOW_HOURS must be one of {sorted(RAIN_WINDOWS.values())}")
    windows = list(RAIN_WINDOWS.items())
    spans: list[tuple[int, datetime, datetime, list[datetime]]] = []
    hour_spans: dict[tuple[int, datetime], int] = {}  # (sensor, hour) → position of its antecedent span
    window_spans: dict[tuple[int, datetime], int] = {}  # (sensor, hour) → position of its windows' span
    cached: dict[tuple[int, datetime], tuple[float, float]] = {}
    for s, ev in rain:
        top = hour_of(ev.at)
        key = (s.id, top)
        if key not in window_spans:  # every evaluation in the same hour shares the full hours of its windows
            cuts = [top - (hours - 1) * HOUR for _m, hours in windows]  # labels top − D + 1 h … top
            window_spans[key] = len(spans)
            spans.append((s.id, min(cuts), top, cuts))
        if key in hour_spans or key in cached:
            continue
        lt = latest[s.id]
        since = changed_since.get(s.id)
        if (lt.antecedent_hour is not None and lt.antecedent_hour == top and lt.antecedent_index is not None
                and lt.soil_index is not None and (since is None or since > top - soil_hours * HOUR)):
            cached[key] = (lt.antecedent_index, lt.soil_index)
        else:
            hour_spans[key] = len(spans)
            cuts = antecedent_cuts(top - 24 * HOUR, days) + antecedent_cuts(top - soil_hours * HOUR, days)
            spans.append((s.id, min(cuts), top - min(24, soil_hours) * HOUR, cuts))
    sums = trailing_sums(spans, "hourly")
    for i, (s, ev) in enumerate(rain):
        tail = tails.get((s.id, i), 0.0)
        key = (s.id, hour_of(ev.at))
        for (metric, _hours), total in zip(windows, sums[window_spans[key]], strict=True):
            ev.metrics[metric] = round(total - tail + edges.get((s.id, i, metric), 0.0), 3)
        ev.antecedent_hour = key[1]
        if key in cached:
            whole_24, whole_soil = cached[key]
        else:
            at = sums[hour_spans[key]]
            whole_24, whole_soil = _hourly_index(at[:days + 1], k), _hourly_index(at[days + 1:], k)
            ev.antecedent_changed = True
        ev.antecedent_whole = (whole_24, whole_soil)
        ev.antecedent = round(whole_24 - k * edges.get((s.id, i, Metric.RAIN_24H), 0.0), 3)
        ev.soil_index = round(whole_soil - k * edges.get((s.id, i, soil_metric), 0.0), 3)
        ev.soil = soil_state(ev.soil_index)
        ev.metrics[Metric.RAIN_EFFECTIVE] = round(ev.metrics[Metric.RAIN_24H] + ev.antecedent, 3)


# The reading an hour (water level) or a day (displacement) before the latest, no older than the slack.
_BEFORE = {SensorType.WATER_LEVEL: (Metric.RISE_RATE_1H, HOUR, HOUR),
           SensorType.DISPLACEMENT: (Metric.DISPLACEMENT_RATE_24H, 24 * HOUR, 2 * HOUR)}
_CURRENT = {SensorType.WATER_LEVEL: Metric.WATER_LEVEL, SensorType.GAS: Metric.GAS,
            SensorType.WIND: Metric.WIND_SPEED}


def compute_series(sensors: list[Sensor], latest: dict[int, SensorLatest],
                   points: dict[int, list[Point]] | None = None,
                   changed_since: dict[int, datetime] | None = None) -> dict[int, list[Evaluation]]:
    """The metrics of each sensor at each of its `points` (observation times with their values, default: its
    latest reading), in time order, with the stuck verdict at each. However many sensors and points, this reads
    history in at most three queries (raw spans, hourly spans; SQLite: one per 1,000 spans), so a batch that
    brings an hour of readings per sensor costs the same number of round trips as one reading per sensor.
    `changed_since`: each sensor's oldest new reading, which makes a cached antecedent index it predates stale."""
    out: dict[int, list[Evaluation]] = {}
    stuck_n = conf("SENSING_STUCK_READINGS")
    changed_since = changed_since or {}
    rain: list[tuple[Sensor, Evaluation]] = []
    spans: list[Span] = []
    uses: list[tuple[int, int, str, str]] = []  # per span: (sensor, point, "edge"|"tail"|"before"|"stuck", metric)
    values: dict[tuple[int, int], float] = {}
    for s in sensors:
        lt = latest.get(s.id)
        if lt is None:
            continue
        pts = sorted(points.get(s.id) or []) if points is not None else [(lt.ts, lt.value)]
        if not pts:
            continue
        evs = out[s.id] = []
        kind = s.sensor_type
        n = stuck_n.get(kind)
        for t, value in pts:
            ev = Evaluation(sensor_id=s.id, at=t)
            evs.append(ev)
            if kind == SensorType.RAINFALL:
                i = len(rain)
                rain.append((s, ev))
                top = hour_of(t)  # t's hour (top − 1 h, top]
                for metric, hours in RAIN_WINDOWS.items():  # the partial hour at the start of each window
                    back = hours * HOUR
                    spans.append(Span(s.id, t - back + TINY, top - back))  # (t − D, top − D]
                    uses.append((s.id, i, "edge", metric))
                spans.append(Span(s.id, t + TINY, top))  # (t, top]: later in t's own hour
                uses.append((s.id, i, "tail", ""))
            if kind in _CURRENT:
                ev.metrics[_CURRENT[kind]] = value
            if kind in _BEFORE:
                metric, back, slack = _BEFORE[kind]
                values[(s.id, id(ev))] = value
                spans.append(Span(s.id, t - back - slack, t - back, newest=1))
                uses.append((s.id, id(ev), "before", metric))
            if n:
                lookback = timedelta(seconds=n * (s.interval_s or 300) * STUCK_LOOKBACK_FACTOR)
                spans.append(Span(s.id, t - lookback, t, newest=n))
                uses.append((s.id, id(ev), "stuck", str(n)))
    by_id = {id(ev): ev for evs in out.values() for ev in evs}
    edges: dict[tuple[int, int, str], float] = {}
    tails: dict[tuple[int, int], float] = {}
    for (sid, ref, use, metric), stats in zip(uses, span_stats(spans), strict=True):
        if use == "edge":
            edges[(sid, ref, metric)] = stats.total
        elif use == "tail":
            tails[(sid, ref)] = stats.total
        elif use == "before":
            if stats.count:
                by_id[ref].metrics[metric] = round(values[(sid, ref)] - stats.maximum, 4)
        else:
            n, differ = int(metric), stats.count > 0 and stats.minimum != stats.maximum
            by_id[ref].stuck = (n, not differ) if stats.count == n or differ else None
    if rain:
        _rain_metrics(rain, latest, edges, tails, changed_since)
    return out


def compute_metrics(sensors: list[Sensor], latest: dict[int, SensorLatest]) -> dict[int, Evaluation]:
    """The metrics of each sensor (that has a latest reading) at its latest observation time."""
    return {sid: evs[-1] for sid, evs in compute_series(sensors, latest).items()}


# ---- thresholds ------------------------------------------------------------------------------------------------

Key = tuple[str, str, str]  # (rule, metric, soil)


class ThresholdBook:
    """The thresholds that apply to a set of sensors: type defaults, overlaid by station overrides."""

    def __init__(self, sensors: list[Sensor], thresholds: Iterable[Threshold] | None = None):
        """`thresholds`: every threshold row, if the caller holds them already (ingest's directory does);
        otherwise those of these sensors' types and stations are read."""
        types = {s.sensor_type for s in sensors}
        stations = {s.station_id for s in sensors if s.station_id}
        self.defaults: dict[str, dict[Key, Threshold]] = defaultdict(dict)
        self.overrides: dict[tuple[int, str], dict[Key, Threshold]] = defaultdict(dict)
        self._memo: dict[int, dict[str, dict[tuple[str, str], dict]]] = {}
        if thresholds is None:
            thresholds = Threshold.objects.filter(sensor_type__in=types).filter(
                Q(station=None) | Q(station_id__in=stations))
        for t in thresholds:
            key = (t.rule, t.metric, t.soil)
            if t.station_id is None:
                self.defaults[t.sensor_type][key] = t
            else:
                self.overrides[(t.station_id, t.sensor_type)][key] = t

    def for_sensor(self, sensor: Sensor) -> dict[str, dict[tuple[str, str], dict]]:
        """{rule: {(metric, soil): {"blue": …, "yellow": …, "orange": …, "red": …}}} of enabled thresholds.
        Worked out once per sensor and book (a batch evaluates a sensor at each of its readings); the caller gets
        its own outer dict and must not change the inner ones."""
        memo = self._memo.get(sensor.id)
        if memo is None:
            memo = self._memo[sensor.id] = self._for_sensor(sensor)
        return dict(memo)

    def _for_sensor(self, sensor: Sensor) -> dict[str, dict[tuple[str, str], dict]]:
        rows: dict[Key, Threshold] = dict(self.defaults.get(sensor.sensor_type, {}))
        station = sensor.station if sensor.station_id else None
        rows.update(self.overrides.get((sensor.station_id, sensor.sensor_type), {}))
        out: dict[str, RuleRows] = defaultdict(RuleRows)
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

_LEVEL_NAMES = tuple(str(level.value) for level in LEVELS_ASCENDING)


def level_for(value: float, values: dict, margin: float = 0.0, band: float | None = None
              ) -> tuple[str | None, float | None]:
    """The highest level whose threshold the value reaches, the threshold lowered by `band` (in the metric's
    unit) if given, else by margin × |threshold|."""
    best, best_thr = None, None
    for level in _LEVEL_NAMES:
        thr = values.get(level)
        if thr is not None and value >= thr - (band if band is not None else margin * abs(thr)):
            best, best_thr = level, thr
    return best, best_thr


class RuleRows(dict):
    """One rule's threshold rows {(metric, soil): values} as ThresholdBook.for_sensor gives them, remembering
    which row applies to each metric for each soil state (worked out once per sensor, not per reading)."""

    __slots__ = ("_chosen",)

    def chosen(self, soil: str | None) -> list[tuple[str, dict]]:
        try:
            cache = self._chosen
        except AttributeError:
            cache = self._chosen = {}
        found = cache.get(soil)
        if found is None:
            found = cache[soil] = _choose(self, soil)
        return found


def _choose(rows: dict[tuple[str, str], dict], soil: str | None) -> list[tuple[str, dict]]:
    """(metric, threshold values) for each metric, sorted: its row for this soil state, else the row for any."""
    variants: dict[str, dict[str, dict]] = defaultdict(dict)
    for (metric, row_soil), values in rows.items():
        variants[metric][row_soil] = values
    chosen = {}
    for metric, by_soil in variants.items():
        values = by_soil.get(soil or Soil.ANY) or by_soil.get(Soil.ANY) or by_soil.get(Soil.NORMAL)
        if values is not None:
            chosen[metric] = values
    return sorted(chosen.items())


def assess(rule: str, rows: dict[tuple[str, str], dict], metrics: dict[str, float], soil: str | None,
           margin: float, bands: dict[str, float] | None = None) -> Assessment:
    """The level of one rule: the highest over its metrics, each compared with its soil-specific row if any.
    The calm level (hysteresis) lowers thresholds by margin × threshold, or by a fixed band for the metrics in
    `bands`: quantities measured from a datum, like a water level's elevation, where 10 % of 240 m means 24 m."""
    bands = bands or {}
    chosen = rows.chosen(soil) if isinstance(rows, RuleRows) else _choose(rows, soil)
    out = Assessment(rule)
    best_key, calm_key = (0, 0.0), (0, 0.0)
    for metric, values in chosen:
        value = metrics.get(metric)
        if value is None:
            continue
        level, thr = level_for(value, values)
        if level is not None and (level_rank(level), _ratio(value, thr)) > best_key:
            best_key = (level_rank(level), _ratio(value, thr))
            out.level, out.metric, out.value, out.threshold = level, metric, value, thr
        calm, calm_thr = level_for(value, values, margin, bands.get(metric))
        if calm is not None and (level_rank(calm), _ratio(value, calm_thr)) > calm_key:
            calm_key = (level_rank(calm), _ratio(value, calm_thr))
            out.calm_level, out.calm_metric, out.calm_value, out.calm_threshold = calm, metric, value, calm_thr
    return out


def _ratio(value: float, threshold: float | None) -> float:
    return value / threshold if threshold else 0.0


def assess_sensor(sensor: Sensor, evaluation: Evaluation, book: ThresholdBook,
                  extra_rules: set[str] = frozenset(), disabled: set[str] = frozenset()) -> list[Assessment]:
    """Every threshold rule of the sensor (plus `extra_rules`, e.g. those with an active alarm). A rule in
    `disabled` (the geohazard rule at a gauge that represents no hazard zone) reaches no level: an active alarm
    of it calms down and clears."""
    margin, bands = conf("SENSING_HYSTERESIS_MARGIN"), conf("SENSING_HYSTERESIS_BANDS")
    rules = book.for_sensor(sensor)
    for rule in disabled:
        rules.pop(rule, None)
    out = []
    for rule in sorted(set(rules) | set(extra_rules)):
        out.append(assess(rule, rules.get(rule, {}), evaluation.metrics, evaluation.soil, margin, bands))
    return out
