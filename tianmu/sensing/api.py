"""The monitoring API at /api/v1/sensing/: latest values, a sensor's readings, alarms and their acknowledgement
and closing, gateway submissions, CSV history import, dead letters and thresholds. No logic: schema in,
service or query call, schema out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Form, Router, Schema
from ninja.files import UploadedFile

from tianmu.core.api import PageNumber, page_size_param
from tianmu.core.errors import ServiceError
from tianmu.core.registry.api import COMPACT, ImportOut
from tianmu.core.workflow import add_routes

from .basins import basins_geojson, visible_basins
from .choices import Level, Metric, Rule
from .explain import alarm_detail as explain_alarm
from .lifecycles import ALARM
from .models import Alarm, Station, Threshold
from .queries import (
    AlarmFilter,
    alarm_place,
    alarms,
    alarms_by_station,
    daily,
    day_start,
    dead_letters,
    hourly,
    latest_values,
    map_alarm_rows,
    map_sensor_rows,
    parse_time,
    readings,
    sensor_for,
    station_groups,
    thresholds,
)
from .rainfall import (
    WINDOWS,
    areal_rainfall,
    basin_detail,
    basin_rainfall,
    distribution,
    parse_window,
    rain_classes,
    station_dict,
    station_rainfall,
)
from .services.alarms import acknowledge_station_alarms
from .services.basins import import_basins
from .services.imports import import_readings_csv
from .services.readings import submit_readings
from .services.thresholds import set_threshold

__all__ = ["router", "map_router"]

router = Router(tags=["sensing · 监测感知"])
# The command map's monitoring overlays, mounted beside the map's own data at /api/v1/map/.
map_router = Router(tags=["map · 一张图"])

SENSOR_FIELDS = ["id", "lon", "lat", "name", "code", "type", "value", "unit", "observed_at", "alarm_level", "station",
                 "region"]

MAX_PAGE_SIZE = 500
PageSize = page_size_param(MAX_PAGE_SIZE)


def _local(ts: datetime | None) -> str | None:
    return timezone.localtime(ts).isoformat() if ts else None


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value or ""


# ---- schemas ---------------------------------------------------------------------------------------------------

class LatestOut(Schema):
    sensor: str
    sensor_name: str
    sensor_type: str
    unit: str
    station: str | None
    station_name: str | None
    station_type: str | None
    region: str
    region_name: str
    lon: float
    lat: float
    ts: str
    value: float
    received_at: str
    alarm_level: str


class ReadingsOut(Schema):
    sensor: str
    unit: str
    resolution: str
    start: str | None
    end: str | None
    points: list[list[Any]]


class AlarmOut(Schema):
    id: int
    kind: str
    rule: str
    rule_label: str
    metric: str
    metric_label: str
    level: str
    level_label: str
    peak_level: str
    value: float | None
    threshold: float | None
    status: str
    sensor: str
    sensor_name: str
    station: str | None
    station_name: str | None
    region: str
    region_name: str
    opened_at: str
    observed_at: str | None
    last_level_change: str
    cleared_at: str | None
    acknowledged_by: str | None
    acknowledged_at: str | None
    acknowledged_note: str
    closed_by: str | None
    closed_at: str | None
    closed_note: str


class AlarmThresholdRow(Schema):
    blue: float | None
    yellow: float | None
    orange: float | None
    red: float | None


class AlarmTrigger(Schema):
    """What triggered the alarm (its last level change): metric and value against the threshold of its level, the
    level's meaning for rules that name their levels (flash flood: 准备转移 / 立即转移), the soil state that chose
    the rainfall row (flash flood), and the whole threshold row in force now (null for device faults)."""

    metric: str
    metric_label: str
    value: float | None
    threshold: float | None
    level: str
    meaning: str
    soil: str | None
    soil_label: str | None
    row: AlarmThresholdRow | None


class AlarmHistoryOut(Schema):
    """One event of the alarm (opened, escalated, deescalated, cleared, autoclosed, acknowledged, closed): who
    (null = the rules or the system), when (Asia/Shanghai), the level, value and threshold it carried, the note."""

    event: str
    label: str
    at: str
    actor: str | None
    level: str | None
    metric_label: str  # the metric the value is of (an alarm may open on 1 h rain and escalate on 3 h)
    value: float | None
    threshold: float | None
    observed_at: str | None
    note: str


class AlarmZoneOut(Schema):
    """A hazard zone (registry hazard source) the alarm's gauge represents for its rule."""

    id: int
    code: str
    name: str
    hazard_type: str
    risk_level: str
    town: str
    village: str
    threatened_people: int
    threatened_households: int
    responsible_unit: str


