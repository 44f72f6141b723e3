"""Rainfall products of a flood office (雨情), all at any time `at` (default now), so a past storm can be read as
it stood: per-gauge 1/3/6/12/24 h and process (since-event) totals, areal rainfall (面雨量) per town and per river
basin (流域) by Thiessen polygons, and the rainfall distribution of the command map (graduated gauges and an
inverse-distance surface clipped to the region, in the GB/T 28592-2012 grades). Only reads; every read is scoped
(tianmu.core.scope).

Windows are (at − D, at] like the rules' (`rules.compute_series` computes them, from the hourly aggregates plus
the edge readings), so a table at a reading's time shows exactly what the alarm rules saw.

Why Thiessen polygons for areal rainfall and inverse distance for the map: the Thiessen (泰森多边形) area-weighted
mean is the method of Chinese hydrological practice for 面雨量 and is exact and reproducible — each gauge stands
for the part of the town nearest to it, the weights are areas and sum to 1, and a town's figure can be checked
by hand; an inverse-distance surface has no such weights but draws a continuous field, which is what the eye
needs on a map. Both use only gauges that reported in the window: a silent gauge is not read as zero rain.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import shapely
from django.db import connection
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ServiceError
from tianmu.core.models import Region
from tianmu.core.scope import region_prefix, scope_queryset

from .choices import Metric, SensorType
from .conf import conf
from .models import HourlyAggregate, Sensor, SensorLatest
from .rules import RAIN_WINDOWS, compute_series
from .storage import TINY, Span, hour_of, span_stats

__all__ = ["WINDOWS", "StationRain", "station_rainfall", "areal_rainfall", "basin_rainfall", "basin_detail",
           "BASIN_STATES", "distribution", "rain_classes", "thiessen_weights", "areal_xlsx", "idw_grid",
           "parse_window", "SORT_KEYS", "stations_xlsx", "station_dict"]

HOUR = timedelta(hours=1)
WINDOWS = tuple(sorted(RAIN_WINDOWS.values()))  # 1, 3, 6, 12, 24
_METRIC = {hours: metric for metric, hours in RAIN_WINDOWS.items()}
# GB/T 28592-2012 降水量等级 above 微量降雨 (trace, < 0.1 mm).
RAIN_CLASS_NAMES = (_("小雨"), _("中雨"), _("大雨"), _("暴雨"), _("大暴雨"), _("特大暴雨"))


@dataclass
class StationRain:
    """One gauge's rainfall at `at`. `totals[h]` is None when the gauge sent nothing in the last 24 h."""

    sensor_id: int
    code: str
    name: str
    station_code: str
    station_name: str
    town_code: str
    town_name: str
    region_name: str
    lon: float
    lat: float
    totals: dict[int, float | None] = field(default_factory=dict)
    effective: float | None = None
    soil: str | None = None
    event_total: float | None = None
    event_start: datetime | None = None  # the start of the first wet hour of the process
    event_end: datetime | None = None  # the end of its last wet hour (at most `at`)
    last_reading: datetime | None = None

    @property
    def reporting(self) -> bool:
        return self.totals.get(24) is not None


def station_dict(r: StationRain) -> dict:
    """A gauge's row for the API (local ISO times)."""
    def local(ts):
        return timezone.localtime(ts).isoformat() if ts else None

    return {"sensor": r.code, "name": r.name, "station": r.station_code, "station_name": r.station_name,
            "town": r.town_code, "town_name": r.town_name, "region_name": r.region_name, "lon": r.lon, "lat": r.lat,
            **{f"h{h}": r.totals.get(h) for h in WINDOWS}, "effective": r.effective, "soil": r.soil,
            "event_total": r.event_total, "event_start": local(r.event_start), "event_end": local(r.event_end),
            "last_reading": local(r.last_reading)}


