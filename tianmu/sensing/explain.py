"""An alarm explains itself (issue 9): its level history from the events, the value that triggered it against the
threshold row that applied (and the soil state that chose the row), the readings around it, and the hazard zones
it stands for. Scoped reads only (the alarm through `queries.alarms`, the zones through the registry's scope):
the detail page (`views.alarm_detail_page`) and the API (`GET /api/v1/sensing/alarms/{id}`) are shells over
`alarm_detail`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _

from tianmu.core.models import Event
from tianmu.core.scope import scope_queryset

from .choices import Level, Metric, Rule, SensorType, Soil
from .models import Alarm, HourlyAggregate, SensorLatest
from .rules import RAIN_WINDOWS, ThresholdBook, compute_series

__all__ = ["AlarmDetail", "HistoryEntry", "ThresholdRow", "Zone", "SeriesBar", "alarm_detail", "HISTORY_LABELS",
           "LEVEL_MEANINGS", "SERIES_BEFORE", "SERIES_AFTER"]

# What each alarm event means, for the history (events.py declares them).
HISTORY_LABELS = {
    "opened": _("告警产生"), "escalated": _("升级"), "deescalated": _("降级"), "cleared": _("条件解除"),
    "autoclosed": _("自动关闭"), "acknowledged": _("确认"), "closed": _("关闭"),
}
# What a level means for the rules whose levels have their own names: flash-flood critical rainfall's two-level
# warning (准备转移 / 立即转移 [U], facts.md §6) and the rainstorm signal's colours (facts.md, CMA signals [C]).
LEVEL_MEANINGS = {
    Rule.FLASH_FLOOD: {Level.ORANGE: _("准备转移"), Level.RED: _("立即转移")},
    Rule.RAINSTORM: {Level.BLUE: _("暴雨蓝色信号标准"), Level.YELLOW: _("暴雨黄色信号标准"),
                     Level.ORANGE: _("暴雨橙色信号标准"), Level.RED: _("暴雨红色信号标准")},
}
SERIES_BEFORE, SERIES_AFTER = timedelta(hours=12), timedelta(hours=6)  # the readings shown around the alarm
_LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)


@dataclass
class HistoryEntry:
    """One event of the alarm: what happened, when, by whom (None: the rules or the system)."""

    verb: str
    label: str
    at: datetime
    actor: str | None
    level: str | None
    level_label: str
    metric_label: str
    value: float | None
    threshold: float | None
    observed_at: datetime | None
    note: str


@dataclass
class ThresholdRow:
    """The threshold row that applied: metric, soil state (rainfall rows differ by soil), value per level."""

    metric: str
    soil: str
    soil_label: str
    values: list[tuple[str, str, float | None]]  # (level, its label, threshold), ascending; None = level unused


@dataclass
class Zone:
    """A hazard zone the alarm stands for (a registry hazard source)."""

    pk: int
    code: str
    name: str
    hazard_type: str
    risk_level: str
    town: str
    village: str
    threatened_people: int
    threatened_households: int
    responsible_unit: str


@dataclass
class SeriesBar:
    """One hour of the sensor's data around the alarm (hour labelled by its end): the rain of the hour for a
    gauge, the hour's highest value otherwise; `height` in % of the tallest bar, for the server-drawn chart."""

    hour: datetime
    value: float
    readings: int
    height: float = 0.0
    marked: bool = False  # the hour of the alarm's data time


@dataclass
class AlarmDetail:
    alarm: Alarm
    history: list[HistoryEntry]
    row: ThresholdRow | None
    soil: str | None
    meaning: str
    metrics: list[tuple[str, str, float]]  # (metric, label, value): the rainfall windows at the data time (gauges)
    series: list[SeriesBar]
    series_metric: str  # "sum" (rain per hour) or "max"
    zone_rule: bool  # the rule belongs to hazard zones (geohazard, flash flood)
    zones_registered: bool  # the registry holds zones of that type (otherwise every gauge evaluates the rule)
    zones: list[Zone] = field(default_factory=list)
    zones_hidden: int = 0  # zones it represents outside the actor's read scope (counted, not shown)

    @property
    def series_end(self) -> datetime | None:
        return self.series[-1].hour if self.series else None


def _history(alarm: Alarm) -> list[HistoryEntry]:
    from django.utils.dateparse import parse_datetime

    out = []
    for e in Event.objects.filter(subject=alarm.subject(), type__startswith="sensing.alarm.").select_related(
            "actor").order_by("id"):
        verb = e.type.rsplit(".", 1)[-1]
        p = e.payload or {}
        observed = p.get("observed_at")
        out.append(HistoryEntry(verb=verb, label=str(HISTORY_LABELS.get(verb, verb)), at=e.created_at,
                                actor=str(e.actor) if e.actor_id else None, level=p.get("level"),
                                level_label=str(Level(p["level"]).label) if p.get("level") in Level.values else "",
                                metric_label=str(Metric(p["metric"]).label) if p.get("metric") in Metric.values else "",
                                value=p.get("value"), threshold=p.get("threshold"),
                                observed_at=parse_datetime(observed) if isinstance(observed, str) else None,
                                note=str(p.get("note") or "")))
    return out