class AlarmHourOut(Schema):
    """One hour of the sensor's data around the alarm (labelled by its end): rain of the hour for a gauge, the
    hour's highest value otherwise; `marked` = the hour of the alarm's data time."""

    hour: str
    value: float
    readings: int
    marked: bool


class AlarmDetailOut(AlarmOut):
    trigger: AlarmTrigger
    history: list[AlarmHistoryOut]
    series: list[AlarmHourOut]
    zone_rule: bool  # the rule belongs to hazard zones (geohazard, flash flood)
    zones_registered: bool  # false: the registry holds no zone of that type, every gauge evaluates the rule
    zones: list[AlarmZoneOut]  # those in the caller's read scope
    zones_outside_scope: int  # how many more it represents outside the caller's scope (not listed)


class AlarmPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[AlarmOut]


class StationRuleOut(Schema):
    rule: str
    rule_label: str
    level: str
    level_label: str
    alarms: int


class AlarmStationOut(Schema):
    station: str | None
    sensor: str | None  # a stand-alone device (no station) is a group of its own
    name: str
    type_label: str
    region: str
    region_name: str
    town: str | None
    town_name: str | None
    level: str
    level_label: str
    alarms: int
    unacknowledged: int
    newest_opened_at: str
    rules: list[StationRuleOut]


class AlarmStationPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[AlarmStationOut]


class SeenAlarm(Schema):
    id: int
    level: str


class StationAcknowledge(Schema):
    note: str = ""
    seen: list[SeenAlarm]  # the open alarms the caller was shown: the guard against acknowledging blind


class StationAcknowledgeOut(Schema):
    station: str | None
    sensor: str | None
    acknowledged: int


class ReadingsIn(Schema):
    readings: list[Any]


class SubmitOut(Schema):
    received: int
    accepted: int
    stored: int
    duplicates: int
    errors: list[dict]


class DeadLetterOut(Schema):
    id: int
    source: str
    key: str
    payload: str
    reason: str
    created_at: str
    resolved: bool


class DeadLetterPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[DeadLetterOut]


class ThresholdOut(Schema):
    id: int
    rule: str
    metric: str
    sensor_type: str
    station: str | None
    soil: str
    blue: float | None
    yellow: float | None
    orange: float | None
    red: float | None
    enabled: bool
    source: str


class ThresholdIn(Schema):
    rule: str
    metric: str
    sensor_type: str
    station: str | None = None
    soil: str = "any"
    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None
    enabled: bool = True
    source: str = ""


LATEST_FIELDS = {"sensor": "sensor__code", "sensor_name": "sensor__name", "sensor_type": "sensor__sensor_type",
                 "unit": "sensor__unit", "station": "sensor__station__code", "station_name": "sensor__station__name",
                 "station_type": "sensor__station__station_type", "region": "sensor__region__code",
                 "region_name": "sensor__region__name", "lon": "sensor__lon", "lat": "sensor__lat", "ts": "ts",
                 "value": "value", "received_at": "received_at", "alarm_level": "alarm_level"}


def _latest_rows(qs) -> list[dict]:
    """The /latest rows straight from a values() query: no model instances, no output re-validation (the map
    and dashboards poll this for every sensor)."""
    names = list(LATEST_FIELDS)
    out = []
    for values in qs.values_list(*LATEST_FIELDS.values()):
        row = dict(zip(names, values, strict=True))
        row["ts"], row["received_at"] = _local(row["ts"]), _local(row["received_at"])
        out.append(row)
    return out