def parse_window(value) -> int:
    """A window in hours from a query parameter: one of 1/3/6/12/24."""
    try:
        hours = int(value)
    except (TypeError, ValueError):
        hours = None
    if hours not in WINDOWS:
        raise ServiceError({"window": [_("时段应为 1、3、6、12 或 24 小时")]})
    return hours


def _at(at: datetime | None) -> datetime:
    now = timezone.now()
    if at is None:
        return now
    if at > now + timedelta(seconds=conf("SENSING_MAX_FUTURE_SECONDS")):
        raise ServiceError({"at": [_("时间不能晚于现在")]})
    return at


_GAUGE_COLUMNS = ("code", "name", "lon", "lat", "sensor_type", "interval_s", "station", "region", "station__code",
                  "station__name", "region__code", "region__name")


def _gauges(qs) -> list[Sensor]:
    # Only the columns used: sensors and stations carry wide descriptive columns.
    return list(qs.filter(sensor_type=SensorType.RAINFALL, retired=False, lon__isnull=False, lat__isnull=False)
                .select_related("station", "region").only(*_GAUGE_COLUMNS).order_by("code"))


def _town_names(codes) -> dict[str, str]:
    return dict(Region.objects.filter(code__in=set(codes)).values_list("code", "name"))


def _events(gauges: list[Sensor], at: datetime) -> dict[int, tuple[float, datetime | None, datetime | None, bool]]:
    """Each gauge's process rainfall (过程雨量) up to `at`: the current or most recent rain event, i.e. the wet
    hours back from `at` until SENSING_EVENT_DRY_HOURS dry hours in a row (at most SENSING_EVENT_MAX_HOURS back).
    A wet hour has at least SENSING_EVENT_WET_MM. Also whether the gauge reported in (at − 24 h, at]. Two
    queries: the hourly totals, and the raw spans (the readings after `at` in its own hour, which that hour's
    total may hold, and the count of the last 24 h)."""
    dry_hours = int(conf("SENSING_EVENT_DRY_HOURS"))
    wet_mm = float(conf("SENSING_EVENT_WET_MM"))
    top = hour_of(at)
    first = top - int(conf("SENSING_EVENT_MAX_HOURS")) * HOUR + HOUR
    ids = [g.pk for g in gauges]
    hours: dict[int, dict[datetime, tuple[int, float]]] = defaultdict(dict)
    for sid, label, n, total in _hourly_rows(ids, first, top):
        hours[sid][label] = (n, total)
    stats = span_stats([Span(sid, at + TINY, top) for sid in ids] + [Span(sid, at - 24 * HOUR + TINY, at)
                                                                       for sid in ids])
    out = {}
    for sid, tail, day in zip(ids, stats[:len(ids)], stats[len(ids):], strict=True):
        own = hours.get(sid, {})
        if top in own:
            n, total = own[top]
            own[top] = (n - tail.count, total - tail.total)
        reporting = day.count > 0
        total, start, end, dry = 0.0, None, None, 0
        label = top
        while label >= first:
            value = own.get(label, (0, 0.0))[1]
            if value >= wet_mm:
                if end is None:
                    end = min(label, at)
                start, dry = label - HOUR, 0
                total += value
            elif end is not None:
                total += value  # drizzle inside the event still fell in it
                dry += 1
                if dry >= dry_hours:
                    break
            label -= HOUR
        if end is not None and dry:  # the trailing dry hours before the event's first wet hour are not in it
            total -= sum(own.get(start - k * HOUR, (0, 0.0))[1] for k in range(dry))
        out[sid] = (round(total, 3), start, end, reporting)
    return out


