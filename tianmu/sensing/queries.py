"""Scoped reads of monitoring data: latest values, a sensor's readings (raw or hourly), alarms, dead letters
and thresholds. Every read is limited to the actor's region through tianmu.core.scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import DeadLetter
from tianmu.core.scope import scope_queryset, write_prefix

from .choices import ACTIVE_STATUSES, AlarmKind, AlarmStatus, Level, Rule, SensorType, StationType
from .models import Alarm, HourlyAggregate, Reading, Sensor, SensorLatest, Threshold

__all__ = ["visible_sensors", "latest_values", "sensor_for", "readings", "hourly", "AlarmFilter", "alarms",
           "dead_letters", "thresholds", "parse_time", "MAX_RAW_POINTS", "MAX_RAW_SPAN", "MAX_HOURLY_SPAN"]

MAX_RAW_POINTS = 20_000
MAX_RAW_SPAN = timedelta(days=31)
MAX_HOURLY_SPAN = timedelta(days=366)


def _choice(name: str, value: str | None, choices) -> str | None:
    if value in (None, ""):
        return None
    if value not in {c.value for c in choices}:
        raise ServiceError({name: [_("不是有效的选项")]})
    return value


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
    return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(settings.TIME_ZONE))


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
    return qs.select_related("sensor", "sensor__station", "sensor__region").order_by("sensor__code")


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
    """Hourly aggregates whose hour starts in [start, end], oldest first."""
    start, end = _span(start, end, MAX_HOURLY_SPAN)
    start = start.replace(minute=0, second=0, microsecond=0)
    return list(HourlyAggregate.objects.filter(sensor_id=sensor.pk, hour__gte=start, hour__lte=end).order_by("hour"))


@dataclass
class AlarmFilter:
    status: str | None = None  # open | acknowledged | closed | active (open or acknowledged)
    level: str | None = None
    kind: str | None = None
    rule: str | None = None
    region: str | None = None
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
    if _choice("level", flt.level, Level):
        qs = qs.filter(level=flt.level)
    if _choice("kind", flt.kind, AlarmKind):
        qs = qs.filter(kind=flt.kind)
    if _choice("rule", flt.rule, Rule):
        qs = qs.filter(rule=flt.rule)
    if flt.region:
        qs = qs.filter(region__code__startswith=flt.region)
    if flt.station:
        qs = qs.filter(station__code=flt.station)
    if flt.sensor:
        qs = qs.filter(sensor__code=flt.sensor)
    if flt.since:
        qs = qs.filter(opened_at__gte=flt.since)
    return qs.select_related("sensor", "station", "region", "acknowledged_by", "closed_by").order_by("-opened_at", "-id")


def dead_letters(actor, *, source: str | None = None, resolved: bool | None = None) -> QuerySet:
    """Messages the workers could not use: for district-level writers only (they carry no region)."""
    prefix = write_prefix(actor)
    if prefix is None or len(prefix) > 6:
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