def serialize_alarm(a: Alarm) -> dict:
    return {
        "id": a.pk, "kind": a.kind, "rule": a.rule, "rule_label": _label(Rule, a.rule), "metric": a.metric,
        "metric_label": _label(Metric, a.metric), "level": a.level, "level_label": _label(Level, a.level),
        "peak_level": a.peak_level, "value": a.value, "threshold": a.threshold, "status": a.status,
        "sensor": a.sensor.code, "sensor_name": a.sensor.name,
        "station": a.station.code if a.station_id else None, "station_name": a.station.name if a.station_id else None,
        "region": a.region.code, "region_name": a.region.name, "opened_at": _local(a.opened_at),
        "observed_at": _local(a.observed_at), "last_level_change": _local(a.last_level_change),
        "cleared_at": _local(a.cleared_at),
        "acknowledged_by": str(a.acknowledged_by) if a.acknowledged_by_id else None,
        "acknowledged_at": _local(a.acknowledged_at), "acknowledged_note": a.acknowledged_note,
        "closed_by": str(a.closed_by) if a.closed_by_id else None, "closed_at": _local(a.closed_at),
        "closed_note": a.closed_note,
    }


def serialize_detail(d) -> dict:
    a = d.alarm
    row = dict((level, value) for level, _label, value in d.row.values) if d.row else None
    return {
        **serialize_alarm(a),
        "trigger": {"metric": a.metric, "metric_label": _label(Metric, a.metric), "value": a.value,
                    "threshold": a.threshold, "level": a.level, "meaning": d.meaning, "soil": d.soil,
                    "soil_label": d.row.soil_label if d.soil and d.row else None, "row": row},
        "history": [{"event": h.verb, "label": h.label, "at": _local(h.at), "actor": h.actor, "level": h.level,
                     "metric_label": h.metric_label,
                     "value": h.value, "threshold": h.threshold, "observed_at": _local(h.observed_at), "note": h.note}
                    for h in d.history],
        "series": [{"hour": _local(b.hour), "value": b.value, "readings": b.readings, "marked": b.marked}
                   for b in d.series],
        "zone_rule": d.zone_rule, "zones_registered": d.zones_registered,
        "zones": [{"id": z.pk, "code": z.code, "name": z.name, "hazard_type": z.hazard_type, "risk_level": z.risk_level,
                   "town": z.town, "village": z.village, "threatened_people": z.threatened_people,
                   "threatened_households": z.threatened_households, "responsible_unit": z.responsible_unit}
                  for z in d.zones],
        "zones_outside_scope": d.zones_hidden,
    }


def serialize_group(g: dict) -> dict:
    region = g["region"]
    town = region.parent if region.level == "village" else region if region.level == "town" else None
    return {"station": g["station"].code if g["station"] else None, "sensor": g["sensor"].code if g["sensor"] else None,
            "name": g["name"], "type_label": g["type_label"], "region": region.code, "region_name": region.name,
            "town": town.code if town else None, "town_name": town.name if town else None, "level": g["level"],
            "level_label": g["level_label"], "alarms": g["alarms"], "unacknowledged": g["unacknowledged"],
            "newest_opened_at": _local(g["newest"]),
            "rules": [{"rule": r["rule"], "rule_label": r["label"], "level": r["level"], "level_label": r["level_label"],
                       "alarms": r["alarms"]} for r in g["rules"]]}


def _threshold(t: Threshold) -> dict:
    return {"id": t.pk, "rule": t.rule, "metric": t.metric, "sensor_type": t.sensor_type,
            "station": t.station.code if t.station_id else None, "soil": t.soil, **t.values(), "enabled": t.enabled,
            "source": t.source}


def _page(qs, page: int, page_size: int) -> tuple[int, int, int, list]:
    return qs.count(), page, page_size, list(qs[(page - 1) * page_size: page * page_size])


# ---- routes ----------------------------------------------------------------------------------------------------

@router.get("/latest", response=list[LatestOut],
            summary="Latest value of every visible sensor (filters: region, station, station_type, sensor_type, "
                    "level, alarming)")