def _hourly_rows(ids: list[int], first: datetime, last: datetime):
    """(sensor_id, hour label, readings, total) of these gauges' hours first … last that had rain (a dry hour
    is the default), read with a plain cursor: the ORM's row building costs ten times the query here."""
    if not ids:
        return []
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cur:
        cur.execute(f"SELECT sensor_id, hour, readings, total FROM {HourlyAggregate._meta.db_table} "
                    f"WHERE sensor_id IN ({', '.join(['%s'] * len(ids))}) AND hour >= %s AND hour <= %s AND total > 0",
                    [*ids, adapt(first), adapt(last)])
        rows = cur.fetchall()
    out = []
    for sid, label, n, total in rows:
        if not isinstance(label, datetime):  # SQLite answers with the stored text
            label = datetime.fromisoformat(str(label))
        if label.tzinfo is None:
            label = label.replace(tzinfo=UTC)
        out.append((sid, label.astimezone(UTC), n, total))
    return out


def _compute(gauges: list[Sensor], at: datetime) -> list[StationRain]:
    latest = SensorLatest.objects.only("ts", "value", "antecedent_index", "soil_index", "antecedent_hour").in_bulk(
        [g.pk for g in gauges])
    with_data = [g for g in gauges if g.pk in latest]
    series = compute_series(with_data, latest, {g.pk: [(at, 0.0)] for g in with_data})
    events = _events(with_data, at) if with_data else {}
    towns = _town_names(g.region.code[:9] for g in gauges if g.region_id)
    rows = []
    for g in gauges:
        town = g.region.code[:9] if g.region_id else ""
        row = StationRain(sensor_id=g.pk, code=g.code, name=g.name, station_code=g.station.code if g.station_id else "",
                          station_name=g.station.name if g.station_id else "", town_code=town,
                          town_name=towns.get(town, ""), region_name=g.region.name if g.region_id else "",
                          lon=float(g.lon), lat=float(g.lat))
        total, start, end, reporting = events.get(g.pk, (0.0, None, None, False))
        evs = series.get(g.pk)
        if evs and reporting:
            ev = evs[-1]
            row.totals = {h: ev.metrics.get(_METRIC[h]) for h in WINDOWS}
            row.effective, row.soil = ev.metrics.get(Metric.RAIN_EFFECTIVE), ev.soil
            row.event_total, row.event_start, row.event_end = total, start, end
        else:
            row.totals = dict.fromkeys(WINDOWS)
        lt = latest.get(g.pk)
        row.last_reading = lt.ts if lt and lt.ts <= at else None
        rows.append(row)
    return rows


def _wettest_first(hours: int):
    def key(r: StationRain):
        value = r.totals.get(hours)
        return value is None, -(value or 0.0)

    return key


SORT_KEYS = {"code": lambda r: r.code, "town": lambda r: (r.town_code, r.code),
             "event": lambda r: (r.event_total is None, -(r.event_total or 0)),
             **{f"h{h}": _wettest_first(h) for h in WINDOWS}}


def station_rainfall(actor, at: datetime | None = None, town: str | None = None, sort: str = "h24"
                     ) -> tuple[datetime, list[StationRain]]:
    """The rainfall of every rain gauge the actor may see (of one town if given) at `at`, sorted by `sort`
    (code, town, event, h1 … h24: the wettest first)."""
    at = _at(at)
    if sort not in SORT_KEYS:
        raise ServiceError({"sort": [_("不是有效的选项")]})
    qs = scope_queryset(Sensor.objects.all(), actor)
    if town:
        if not (town.isdigit() and len(town) == 9):
            raise ServiceError({"town": [_("不是有效的选项")]})
        qs = qs.filter(region__code__startswith=town)
    rows = _compute(_gauges(qs), at)
    rows.sort(key=lambda r: r.code)
    rows.sort(key=SORT_KEYS[sort])
    return at, rows


# ---- areal rainfall ---------------------------------------------------------------------------------------------

def _projector(lat0: float):
    """Local equirectangular projection (x scaled by cos φ₀): areas in proportion within a district."""
    scale = math.cos(math.radians(lat0))

    def project(coords):
        coords = np.asarray(coords, dtype=float)
        return np.column_stack([coords[:, 0] * scale, coords[:, 1]])

    return project


