"""Scoped reads of monitoring data: latest values, a sensor's readings (raw or hourly), alarms, dead letters
and thresholds. Every read is limited to the actor's region through tianmu.core.scope."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import reduce
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import DeadLetter, Region
from tianmu.core.scope import can, region_prefix, scope_queryset

from .choices import (
    ACTIVE_STATUSES,
    LEVEL_RANK,
    AlarmKind,
    AlarmStatus,
    Level,
    Metric,
    Rule,
    SensorType,
    StationType,
)
from .models import Alarm, DailyAggregate, HourlyAggregate, Reading, Sensor, SensorLatest, Station, Threshold
from .storage import day_of, hour_of

__all__ = ["visible_sensors", "latest_values", "sensor_for", "readings", "hourly", "AlarmFilter", "alarms",
           "dead_letters", "thresholds", "parse_time", "MAX_RAW_POINTS", "MAX_RAW_SPAN", "MAX_HOURLY_SPAN",
           "MAX_DAILY_SPAN", "daily", "day_start", "sensor_by_pk", "order_alarms", "LEVEL_ORDER", "LEVEL_ORDER_LATEST", "alarm_counts", "alarm_towns", "chart_thresholds", "CHART_RULES",
           "map_sensor_rows", "map_alarm_rows", "can_see_dead_letters", "alarms_by_station", "station_level_counts",
           "station_groups", "visible_station", "alarm_place", "open_alarms_by_group", "alarm_evidence"]

MAX_RAW_POINTS = 20_000
# The times a query may name (parse_time).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_RAW_SPAN = timedelta(days=31)
MAX_HOURLY_SPAN = timedelta(days=366)
MAX_DAILY_SPAN = timedelta(days=3660)


def _choice(name: str, value: str | None, choices) -> str | None:
    if value in (None, ""):
        return None
    if value not in {c.value for c in choices}:
        raise ServiceError({name: [_("不是有效的选项")]})
    return value


def _several(name: str, value, choices=None) -> list[str]:
    """A filter that takes several values: a list, or one string with commas ("red,orange"); each checked."""
    if value in (None, ""):
        return []
    values = [str(v).strip() for v in (value if isinstance(value, list | tuple) else str(value).split(","))]
    values = list(dict.fromkeys(v for v in values if v))
    for v in values if choices is not None else ():
        _choice(name, v, choices)
    return values


def parse_time(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 query parameter (Asia/Shanghai when it has no offset) → aware datetime."""
    if value in (None, ""):
        return None
    text = value.strip()
    if "T" in text and text.count(" ") == 1:
        text = text.replace(" ", "+")  # an unencoded "+08:00" arrives as " 08:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ServiceError({name: [_("时间格式应为 ISO 8601")]}) from exc
    ts = ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))
    if not EARLIEST <= ts < LATEST:  # beyond these, converting to UTC or a span around it overflows
        raise ServiceError({name: [_("时间应在 1970 年到 2100 年之间")]})
    return ts


def visible_sensors(actor) -> QuerySet:
    return scope_queryset(Sensor.objects.all(), actor)


def sensor_for(actor, code: str) -> Sensor:
    """The sensor with this code if the actor may see it, else 404."""
    return get_object_or_404(visible_sensors(actor).select_related("station", "region"), code=code)


def latest_values(actor, *, region: str | None = None, station: str | None = None, station_type: str | None = None,
                  sensor_type: str | None = None, level: str | None = None, alarming: bool = False) -> QuerySet:
    """The latest reading of every sensor the actor may see: one query over one row per sensor."""
    qs = scope_queryset(SensorLatest.objects.all(), actor, "sensor__region")
    if region:
        qs = qs.filter(sensor__region__code__startswith=region)
    if station:
        qs = qs.filter(sensor__station__code=station)
    if _choice("station_type", station_type, StationType):
        qs = qs.filter(sensor__station__station_type=station_type)
    if _choice("sensor_type", sensor_type, SensorType):
        qs = qs.filter(sensor__sensor_type=sensor_type)
    if _choice("level", level, Level):
        qs = qs.filter(alarm_level=level)
    if alarming:
        qs = qs.exclude(alarm_level="")
    # Only the columns the API and the page show: sensors and stations carry wide descriptive columns.
    return (qs.select_related("sensor", "sensor__station", "sensor__region", "sensor__region__parent")
            .only(*LATEST_COLUMNS).order_by("sensor__code"))