def latest(request, region: str | None = None, station: str | None = None, station_type: str | None = None,
           sensor_type: str | None = None, level: str | None = None, alarming: bool = False):
    qs = latest_values(request.auth, region=region, station=station, station_type=station_type,
                       sensor_type=sensor_type, level=level, alarming=alarming)
    return JsonResponse(_latest_rows(qs), safe=False, json_dumps_params=COMPACT)


@router.get("/sensors/{code}/readings", response=ReadingsOut,
            summary="Readings of one sensor in [start, end] (ISO 8601; default the last 24 h): "
                    "resolution=raw → [ts, value]; hourly → [hour end, count, sum, min, max, avg] (an hour is "
                    "(end − 1 h, end]); daily → the same per observation day ((08:00, 08:00] local by default, "
                    "named by its start)")
def sensor_readings(request, code: str, start: str | None = None, end: str | None = None, resolution: str = "raw"):
    sensor = sensor_for(request.auth, code)
    t0, t1 = parse_time("start", start), parse_time("end", end)
    if resolution == "raw":
        points = [[_local(ts), value] for ts, value in readings(sensor, t0, t1)]
    elif resolution == "hourly":
        points = [[_local(h.hour), h.readings, h.total, h.minimum, h.maximum, round(h.average, 4)]
                  for h in hourly(sensor, t0, t1)]
    elif resolution == "daily":
        points = [[_local(day_start(d.day)), d.readings, d.total, d.minimum, d.maximum, round(d.average, 4)]
                  for d in daily(sensor, t0, t1)]
    else:
        raise ServiceError({"resolution": [_("应为 raw(原始数据)、hourly(小时统计)或 daily(日统计)")]})
    return {"sensor": sensor.code, "unit": sensor.unit, "resolution": resolution, "start": _local(t0),
            "end": _local(t1), "points": points}


@router.get("/alarms", response=AlarmPage,
            summary="Alarms (filters: status=open|acknowledged|closed|active, level, kind, rule, region, station, "
                    "sensor, since); page, page_size (≤500)")
def alarm_list(request, status: str | None = None, level: str | None = None, kind: str | None = None,
               rule: str | None = None, region: str | None = None, station: str | None = None,
               sensor: str | None = None, since: str | None = None, page: PageNumber = 1,
               page_size: PageSize = 100):
    flt = AlarmFilter(status=status, level=level, kind=kind, rule=rule, region=region, station=station,
                      sensor=sensor, since=parse_time("since", since))
    count, page, page_size, rows = _page(alarms(request.auth, flt), page, page_size)
    return {"count": count, "page": page, "page_size": page_size, "results": [serialize_alarm(a) for a in rows]}


@router.get("/alarms/by-station", response=AlarmStationPage,
            summary="Alarms grouped per station (a stand-alone device is its own group): highest level, number of "
                    "alarms and of unacknowledged ones, rules involved, newest alarm time; most severe first, then "
                    "newest (sort=time: newest first). Filters as for alarms: status (default active; all), level, "
                    "kind, rule, region, station, sensor, since; page, page_size (≤500)")
def alarm_stations(request, status: str = "active", level: str | None = None, kind: str | None = None,
                   rule: str | None = None, region: str | None = None, station: str | None = None,
                   sensor: str | None = None, since: str | None = None, sort: str = "level",
                   page: PageNumber = 1, page_size: PageSize = 100):
    if sort not in ("level", "time"):
        raise ServiceError({"sort": [_("应为 level(等级优先)或 time(时间优先)")]})
    flt = AlarmFilter(status=None if status == "all" else status, level=level, kind=kind, rule=rule, region=region,
                      station=station, sensor=sensor, since=parse_time("since", since))
    count, page, page_size, rows = _page(alarms_by_station(request.auth, flt, sort), page, page_size)
    return {"count": count, "page": page, "page_size": page_size,
            "results": [serialize_group(g) for g in station_groups(request.auth, rows, flt)]}