@lru_cache(maxsize=64)
def thiessen_weights(points: tuple[tuple[int, float, float], ...], areas: tuple[tuple[str, str], ...]
                     ) -> dict[str, list[tuple[int, float]]]:
    """{area code: [(gauge id, weight), …]} with the weights (Σ = 1 per area) the shares of the area's surface
    nearest to each gauge: shapely.voronoi_polygons of the gauges, each cell clipped to the area's polygon.
    `areas`: (code, GeoJSON text). Cached per gauge set and polygons."""
    if not points or not areas:
        return {}
    lat0 = sum(p[2] for p in points) / len(points)
    project = _projector(lat0)
    shapes = [shapely.transform(shapely.from_geojson(text), project) for _code, text in areas]
    shapes = [s if s.is_valid else shapely.make_valid(s) for s in shapes]
    # Gauges at one place (two sensors of a station) share its cell equally.
    places: dict[tuple[float, float], list[int]] = defaultdict(list)
    for sid, lon, lat in points:
        places[(lon, lat)].append(sid)
    spots = list(places)
    xy = project(spots)
    if len(spots) == 1:
        share = 1.0 / len(places[spots[0]])
        return {code: [(sid, share) for sid in sorted(places[spots[0]])] for code, _text in areas}
    sites = shapely.points(xy)
    envelope = shapely.box(*shapely.union_all(shapes + list(sites)).buffer(1.0).bounds)
    cells = list(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=envelope)))
    # voronoi_polygons returns the cells in no guaranteed order: each cell belongs to the site it contains.
    tree = shapely.STRtree(cells)
    owner = {}
    for p, site in enumerate(sites):
        for c in tree.query(site, predicate="intersects"):
            owner.setdefault(int(c), p)
    out = {}
    for (code, _text), shape in zip(areas, shapes, strict=True):
        total = shape.area
        if total <= 0:
            continue
        weights: dict[int, float] = defaultdict(float)
        for c in tree.query(shape, predicate="intersects"):
            c = int(c)
            if c not in owner:
                continue
            part = shapely.intersection(cells[c], shape).area
            if part > 0:
                ids = places[spots[owner[c]]]
                for sid in ids:
                    weights[sid] += part / total / len(ids)
        norm = sum(weights.values())
        out[code] = sorted((sid, w / norm) for sid, w in weights.items()) if norm else []
    return out


def _visible_towns(actor):
    """The towns the actor may read (a village user: none; a town's figure covers more than their village)."""
    return scope_queryset(Region.objects.filter(level="town"), actor, "code").exclude(boundary=None).order_by("code")


def _reporting(at: datetime) -> tuple[dict[int, StationRain], tuple[tuple[int, float, float], ...]]:
    """Every gauge of the district at `at` by sensor id, and the reporting ones as Thiessen sites. Areal figures
    use the whole district's gauges — a Thiessen cell crosses town and basin borders — whoever asks; only the
    areas the actor may see are answered, and no gauge the actor may not see is named."""
    rows = {r.sensor_id: r for r in _compute(_gauges(Sensor.objects.all()), at)}
    return rows, tuple(sorted((r.sensor_id, r.lon, r.lat) for r in rows.values() if r.reporting))


def _weighted(rows: dict[int, StationRain], weights: list[tuple[int, float]], window: int
              ) -> tuple[float | None, float | None]:
    """(window total, process total) of an area: Σ share × gauge total over its Thiessen weights (None without)."""
    if not weights:
        return None, None
    return (round(sum(rows[sid].totals[window] * share for sid, share in weights), 1),
            round(sum((rows[sid].event_total or 0.0) * share for sid, share in weights), 1))


def _check_window(window: int) -> None:
    if window not in WINDOWS:
        raise ServiceError({"window": [_("时段应为 1、3、6、12 或 24 小时")]})


def _sorted(out: list[dict], sort: str, name_key: str) -> list[dict]:
    keys = {"value": lambda r: (r["value"] is None, -(r["value"] or 0)),
            "process": lambda r: (r["process"] is None, -(r["process"] or 0)), name_key: lambda r: r[name_key],
            "max": lambda r: (r["max"] is None, -(r["max"] or 0))}
    if sort not in keys:
        raise ServiceError({"sort": [_("不是有效的选项")]})
    out.sort(key=keys[sort])
    return out