def _evaluation(alarm: Alarm):
    """The rules' metrics and soil state of the alarm's sensor at its data time (as the rules saw them)."""
    sensor = alarm.sensor
    if alarm.observed_at is None or sensor.sensor_type != SensorType.RAINFALL:
        return None
    latest = SensorLatest.objects.filter(pk=sensor.pk).in_bulk()
    if sensor.pk not in latest:
        return None
    evs = compute_series([sensor], latest, {sensor.pk: [(alarm.observed_at, 0.0)]}).get(sensor.pk)
    return evs[-1] if evs else None


def _row(alarm: Alarm, soil: str | None) -> ThresholdRow | None:
    """The enabled threshold row of the alarm's rule and metric that the rules would pick for this soil state
    (the thresholds in force now: an edit since the alarm shows here)."""
    if alarm.kind != "threshold":
        return None
    rows = ThresholdBook([alarm.sensor]).for_sensor(alarm.sensor).get(alarm.rule, {})
    by_soil = {row_soil: values for (metric, row_soil), values in rows.items() if metric == alarm.metric}
    for candidate in (soil or Soil.ANY, Soil.ANY, Soil.NORMAL):
        if candidate in by_soil:
            values = by_soil[candidate]
            return ThresholdRow(metric=alarm.metric, soil=candidate, soil_label=str(Soil(candidate).label),
                                values=[(lv, str(lv.label), values.get(lv)) for lv in _LEVELS])
    return None


def _series(alarm: Alarm) -> tuple[list[SeriesBar], str]:
    at = alarm.observed_at or alarm.opened_at
    rain = alarm.sensor.sensor_type == SensorType.RAINFALL
    rows = HourlyAggregate.objects.filter(sensor_id=alarm.sensor_id, hour__gt=at - SERIES_BEFORE,
                                          hour__lte=at + SERIES_AFTER).order_by("hour")
    bars = [SeriesBar(hour=r.hour, value=round(r.total if rain else r.maximum, 3), readings=r.readings)
            for r in rows]
    top = max((abs(b.value) for b in bars), default=0.0)
    floor = min((b.value for b in bars), default=0.0) if not rain else 0.0
    span = (top - floor) if not rain else top
    for b in bars:
        b.height = round(100 * (b.value - floor) / span, 1) if span > 0 else (100.0 if b.value else 0.0)
        if not rain:
            b.height = max(b.height, 4.0)  # a level at the window's lowest still shows
        b.marked = b.hour - timedelta(hours=1) < at <= b.hour
    return bars, ("sum" if rain else "max")


def _zones(actor, alarm: Alarm) -> tuple[bool, bool, list[Zone], int]:
    from tianmu.registry.models import HazardSource

    from .services.directory import ZONE_RULES, directory

    if alarm.rule not in ZONE_RULES:
        return False, False, [], 0
    rep = directory.representation()[alarm.rule]
    if rep.zones is None:
        return True, False, [], 0
    ids = rep.zones.get(alarm.sensor_id, ())
    visible = list(scope_queryset(HazardSource.objects.filter(pk__in=ids), actor).select_related(
        "region__parent").defer("region__boundary", "region__parent__boundary").order_by(
        "-threatened_people", "code"))
    zones = []
    for z in visible:
        village = z.region if z.region.level == "village" else None
        town = z.region.parent if village is not None else z.region
        zones.append(Zone(pk=z.pk, code=z.code, name=z.name, hazard_type=z.get_hazard_type_display(),
                          risk_level=z.get_risk_level_display(), town=town.name if town else "",
                          village=village.name if village else "", threatened_people=z.threatened_people,
                          threatened_households=z.threatened_households, responsible_unit=z.responsible_unit))
    return True, True, zones, len(ids) - len(zones)


def alarm_detail(actor, pk: int) -> AlarmDetail:
    """One alarm the actor may see (another region's is a 404), with everything that explains it."""
    from .queries import alarms

    alarm = get_object_or_404(alarms(actor), pk=pk)
    ev = _evaluation(alarm)
    soil = ev.soil if ev is not None and alarm.rule == Rule.FLASH_FLOOD else None
    metrics = []
    if ev is not None:
        metrics = [(str(m), str(Metric(m).label), round(ev.metrics[m], 1))
                   for m in (*RAIN_WINDOWS, Metric.RAIN_EFFECTIVE) if ev.metrics.get(m) is not None]
    series, series_metric = _series(alarm)
    zone_rule, registered, zones, hidden = _zones(actor, alarm)
    return AlarmDetail(alarm=alarm, history=_history(alarm), row=_row(alarm, soil), soil=soil,
                       meaning=str(LEVEL_MEANINGS.get(alarm.rule, {}).get(alarm.level, "")), metrics=metrics,
                       series=series, series_metric=series_metric, zone_rule=zone_rule, zones_registered=registered,
                       zones=zones, zones_hidden=hidden)