@router.get("/alarms/{int:alarm_id}", response=AlarmDetailOut,
            summary="One alarm, explained: what triggered it against which threshold row (and soil state), its "
                    "history (who and when), the hours of data around it, and the hazard zones it stands for "
                    "(geohazard, flash flood: the zones its gauge represents, those in the caller's scope)")
def alarm_detail(request, alarm_id: int):
    return serialize_detail(explain_alarm(request.auth, alarm_id))


# The people's transitions of an alarm (sensing/lifecycles.py): POST /alarms/{id}/acknowledge and …/close.
add_routes(router, ALARM, path="/alarms/{int:alarm_id}", param="alarm_id", response=AlarmOut,
           serialize=serialize_alarm)


@router.post("/alarms/by-station/{path:key}/acknowledge", response=StationAcknowledgeOut,
             summary="Acknowledge every open alarm of one station at once (确认该站全部告警): key = the station code, or "
                     "the sensor code of a stand-alone device (a by-station row's station or sensor). Body: note, and "
                     "seen = [{id, level}] of every open alarm the caller was shown (e.g. from alarms?station=…&"
                     "status=open); if the station's open alarms differ (a new one, or another level), nothing is "
                     "acknowledged and a 422 on `seen` asks to look again. One sensing.alarm.acknowledged event per "
                     "alarm; all or nothing (403 if any alarm is outside the caller's write scope)")
def alarm_station_acknowledge(request, key: str, payload: StationAcknowledge):
    place = alarm_place(request.auth, key)
    n = acknowledge_station_alarms(request.auth, place, payload.note,
                                   seen=[(s.id, s.level) for s in payload.seen])
    station = isinstance(place, Station)
    return {"station": place.code if station else None, "sensor": None if station else place.code,
            "acknowledged": n}


@router.post("/readings", response=SubmitOut,
             summary="Readings from a gateway: {\"readings\": [{\"sensor\", \"ts\", \"value\"}, …]} (≤5000); "
                     "valid ones are stored, each refused one is reported with its index")
def post_readings(request, payload: ReadingsIn):
    return submit_readings(request.auth, payload.readings)


@router.post("/readings/import", response=ImportOut,
             summary="Import history from CSV (columns sensor, ts, value); dry_run=true only checks and lists "
                     "every error; nothing is written unless every row passes")
def import_readings(request, file: File[UploadedFile], dry_run: Form[bool] = True):
    return import_readings_csv(request.auth, file, dry_run=dry_run).as_dict()


@router.get("/dead-letters", response=DeadLetterPage,
            summary="Messages the workers could not use, with the reason (district-level writers only)")
def dead_letter_list(request, source: str | None = None, resolved: bool | None = None, page: PageNumber = 1,
                     page_size: PageSize = 100):
    count, page, page_size, rows = _page(dead_letters(request.auth, source=source, resolved=resolved), page,
                                         page_size)
    return {"count": count, "page": page, "page_size": page_size, "results": [
        {"id": d.pk, "source": d.source, "key": d.key, "payload": d.payload, "reason": d.reason,
         "created_at": _local(d.created_at), "resolved": d.resolved} for d in rows]}


@router.get("/thresholds", response=list[ThresholdOut],
            summary="Alarm thresholds: type defaults and the station overrides in the caller's region")
def threshold_list(request, rule: str | None = None, sensor_type: str | None = None, station: str | None = None):
    return [_threshold(t) for t in thresholds(request.auth, rule=rule, sensor_type=sensor_type, station=station)]


@router.put("/thresholds", response=ThresholdOut,
            summary="Create or change a threshold (district writers: type defaults; a station's writers: its "
                    "overrides)")
def threshold_put(request, payload: ThresholdIn):
    from tianmu.core.registry.kinds import get_kind
    from tianmu.core.registry.queries import visible

    station = None
    if payload.station:
        station = get_object_or_404(visible(request.auth, get_kind("stations")), code=payload.station)
    obj = set_threshold(request.auth, rule=payload.rule, metric=payload.metric, sensor_type=payload.sensor_type,
                        station=station, soil=payload.soil,
                        levels={k: getattr(payload, k) for k in ("blue", "yellow", "orange", "red")},
                        enabled=payload.enabled, source=payload.source)
    return _threshold(obj)