def areal_rainfall(actor, at: datetime | None = None, window: int = 24, sort: str = "value") -> dict:
    """面雨量 of every town the actor may see over (at − window, at] and for the process: the Thiessen-weighted
    mean of the gauges that reported (see _reporting for whose gauges)."""
    at = _at(at)
    _check_window(window)
    towns = list(_visible_towns(actor))
    rows, reporting = _reporting(at)
    weights = thiessen_weights(reporting, tuple((t.code, _geojson_text(t.boundary)) for t in towns))
    out = []
    for t in towns:
        w = weights.get(t.code, [])
        value, process = _weighted(rows, w, window)
        inside = [r for r in rows.values() if r.town_code == t.code and r.reporting]
        wettest = max(inside, key=lambda r: r.totals[window], default=None)
        out.append({"town": t.code, "name": t.name, "area_km2": t.area_km2, "value": value, "process": process,
                    "gauges": len(inside), "weights": len(w),
                    "max": wettest.totals[window] if wettest else None,
                    "max_gauge": wettest.code if wettest else "", "max_name": wettest.name if wettest else ""})
    _sorted(out, sort, "town")
    return {"at": at, "window": window, "method": "thiessen", "gauges": len(reporting), "towns": out}


# ---- areal rainfall per river basin (流域面雨量) ---------------------------------------------------------------

BASIN_STATES = {"ok": _("有站"), "no_gauge": _("无站"), "no_outline": _("无边界")}


def _basin_rows(actor, basins, at: datetime, window: int) -> tuple[list[dict], dict, tuple]:
    """Each basin's areal rainfall: the town method (thiessen_weights over the basin's outline, cached on the
    gauge set and the outlines, so a changed basin or gauge is a new key) with two honest states: `no_outline`
    (never imported) and `no_gauge` — no reporting gauge inside the basin or within SENSING_BASIN_GAUGE_NEAR_M
    of it: Thiessen would still lend it a far gauge's rain, which is not a measurement of the basin."""
    rows, reporting = _reporting(at)
    seen = set(scope_queryset(Sensor.objects.all(), actor).values_list("pk", flat=True))
    with_outline = [b for b in basins if b.boundary]
    weights = thiessen_weights(reporting, tuple((b.code, _geojson_text(b.boundary)) for b in with_outline))
    near_m = float(conf("SENSING_BASIN_GAUGE_NEAR_M"))
    gauges = list(rows.values())
    lons = np.array([g.lon for g in gauges], dtype=float)
    lats = np.array([g.lat for g in gauges], dtype=float)
    out, details = [], {}
    for b in basins:
        row = {"code": b.code, "name": b.name, "name_en": b.name_en, "river": b.river, "system": b.system,
               "parent": b.parent.code if b.parent_id else "", "parent_name": b.parent.name if b.parent_id else "",
               "area_km2": b.area_km2, "value": None, "process": None, "state": "no_outline", "gauges": 0,
               "reporting": 0, "weights": 0, "max": None, "max_gauge": "", "max_name": ""}
        out.append(row)
        if not b.boundary:
            continue
        shape = shapely.from_geojson(_geojson_text(b.boundary))
        shape = shape if shape.is_valid else shapely.make_valid(shape)
        inside = [g for g, hit in zip(gauges, shapely.contains_xy(shape, lons, lats), strict=True) if hit] \
            if gauges else []
        row["gauges"] = len(inside)
        row["reporting"] = sum(g.reporting for g in inside)
        near = _near(shape, [g for g in gauges if g.reporting], near_m)
        w = weights.get(b.code, []) if near else []
        row["state"] = "ok" if w else "no_gauge"
        row["value"], row["process"] = _weighted(rows, w, window)
        row["weights"] = len(w)
        mine = [g for g in inside if g.reporting and g.sensor_id in seen]
        wettest = max(mine, key=lambda g: g.totals[window], default=None)
        if wettest is not None:
            row["max"], row["max_gauge"], row["max_name"] = wettest.totals[window], wettest.code, wettest.name
        details[b.code] = (w, {g.sensor_id for g in inside}, seen)
    return out, {"rows": rows, "details": details}, reporting