LATEST_COLUMNS = ("ts", "value", "received_at", "alarm_level", "sensor__code", "sensor__name", "sensor__sensor_type",
                  "sensor__unit", "sensor__lon", "sensor__lat", "sensor__station", "sensor__region",
                  "sensor__station__code", "sensor__station__name", "sensor__station__station_type",
                  "sensor__region__code", "sensor__region__name", "sensor__region__level", "sensor__region__parent",
                  "sensor__region__parent__name", "sensor__region__parent__code")


def _span(start: datetime | None, end: datetime | None, limit: timedelta) -> tuple[datetime, datetime]:
    end = end or timezone.now()
    start = start or end - timedelta(hours=24)
    if start > end:
        raise ServiceError({"start": [_("开始时间不应晚于结束时间")]})
    if end - start > limit:
        raise ServiceError({"start": [_("查询时间跨度过大")]})
    return start, end


def readings(sensor: Sensor, start: datetime | None, end: datetime | None) -> list[tuple[datetime, float]]:
    """Raw readings in [start, end], oldest first (at most MAX_RAW_POINTS)."""
    start, end = _span(start, end, MAX_RAW_SPAN)
    return list(Reading.objects.filter(sensor_id=sensor.pk, ts__gte=start, ts__lte=end).order_by("ts")
                .values_list("ts", "value")[:MAX_RAW_POINTS])


def hourly(sensor: Sensor, start: datetime | None, end: datetime | None) -> list[HourlyAggregate]:
    """Hourly aggregates of the hours (E − 1 h, E] that overlap [start, end], labelled by their end E, oldest
    first."""
    start, end = _span(start, end, MAX_HOURLY_SPAN)
    return list(HourlyAggregate.objects.filter(sensor_id=sensor.pk, hour__gte=hour_of(start),
                                               hour__lte=hour_of(end)).order_by("hour"))


def daily(sensor: Sensor, start: datetime | None, end: datetime | None) -> list[DailyAggregate]:
    """Daily aggregates of the observation days (SENSING_DAY_START_HOUR to the same hour the next day) that
    overlap [start, end], oldest first."""
    start, end = _span(start, end, MAX_DAILY_SPAN)
    return list(DailyAggregate.objects.filter(sensor_id=sensor.pk, day__gte=day_of(start), day__lte=day_of(end))
                .order_by("day"))


def day_start(day) -> datetime:
    """When an observation day begins (aware, in the local zone)."""
    from .conf import conf

    tz = timezone.get_default_timezone()
    return datetime.combine(day, time(int(conf("SENSING_DAY_START_HOUR"))), tzinfo=tz)


@dataclass
class AlarmFilter:
    status: str | None = None  # open | acknowledged | closed | active (open or acknowledged)
    level: str | tuple[str, ...] | None = None  # one level, several (tuple), or "red,orange"
    kind: str | None = None
    rule: str | None = None
    region: str | tuple[str, ...] | None = None  # a region code (its subtree), several, or comma-separated
    station: str | None = None
    sensor: str | None = None
    since: datetime | None = None


def alarms(actor, flt: AlarmFilter | None = None) -> QuerySet:
    """Alarms in the actor's region, newest first."""
    flt = flt or AlarmFilter()
    qs = scope_queryset(Alarm.objects.all(), actor)
    if flt.status == "active":
        qs = qs.filter(status__in=ACTIVE_STATUSES)
    elif _choice("status", flt.status, AlarmStatus):
        qs = qs.filter(status=flt.status)
    levels = _several("level", flt.level, Level)
    if levels:
        qs = qs.filter(level__in=levels)
    if _choice("kind", flt.kind, AlarmKind):
        qs = qs.filter(kind=flt.kind)
    if _choice("rule", flt.rule, Rule):
        qs = qs.filter(rule=flt.rule)
    regions = _several("region", flt.region)
    if regions:
        qs = qs.filter(reduce(operator.or_, (Q(region__code__startswith=code) for code in regions)))
    if flt.station:
        qs = qs.filter(station__code=flt.station)
    if flt.sensor:
        qs = qs.filter(sensor__code=flt.sensor)
    if flt.since:
        qs = qs.filter(opened_at__gte=flt.since)
    return qs.select_related("sensor", "station", "region", "acknowledged_by", "closed_by").order_by("-opened_at", "-id")


def can_see_dead_letters(actor) -> bool:
    return can(actor, "operations")


def dead_letters(actor, *, source: str | None = None, resolved: bool | None = None) -> QuerySet:
    """Messages the workers could not use: for district-level writers only (they carry no region)."""
    if not can_see_dead_letters(actor):
        raise ScopeError(_("只有区级管理人员可以查看死信"))
    qs = DeadLetter.objects.all()
    if source:
        qs = qs.filter(source=source)
    if resolved is not None:
        qs = qs.filter(resolved=resolved)
    return qs.order_by("-id")