# ---- rainfall products (雨情) -------------------------------------------------------------------------------

@router.get("/rainfall/stations",
            summary="Every visible rain gauge's rainfall at `at` (ISO 8601, default now): 1/3/6/12/24 h totals over "
                    "(at − D, at], effective rainfall and soil state as the rules see them, and the process "
                    "(since-event) total with its start and end; a gauge silent for 24 h has nulls. Filter `town` "
                    "(9 digits); `sort` = h1 … h24, event (wettest first), code or town")
def rainfall_stations(request, at: str | None = None, town: str | None = None, sort: str = "h24"):
    when, rows = station_rainfall(request.auth, parse_time("at", at), town or None, sort)
    return {"at": _local(when), "windows": list(WINDOWS), "count": len(rows), "stations": [station_dict(r) for r in rows]}


@router.get("/rainfall/areal",
            summary="Areal rainfall (面雨量) of every visible town over (at − window, at] and for the process: the "
                    "Thiessen-polygon weighted mean of the gauges that reported (window 1/3/6/12/24 h, default 24; "
                    "`sort` = value, process, max or town)")
def rainfall_areal(request, at: str | None = None, window: str = "24", sort: str = "value"):
    out = areal_rainfall(request.auth, parse_time("at", at), parse_window(window), sort)
    return {**out, "at": _local(out["at"])}


class BasinRainOut(Schema):
    code: str
    name: str
    name_en: str
    river: str
    system: str = Field(description="水系 (river system)")
    parent: str = Field(description="the parent basin's code, \"\" for a top-level basin")
    parent_name: str
    area_km2: float | None = Field(description="geodesic area of the outline; null before an outline is imported")
    value: float | None = Field(description="areal rainfall over the window, mm; null when state is not ok")
    process: float | None = Field(description="areal process (since-event) rainfall, mm")
    state: str = Field(description="ok; no_gauge (no reporting gauge inside or within SENSING_BASIN_GAUGE_NEAR_M); "
                                   "no_outline (never imported)")
    gauges: int = Field(description="rain gauges inside the outline")
    reporting: int = Field(description="of those, the ones that reported in the last 24 h")
    weights: int = Field(description="gauges with a Thiessen share of the basin")
    max: float | None = Field(description="the wettest visible gauge inside, mm")
    max_gauge: str
    max_name: str


class BasinRainfallOut(Schema):
    at: str
    window: int
    method: str
    gauges: int = Field(description="reporting gauges of the district (the Thiessen sites)")
    basins: list[BasinRainOut]


class BasinShareOut(Schema):
    sensor: str
    name: str
    station: str
    town_name: str
    share: float = Field(description="the gauge's Thiessen share of the basin (the weights sum to 1)")
    value: float | None
    process: float | None
    inside: bool = Field(description="whether the gauge lies inside the outline")


class BasinDetailOut(BasinRainOut):
    at: str
    window: int
    method: str
    district_gauges: int
    shares: list[BasinShareOut] = Field(description="the weights of the gauges the caller may see, largest first")
    hidden_gauges: int = Field(description="gauges of other towns the caller may not see, with a share")
    hidden_share: float = Field(description="their summed share")
    children: list[str] = Field(description="codes of the sub-basins")


@router.get("/rainfall/basins", response=BasinRainfallOut,
            summary="Areal rainfall (面雨量) of every river basin the caller may read over (at − window, at] and for "
                    "the process: the Thiessen-polygon weighted mean of the gauges that reported, as for towns; "
                    "`state` no_gauge (no reporting gauge inside or near: not 0 mm) or no_outline. Window "
                    "1/3/6/12/24 h (default 24); `sort` = value, process, max or code")
def rainfall_basins(request, at: str | None = None, window: str = "24", sort: str = "value"):
    out = basin_rainfall(request.auth, parse_time("at", at), parse_window(window), sort)
    return {**out, "at": _local(out["at"])}