def _near(shape, reporting: list[StationRain], near_m: float) -> bool:
    """Whether a reporting gauge lies inside the outline or within near_m of it (local projection)."""
    if not reporting:
        return False
    lat0 = (shape.bounds[1] + shape.bounds[3]) / 2
    project = _projector(lat0)
    local = shapely.transform(shape, project)
    points = shapely.points(project([(g.lon, g.lat) for g in reporting]))
    return bool(np.any(shapely.dwithin(local, points, near_m / 111_320.0)))


def basin_rainfall(actor, at: datetime | None = None, window: int = 24, sort: str = "value") -> dict:
    """面雨量 of every river basin the actor may read (tianmu.sensing.basins.visible_basins) over
    (at − window, at] and for the process, by the town method; sort by value, process, max or code."""
    from .basins import visible_basins

    at = _at(at)
    _check_window(window)
    out, _extra, reporting = _basin_rows(actor, list(visible_basins(actor)), at, window)
    _sorted(out, sort, "code")
    return {"at": at, "window": window, "method": "thiessen", "gauges": len(reporting), "basins": out}


def basin_detail(actor, code: str, at: datetime | None = None, window: int = 24) -> dict:
    """One basin's areal rainfall with its Thiessen weights: every gauge the actor may see with its share and
    totals, and the gauges the actor may not see (another town's) only as a count and a summed share."""
    from .basins import visible_basins

    at = _at(at)
    _check_window(window)
    basin = visible_basins(actor).filter(code=code).first()
    if basin is None:
        raise Http404(_("流域不存在或不在您的查看范围内"))
    out, extra, reporting = _basin_rows(actor, [basin], at, window)
    row = out[0]
    weights, inside, seen = extra["details"].get(code, ([], set(), set()))
    rows = extra["rows"]
    shares, hidden, hidden_share = [], 0, 0.0
    for sid, share in sorted(weights, key=lambda x: -x[1]):
        if sid not in seen:
            hidden, hidden_share = hidden + 1, hidden_share + share
            continue
        g = rows[sid]
        shares.append({"sensor": g.code, "name": g.name, "station": g.station_code, "town_name": g.town_name,
                       "share": round(share, 4), "value": g.totals[window], "process": g.event_total,
                       "inside": sid in inside})
    row.update({"at": at, "window": window, "method": "thiessen", "district_gauges": len(reporting),
                "shares": shares, "hidden_gauges": hidden, "hidden_share": round(hidden_share, 4),
                "children": list(basin.children.order_by("code").values_list("code", flat=True))})
    row["_basin"] = basin
    return row


def _geojson_text(boundary) -> str:
    return boundary if isinstance(boundary, str) else json.dumps(boundary, sort_keys=True)


# ---- the distribution layer -------------------------------------------------------------------------------------

def rain_classes(window: int) -> list[dict]:
    """The colour classes of a window: [{lo, hi, name, color}], lo inclusive. 12 h and 24 h are GB/T 28592-2012
    降水量等级; the others are SENSING_RAIN_CLASSES' [U] choices (docs/sensing.md)."""
    table = conf("SENSING_RAIN_CLASSES")
    bounds = table.get(str(window)) or table.get(window) or table["24"]
    colors = conf("SENSING_RAIN_CLASS_COLORS")
    out = []
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        out.append({"lo": lo, "hi": hi, "name": str(RAIN_CLASS_NAMES[i]), "color": colors[i]})
    return out