def thresholds(actor, *, rule: str | None = None, sensor_type: str | None = None,
               station: str | None = None) -> QuerySet:
    """Type defaults (readable by all) and the station overrides in the actor's region."""
    station_scope = scope_queryset(Threshold.objects.filter(station__isnull=False), actor, "station__region")
    qs = Threshold.objects.filter(Q(station=None) | Q(pk__in=station_scope.values("pk")))
    if _choice("rule", rule, Rule):
        qs = qs.filter(rule=rule)
    if _choice("sensor_type", sensor_type, SensorType):
        qs = qs.filter(sensor_type=sensor_type)
    if station:
        qs = qs.filter(station__code=station)
    return qs.select_related("station").order_by("rule", "metric", "sensor_type", "soil", "station__code")


# ---- pages and the map ---------------------------------------------------------------------------------------

LEVEL_ORDER = Case(*[When(level=v, then=Value(r)) for v, r in LEVEL_RANK.items()], default=Value(0),
                   output_field=IntegerField())
LEVEL_ORDER_LATEST = Case(*[When(alarm_level=v, then=Value(r)) for v, r in LEVEL_RANK.items()], default=Value(0),
                          output_field=IntegerField())


def sensor_by_pk(actor, pk: int) -> Sensor:
    """The sensor if the actor may see it, else 404."""
    return get_object_or_404(visible_sensors(actor).select_related("station", "region", "region__parent"), pk=pk)


def order_alarms(qs: QuerySet, sort: str = "level") -> QuerySet:
    """Most severe first (then newest), or newest first."""
    if sort == "time":
        return qs.order_by("-opened_at", "-id")
    return qs.annotate(level_rank=LEVEL_ORDER).order_by("-level_rank", "-opened_at", "-id")


def alarm_counts(qs: QuerySet) -> dict[str, int]:
    """{level: count} of an alarm queryset."""
    return dict(qs.order_by().values_list("level").annotate(n=Count("id")))


def alarm_towns(actor) -> QuerySet:
    """The towns whose alarms the actor may filter by (their own only, for town and village users)."""
    prefix = region_prefix(actor)
    qs = Region.objects.filter(level="town").defer("boundary").order_by("code")
    if prefix is None:
        return qs.none()
    return qs.filter(code__startswith=prefix[:9]) if prefix else qs


# ---- alarms per station ----------------------------------------------------------------------------------------

# The group an alarm belongs to on the per-station view: its station's id, or minus its sensor's id for a
# stand-alone device (no station). One integer key, so the database groups, counts and sorts in one pass.
ALARM_GROUP = Case(When(station__isnull=False, then=F("station_id")), default=-F("sensor_id"),
                   output_field=IntegerField())
RANK_LEVEL = {rank: level for level, rank in LEVEL_RANK.items()}


def alarms_by_station(actor, flt: AlarmFilter | None = None, sort: str = "level") -> QuerySet:
    """The alarms of `alarms(actor, flt)` (same scope, same filters) grouped per station by the database: one
    dict per station with `group` (ALARM_GROUP), `top` (rank of its highest level, 1 blue … 4 red), `alarms`,
    `unacknowledged` (still open), `sensors` (how many of its sensors alarm), `first_sensor` and `newest` (the
    latest opened_at). Most severe first, then newest; or newest first (`sort="time"`)."""
    qs = (alarms(actor, flt).order_by().annotate(group=ALARM_GROUP).values("group")
          .annotate(top=Max(LEVEL_ORDER), alarms=Count("id"),
                    unacknowledged=Count("id", filter=Q(status=AlarmStatus.OPEN)),
                    sensors=Count("sensor_id", distinct=True), first_sensor=Min("sensor_id"),
                    newest=Max("opened_at")))
    if sort == "time":
        return qs.order_by("-newest", "group")
    return qs.order_by("-top", "-newest", "group")


def station_level_counts(qs: QuerySet) -> dict[str, int]:
    """{level: how many stations have alarms of that level} of an alarm queryset: what the level filter of the
    per-station view finds (a station with a red and a yellow alarm counts under both)."""
    return dict(qs.order_by().values_list("level").annotate(n=Count(ALARM_GROUP, distinct=True)))


def _group_place(station: Station | None, sensor: Sensor | None) -> dict:
    if station is not None:
        return {"station": station, "sensor": None, "code": station.code, "name": station.name,
                "type_label": station.get_station_type_display(), "region": station.region,
                "filter": ("station", station.code)}
    return {"station": None, "sensor": sensor, "code": sensor.code, "name": sensor.name,
            "type_label": sensor.get_sensor_type_display(), "region": sensor.region, "filter": ("sensor", sensor.code)}