@router.get("/rainfall/basins/{code}", response=BasinDetailOut,
            summary="One basin's areal rainfall with its Thiessen weights: each gauge's share and totals (gauges "
                    "of towns outside the caller's scope only as a count and a summed share)")
def rainfall_basin(request, code: str, at: str | None = None, window: str = "24"):
    out = basin_detail(request.auth, code, parse_time("at", at), parse_window(window))
    out.pop("_basin", None)
    return {**out, "at": _local(out["at"])}


@router.get("/basins/geojson", summary="The river basins the caller may read as a GeoJSON FeatureCollection (WGS84), "
                                       "with the properties the import reads")
def basin_geojson(request):
    return JsonResponse(basins_geojson(visible_basins(request.auth)), json_dumps_params={"ensure_ascii": False})


@router.post("/basins/import", response=ImportOut,
             summary="Import river basins from a GeoJSON FeatureCollection (properties code, name, name_en, river, "
                     "system, parent, region; Polygon or MultiPolygon in WGS84): dry_run=true only checks and lists "
                     "every bad feature; nothing is written unless every feature passes. A registered code is "
                     "updated (new / changed / unchanged)")
def basin_import(request, file: File[UploadedFile], dry_run: Form[bool] = True):
    return import_basins(request.auth, file.read(), dry_run=dry_run).as_dict()


# ---- the command map's monitoring overlays -------------------------------------------------------------------

@map_router.get("/sensors", summary="Monitoring layer: every visible sensor as a compact row with its latest value "
                                    "and current alarm level (fields listed in `fields`)")
def sensor_layer(request):
    features = map_sensor_rows(request.auth)
    levels: dict[str, int] = {}
    for row in features:
        levels[row[9] or "none"] = levels.get(row[9] or "none", 0) + 1
    return {"fields": SENSOR_FIELDS, "features": features, "levels": levels}


@map_router.get("/alarms", summary="Open and acknowledged alarms the caller may see, most severe first (at most 2000)")
def alarm_layer(request):
    rows = map_alarm_rows(request.auth)
    levels: dict[str, int] = {}
    for row in rows:
        levels[row["level"]] = levels.get(row["level"], 0) + 1
    return {"count": len(rows), "levels": levels, "alarms": rows}


@map_router.get("/rainfall", summary="Rainfall distribution layer at `at` over `window` hours (1/3/6/12/24): gauges "
                                     "[code, name, lon, lat, mm, town, class], the colour classes, and an "
                                     "inverse-distance surface as one class digit per grid cell (row 0 north, "
                                     "\".\" = outside the region or no rain)")
def rainfall_layer(request, at: str | None = None, window: str = "24"):
    out = distribution(request.auth, parse_time("at", at), parse_window(window))
    return {**out, "at": _local(out["at"])}


@map_router.get("/basins", summary="River basin layer: the basins the caller may read as GeoJSON features with their "
                                   "areal rainfall over `window` hours up to `at` (value, state, class index into "
                                   "`classes`, -1 below the first class, null without a value)")
def basin_layer(request, at: str | None = None, window: str = "24"):
    hours = parse_window(window)
    out = basin_rainfall(request.auth, parse_time("at", at), hours, "code")
    classes = rain_classes(hours)
    bounds = [c["lo"] for c in classes]
    rows = {r["code"]: r for r in out["basins"]}
    features = []
    for feature in basins_geojson(visible_basins(request.auth))["features"]:
        if feature["geometry"] is None:
            continue
        r = rows.get(feature["id"], {})
        value = r.get("value")
        cls = None if value is None else sum(1 for lo in bounds if value >= lo) - 1
        features.append({"type": "Feature", "id": feature["id"], "geometry": feature["geometry"],
                         "properties": {"code": feature["id"], "name": feature["properties"]["name"],
                                        "name_en": feature["properties"]["name_en"],
                                        "system": feature["properties"]["system"],
                                        "parent": feature["properties"]["parent"], "value": value,
                                        "process": r.get("process"), "state": r.get("state"), "class": cls}})
    return {"at": _local(out["at"]), "window": hours, "classes": classes,
            "basins": {"type": "FeatureCollection", "features": features}}