def classify(values: np.ndarray, bounds: list[float]) -> np.ndarray:
    """Class index of each value (−1 below the first bound: no rain)."""
    return np.searchsorted(np.asarray(bounds, dtype=float), values, side="right") - 1


def idw_grid(points: np.ndarray, values: np.ndarray, bbox: tuple[float, float, float, float], nx: int, ny: int,
             power: float = 2.0) -> np.ndarray:
    """Inverse-distance weighted values on an ny × nx grid of cell centres over bbox (w, s, e, n), row 0 north,
    distances in the local projection. A cell on a gauge takes its value. Row by row (squared distances split
    into x and y parts), so memory stays at one row × gauges."""
    w, s, e, n = bbox
    scale = math.cos(math.radians((s + n) / 2))
    xs = (w + (np.arange(nx) + 0.5) * (e - w) / nx) * scale
    ys = n - (np.arange(ny) + 0.5) * (n - s) / ny
    values = np.asarray(values, dtype=float)
    dx2 = (xs[:, None] - points[:, 0][None, :] * scale) ** 2  # nx × gauges
    dy2 = (ys[:, None] - points[:, 1][None, :]) ** 2  # ny × gauges
    out = np.empty((ny, nx))
    half = power / 2
    for j in range(ny):
        d2 = np.maximum(dx2 + dy2[j], 1e-18)
        wts = 1.0 / d2 if half == 1 else d2 ** -half
        out[j] = (wts @ values) / wts.sum(axis=1)
    return out


def distribution(actor, at: datetime | None = None, window: int = 24) -> dict:
    """The map's rainfall layer: every visible gauge with its total over (at − window, at] and its class, and
    an IDW surface of the reporting gauges on a grid over the actor's region, clipped to its boundary, as one
    class index per cell (a string, row 0 north; "." outside the region or no data)."""
    at = _at(at)
    if window not in WINDOWS:
        raise ServiceError({"window": [_("时段应为 1、3、6、12 或 24 小时")]})
    _at_, rows = station_rainfall(actor, at, sort="code")
    classes = rain_classes(window)
    bounds = [c["lo"] for c in classes]
    gauges = [[r.code, r.name, r.lon, r.lat, r.totals[window], r.town_name] for r in rows]
    reporting = [r for r in rows if r.reporting]
    grid = None
    area = _clip_area(actor)
    if reporting and area is not None:
        w, s, e, n = area.bounds
        cells = int(conf("SENSING_RAIN_GRID_CELLS"))
        aspect = (e - w) * math.cos(math.radians((s + n) / 2)) / max(n - s, 1e-9)
        nx = max(8, int(round(math.sqrt(cells * aspect))))
        ny = max(8, int(round(cells / nx)))
        pts = np.array([(r.lon, r.lat) for r in reporting])
        vals = np.array([r.totals[window] for r in reporting], dtype=float)
        surface = idw_grid(pts, vals, (w, s, e, n), nx, ny, float(conf("SENSING_RAIN_IDW_POWER")))
        xs = w + (np.arange(nx) + 0.5) * (e - w) / nx
        ys = n - (np.arange(ny) + 0.5) * (n - s) / ny
        gx, gy = np.meshgrid(xs, ys)
        inside = shapely.contains_xy(area, gx, gy)
        idx = classify(surface, bounds)
        chars = np.where(inside & (idx >= 0), idx.astype(str), ".")
        grid = {"bbox": [w, s, e, n], "nx": nx, "ny": ny, "cells": "".join(chars.ravel().tolist())}
    return {"at": at, "window": window, "classes": classes,
            "gauges": [[*g, int(classify(np.array([g[4]]), bounds)[0]) if g[4] is not None else None]
                       for g in gauges],
            "grid": grid}