def station_groups(actor, rows: list[dict], flt: AlarmFilter | None = None) -> list[dict]:
    """One page of `alarms_by_station` rows made ready to show: the station (or stand-alone device) with its
    village and town, its highest level, and the rules involved (each with its highest level and count, most
    severe first). Three queries per page, whatever its length."""
    station_ids = [r["group"] for r in rows if r["group"] > 0]
    solo_ids = [-r["group"] for r in rows if r["group"] < 0]
    places = ("region", "region__parent")
    lean = ("region__boundary", "region__parent__boundary")
    stations = Station.objects.select_related(*places).defer(*lean).in_bulk(station_ids)
    solos = Sensor.objects.select_related(*places).defer(*lean).in_bulk(solo_ids) if solo_ids else {}
    rules: dict[int, list[dict]] = {}
    mine = Q(station_id__in=station_ids) | Q(station__isnull=True, sensor_id__in=solo_ids)
    order = {r.value: i for i, r in enumerate(Rule)}
    for group, rule, top, n in (alarms(actor, flt).filter(mine).order_by().annotate(group=ALARM_GROUP)
                                .values_list("group", "rule").annotate(top=Max(LEVEL_ORDER), n=Count("id"))):
        level = RANK_LEVEL[top]
        rules.setdefault(group, []).append({"rule": rule, "label": str(Rule(rule).label), "level": level,
                                            "level_label": str(Level(level).label), "alarms": n})
    out = []
    for r in rows:
        group = r["group"]
        level = RANK_LEVEL[r["top"]]
        out.append({
            **_group_place(stations.get(group), solos.get(-group)), "group": group, "level": level,
            "level_label": str(Level(level).label), "alarms": r["alarms"], "unacknowledged": r["unacknowledged"],
            "newest": r["newest"], "sensor_id": r["first_sensor"] if r["sensors"] == 1 else None,
            "rules": sorted(rules.get(group, []), key=lambda x: (-LEVEL_RANK[x["level"]], order[x["rule"]])),
        })
    return out


def alarm_place(actor, key: str) -> Station | Sensor:
    """What a per-station row stands for, by its key: the station with this code, or else the sensor with this
    code (its alarms without a station: a stand-alone device) — if the actor may see it, else 404. A code shared
    by a station and a sensor names the station."""
    station = scope_queryset(Station.objects.all(), actor).filter(code=key).first()
    if station is not None:
        return station
    return get_object_or_404(visible_sensors(actor), code=key)


def open_alarms_by_group(actor, groups: list[int]) -> dict[int, list[dict]]:
    """The open alarms of these per-station groups (ALARM_GROUP keys), whatever the page's filters: what
    确认全部 acknowledges, listed in its form and sent back as its guard (id and level of each), most severe
    first. One query for the page."""
    if not groups:
        return {}
    stations = [g for g in groups if g > 0]
    solos = [-g for g in groups if g < 0]
    mine = Q(station_id__in=stations) | Q(station__isnull=True, sensor_id__in=solos)
    out: dict[int, list[dict]] = {}
    rows = (alarms(actor, AlarmFilter(status=AlarmStatus.OPEN)).filter(mine).annotate(group=ALARM_GROUP)
            .order_by("group", LEVEL_ORDER.desc(), "pk").values_list("group", "pk", "level", "rule", "sensor__code"))
    for group, pk, level, rule, sensor in rows:
        out.setdefault(group, []).append({"id": pk, "level": level, "level_label": str(Level(level).label),
                                          "rule_label": str(Rule(rule).label), "sensor": sensor})
    return out


def visible_station(actor, code: str | None) -> Station | None:
    """The station with this code if the actor may see it (for naming a station filter), else None."""
    if not code:
        return None
    return scope_queryset(Station.objects.all(), actor).filter(code=code).first()


# The threshold rule drawn on a sensor's chart, by what it measures: the metric readings compare with directly
# (rain: the 1-hour window of flash-flood warnings; displacement: the 24-hour movement).
CHART_RULES = {
    SensorType.RAINFALL: (Rule.FLASH_FLOOD, Metric.RAIN_1H),
    SensorType.WATER_LEVEL: (Rule.WATER_LEVEL, Metric.WATER_LEVEL),
    SensorType.DISPLACEMENT: (Rule.DISPLACEMENT, Metric.DISPLACEMENT_RATE_24H),
    SensorType.GAS: (Rule.GAS, Metric.GAS),
    SensorType.WIND: (Rule.WIND, Metric.WIND_SPEED),
}


