"""Scoped reads of records: filters (region, search, choices; bbox and radius for placed kinds), statistics,
map data (placed kinds)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Substr
from django.utils.translation import gettext_lazy as _

from ..errors import ServiceError, formatted
from ..geo import haversine_m, parse_bbox, radius_bbox
from ..models import Region
from ..names import region_name
from ..scope import scope_queryset

__all__ = ["visible", "RecordFilter", "apply_filter", "statistics", "map_features", "choice_label", "by_distance",
           "is_radius_query"]

MAX_RADIUS_M = 200_000
TRUE_VALUES = {"1", "true", "yes", "on", "是"}
FALSE_VALUES = {"0", "false", "no", "off", "否"}


def visible(actor, kind) -> QuerySet:
    """Every record of `kind` the actor may read: their subtree, and for a kind that serves the regions below
    (`serves_below`) also the records kept at the own level of the regions above them (core/scope.py)."""
    # Boundaries are large GeoJSON (the district's is ~18 KB) and never needed with a record.
    qs = (scope_queryset(kind.model.objects.all(), actor, up_the_chain=kind.serves_below)
          .select_related("region", "region__parent")
          .defer("region__boundary", "region__parent__boundary"))
    return qs.annotate(**kind.annotations()) if kind.computed else qs


@dataclass
class RecordFilter:
    """Filter parameters shared by list pages, the API and exports."""

    region: str | None = None
    q: str | None = None
    bbox: str | None = None
    lon: float | None = None
    lat: float | None = None
    radius: float | None = None
    choices: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, kind, params) -> RecordFilter:
        """The filter from query parameters; ServiceError naming every malformed one (a number that is not one,
        or not finite)."""
        errors: dict[str, list] = {}

        def num(name):
            value = params.get(name)
            if value in (None, ""):
                return None
            try:
                number = float(value)
            except (TypeError, ValueError):
                errors[name] = [_("必须是数字")]
                return None
            if not math.isfinite(number):
                errors[name] = [_("必须是有限的数字")]
                return None
            return number

        choices = {}
        for name in [*kind.filter_fields, *kind.flag_filters]:
            value = params.get(name)
            if value not in (None, ""):
                choices[name] = value
        flt = cls(region=params.get("region") or None, q=(params.get("q") or "").strip() or None,
                  bbox=params.get("bbox") or None, lon=num("lon"), lat=num("lat"), radius=num("radius"),
                  choices=choices)
        if errors:
            raise ServiceError(errors)
        return flt


def _spatial(qs: QuerySet, kind, flt: RecordFilter) -> QuerySet:
    """bbox and radius (placed kinds); every malformed parameter is reported on its own field."""
    radius_query = flt.radius is not None or flt.lon is not None or flt.lat is not None
    if not (flt.bbox or radius_query):
        return qs
    if not kind.placed():
        raise ServiceError({"bbox" if flt.bbox else "radius": [_("该类记录没有坐标,不能按范围查询")]})
    errors: dict[str, list] = {}
    box = None
    if flt.bbox:
        try:
            box = parse_bbox(flt.bbox)
        except ValueError:
            errors["bbox"] = [_("格式应为 最小经度,最小纬度,最大经度,最大纬度")]
    if radius_query:
        for name in ("lon", "lat", "radius"):
            if getattr(flt, name) is None:
                errors[name] = [_("按半径查询需要同时提供 lon、lat 和 radius(米)")]
        for name, low, high in (("lon", -180, 180), ("lat", -90, 90)):
            value = getattr(flt, name)
            if value is not None and not (math.isfinite(value) and low <= value <= high):
                errors[name] = [formatted(_("应在 %(low)s 到 %(high)s 之间"), {"low": low, "high": high})]
        if flt.radius is not None and not (math.isfinite(flt.radius) and 0 < flt.radius <= MAX_RADIUS_M):
            errors["radius"] = [_("半径应在 0 到 200000 米之间")]
    if errors:
        raise ServiceError(errors)
    if box is not None:
        a, b, c, d = box
        qs = qs.filter(lon__gte=a, lon__lte=c, lat__gte=b, lat__lte=d)
    if radius_query:
        qs = qs.filter(pk__in=[pk for _d, pk in by_distance(qs, flt.lon, flt.lat, flt.radius)])
    return qs


def by_distance(qs: QuerySet, lon: float, lat: float, radius_m: float) -> list[tuple[float, int]]:
    """(metres, pk) of the rows of a placed kind's queryset within `radius_m` of a point, nearest first (ties by
    pk): a lon/lat box on the index first, then great-circle distances of the few rows inside it."""
    a, b, c, d = radius_bbox(lon, lat, radius_m)
    candidates = qs.order_by().filter(lon__gte=a, lon__lte=c, lat__gte=b, lat__lte=d).values_list("pk", "lon", "lat")
    near = ((haversine_m(lon, lat, x, y), pk) for pk, x, y in candidates)
    return sorted((dist, pk) for dist, pk in near if dist <= radius_m)


def is_radius_query(flt: RecordFilter) -> bool:
    return flt.lon is not None and flt.lat is not None and flt.radius is not None


def apply_filter(qs: QuerySet, kind, flt: RecordFilter) -> QuerySet:
    """Narrow a scoped queryset; raises ServiceError for malformed parameters."""
    if flt.region:
        qs = qs.filter(region__code__startswith=flt.region)
    if flt.q:
        cond = Q()
        for name in kind.search_fields:
            cond |= Q(**{f"{name}__icontains": flt.q})
        qs = qs.filter(cond)
    for name, value in flt.choices.items():
        if name in kind.flag_filters:
            if str(value).lower() in TRUE_VALUES:
                qs = qs.filter(kind.flag_filters[name][1]())
            elif str(value).lower() not in FALSE_VALUES:
                raise ServiceError({name: [_("不是有效的选项")]})
            continue
        f = kind.field(name)
        if f.get_internal_type() == "BooleanField":
            value = str(value).lower() in TRUE_VALUES
        elif f.choices and value not in {str(v) for v, _l in f.flatchoices}:
            raise ServiceError({name: [_("不是有效的选项")]})
        qs = qs.filter(**{name: value})
    return _spatial(qs, kind, flt)


def choice_label(kind, name: str, value) -> str:
    for v, label in kind.field(name).flatchoices:
        if v == value:
            return str(label)
    return "" if value is None else str(value)


def statistics(qs: QuerySet, kind) -> dict:
    """Counts by type and by town (with summed fields), for the list page and the map's panel."""
    by_type = []
    if kind.type_field:
        for row in qs.order_by().values(kind.type_field).annotate(n=Count("pk")).order_by("-n"):
            value = row[kind.type_field]
            by_type.append({"value": value, "label": choice_label(kind, kind.type_field, value), "count": row["n"]})
    aggregates = {f"sum_{f}": Sum(f) for f in kind.sum_fields}
    rows = (qs.order_by().annotate(town_code=Substr("region__code", 1, 9)).values("town_code")
            .annotate(n=Count("pk"), **aggregates).order_by("town_code"))
    names = {code: region_name(Region(name=name, name_en=name_en))
             for code, name, name_en in Region.objects.filter(level="town").values_list("code", "name", "name_en")}
    by_town = []
    for row in rows:
        # Records held by the district itself (district fire brigade, reserve) are "区本级", not a town's.
        name = names.get(row["town_code"]) or str(_("区本级"))
        item = {"code": row["town_code"], "name": name, "count": row["n"]}
        for f in kind.sum_fields:
            item[f] = row[f"sum_{f}"] or 0
        by_town.append(item)
    totals = qs.order_by().aggregate(n=Count("pk"), **aggregates)
    return {
        "kind": kind.slug,
        "name": str(kind.verbose_name_plural()),
        "total": totals["n"],
        "sums": {f: totals[f"sum_{f}"] or 0 for f in kind.sum_fields},
        "by_type": by_type,
        "by_town": by_town,
    }


def map_features(qs: QuerySet, kind) -> list[list]:
    """Compact map rows [id, lon, lat, name, type label, *kind.map_fields] of a placed kind: ~10,000 of them stay well under a
    megabyte."""
    if not kind.placed():
        raise ValueError(f"record kind {kind.slug!r} has no point and no map features")
    fields = ["pk", "lon", "lat", "name"] + ([kind.type_field] if kind.type_field else []) + list(kind.map_fields)
    labels = dict((v, str(lbl)) for v, lbl in kind.field(kind.type_field).flatchoices) if kind.type_field else {}
    extra = 5 if kind.type_field else 4
    out = []
    for row in qs.order_by().values_list(*fields):
        pk, lon, lat, name = row[:4]
        out.append([pk, round(lon, 6), round(lat, 6), name, labels.get(row[4], row[4] or "") if kind.type_field else "",
                    *row[extra:]])
    return out