def _clip_area(actor):
    """The actor's region as one shapely geometry (lon/lat): the district for district users, their town for
    town staff (a village user: their town's polygon, villages have none)."""
    prefix = region_prefix(actor)
    if prefix is None:
        return None
    if prefix:
        code = prefix if len(prefix) <= 9 else prefix[:9]
        region = Region.objects.filter(code=code).exclude(boundary=None).first()
        shapes = [region.boundary] if region else []
    else:
        shapes = list(Region.objects.filter(level="district").exclude(boundary=None).values_list("boundary",
                                                                                                  flat=True))
    if not shapes:
        return None
    geoms = [shapely.from_geojson(_geojson_text(b)) for b in shapes]
    geom = shapely.union_all([g if g.is_valid else shapely.make_valid(g) for g in geoms])
    shapely.prepare(geom)
    return geom


# ---- Excel --------------------------------------------------------------------------------------------------

def stations_xlsx(at: datetime, rows: list[StationRain]) -> bytes:
    """The station table as an .xlsx sheet (local times; text cells never formulas: core.sheets)."""
    import io

    from openpyxl import Workbook

    from tianmu.core.sheets import append_row

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(str(_("雨量站雨情")))
    local = timezone.localtime
    append_row(ws, [str(_("统计时间")), local(at).strftime("%Y-%m-%d %H:%M")])
    append_row(ws, [str(_("传感器编码")), str(_("名称")), str(_("监测站")), str(_("镇街")), str(_("村社")),
                    *[str(_("%(h)s小时(mm)") % {"h": h}) for h in WINDOWS], str(_("过程雨量(mm)")),
                    str(_("过程开始")), str(_("过程结束")), str(_("有效雨量(mm)")), str(_("最新数据时间"))])
    for r in rows:
        append_row(ws, [r.code, r.name, r.station_name, r.town_name, r.region_name,
                        *[r.totals.get(h) for h in WINDOWS], r.event_total,
                        local(r.event_start).strftime("%Y-%m-%d %H:%M") if r.event_start else "",
                        local(r.event_end).strftime("%Y-%m-%d %H:%M") if r.event_end else "",
                        r.effective, local(r.last_reading).strftime("%Y-%m-%d %H:%M") if r.last_reading else ""])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def areal_xlsx(out: dict, by: str) -> bytes:
    """The areal rainfall table (by town or by basin, as areal_rainfall / basin_rainfall return it) as an .xlsx
    sheet (text cells never formulas: core.sheets)."""
    import io

    from openpyxl import Workbook

    from tianmu.core.sheets import append_row

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(str(_("流域面雨量") if by == "basin" else _("镇街面雨量")))
    append_row(ws, [str(_("统计时间")), timezone.localtime(out["at"]).strftime("%Y-%m-%d %H:%M"),
                    str(_("时段")), str(_("%(h)s小时") % {"h": out["window"]}), str(_("方法")), str(_("泰森多边形法"))])
    window_head = str(_("%(h)s小时面雨量(mm)") % {"h": out["window"]})
    if by == "basin":
        append_row(ws, [str(_("流域编码")), str(_("流域")), str(_("河流")), str(_("水系")), str(_("上级流域")),
                        str(_("面积(km²)")), window_head, str(_("过程面雨量(mm)")), str(_("状态")),
                        str(_("流域内站数")), str(_("有数据站数")), str(_("参与加权站数")), str(_("站点最大(mm)")),
                        str(_("最大站"))])
        for r in out["basins"]:
            append_row(ws, [r["code"], r["name"], r["river"], r["system"], r["parent_name"], r["area_km2"],
                            r["value"], r["process"], str(BASIN_STATES[r["state"]]), r["gauges"], r["reporting"],
                            r["weights"], r["max"], r["max_name"]])
    else:
        append_row(ws, [str(_("区划代码")), str(_("镇街")), str(_("面积(km²)")), window_head,
                        str(_("过程面雨量(mm)")), str(_("镇内站数")), str(_("站点最大(mm)")), str(_("最大站"))])
        for r in out["towns"]:
            append_row(ws, [r["town"], r["name"], r["area_km2"], r["value"], r["process"], r["gauges"], r["max"],
                            r["max_name"]])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