def chart_thresholds(sensor: Sensor) -> dict | None:
    """The levels of the sensor's chart rule in force (station overrides, soil state for flash floods)."""
    from .rules import ThresholdBook, compute_metrics

    if sensor.sensor_type not in CHART_RULES:
        return None
    rule, metric = CHART_RULES[sensor.sensor_type]
    rows = ThresholdBook([sensor]).for_sensor(sensor).get(rule, {})
    soil = None
    if sensor.sensor_type == SensorType.RAINFALL:  # the soil state the rules judged at the latest reading
        latest = SensorLatest.objects.filter(pk=sensor.pk).first()
        ev = compute_metrics([sensor], {sensor.pk: latest}).get(sensor.pk) if latest else None
        soil = ev.soil if ev else None
    values = rows.get((metric, soil or "any")) or rows.get((metric, "any")) or rows.get((metric, "normal"))
    if values is None:
        return None
    return {"rule": rule, "rule_label": str(Rule(rule).label), "metric": metric,
            "metric_label": str(Metric(metric).label), "soil": soil,
            "soil_label": str(dict(Threshold._meta.get_field("soil").flatchoices).get(soil, "")) if soil else "",
            "levels": [{"level": lv.value, "label": str(lv.label), "value": values[lv.value]}
                       for lv in Level if values.get(lv.value) is not None]}


def map_sensor_rows(actor) -> list[list]:
    """Compact map rows of every visible sensor: [id, lon, lat, name, code, type label, value, unit, observed
    (ISO), alarm level, station name, region name]. Sensors that never reported have no value."""
    labels = dict((v, str(lbl)) for v, lbl in SensorType.choices)
    rows = (visible_sensors(actor).filter(retired=False).order_by("code")
            .values_list("pk", "lon", "lat", "name", "code", "sensor_type", "latest__value", "unit", "latest__ts",
                         "latest__alarm_level", "station__name", "region__name"))
    return [[pk, round(lon, 6), round(lat, 6), name, code, labels.get(st, st), value, unit,
             timezone.localtime(ts).isoformat() if ts else None, level or "", station or "", region or ""]
            for pk, lon, lat, name, code, st, value, unit, ts, level, station, region in rows]


def map_alarm_rows(actor, limit: int = 2000) -> list[dict]:
    """Active threshold and device alarms the actor may see, most severe first."""
    qs = order_alarms(alarms(actor, AlarmFilter(status="active")).select_related("region__parent"))
    out = []
    for a in qs[:limit]:
        s = a.sensor
        out.append({"id": a.pk, "sensor_id": s.pk, "lon": round(s.lon, 6), "lat": round(s.lat, 6),
                    "level": a.level, "level_label": str(Level(a.level).label), "status": a.status,
                    "rule_label": str(Rule(a.rule).label), "metric_label": str(Metric(a.metric).label),
                    "value": a.value, "threshold": a.threshold, "unit": s.unit, "sensor_name": s.name,
                    "station_name": a.station.name if a.station_id else "",
                    "sensor_code": s.code, "region_name": a.region.name,
                    "town_name": a.region.parent.name if a.region.parent_id and a.region.level == "village" else "",
                    "opened_at": timezone.localtime(a.opened_at).isoformat(), "cleared": a.cleared_at is not None})
    return out


def alarm_evidence(alarm_id: int, *, hours: int = 3) -> dict | None:
    """What another app cites about an alarm (warnings' drafts from alarms), read by the system, not for a
    person: the rule and values, the sensor and station, its village and town, and the sensor's readings of the
    last `hours` before the alarm's data time. None if the alarm is gone."""
    a = Alarm.objects.select_related("sensor", "station", "region__parent").filter(pk=alarm_id).first()
    if a is None:
        return None
    at = a.observed_at or a.opened_at
    series = readings(a.sensor, at - timedelta(hours=hours), at + timedelta(seconds=1))
    village = a.region if a.region.level == "village" else None
    town = a.region.parent if village is not None else a.region if a.region.level == "town" else None
    return {"id": a.pk, "kind": a.kind, "rule": a.rule, "rule_label": Rule(a.rule).label, "metric": a.metric,
            "metric_label": Metric(a.metric).label, "level": a.level, "value": a.value, "threshold": a.threshold,
            "unit": a.sensor.unit, "sensor": a.sensor.code, "sensor_name": a.sensor.name,
            "station": a.station.name if a.station_id else "", "region": a.region, "village": village, "town": town,
            "observed_at": at, "readings": series[-12:]}
