"""Places a user types: a coordinate ("30.21,119.10", "119.10 30.21", Chinese commas) or the name of a town or a
village, also inside an address ("龙岗镇青溪社区环溪路8号" → 青溪社区). The map's search and the nearby page
answer places before records."""

from __future__ import annotations

import math
import re

from django.db.models import Q
from django.utils.translation import gettext as _

from tianmu.core.models import Region
from tianmu.core.scope import ancestor_codes, region_prefix

__all__ = ["parse_point", "search_places", "visible_regions"]

# Two numbers separated by commas (ASCII or Chinese), semicolons, slashes or spaces, optionally with N/E marks.
_POINT = re.compile(r"^\s*([NSEW北南东西]?)\s*(-?\d{1,3}(?:\.\d+)?)\s*°?\s*([NSEW北南东西]?)\s*[,，、;；/\s]\s*"
                    r"([NSEW北南东西]?)\s*(-?\d{1,3}(?:\.\d+)?)\s*°?\s*([NSEW北南东西]?)\s*$", re.IGNORECASE)
_LON_MARKS = set("EWew东西")
_LAT_MARKS = set("NSns北南")
_NEGATIVE = set("SWsw南西")


def parse_point(text: str) -> tuple[float, float] | None:
    """(lon, lat) from a typed coordinate, or None. Order: marks (N/E, 北/东) when given; otherwise a number
    beyond ±90 is the longitude; otherwise latitude first, as people write it ("30.21,119.10")."""
    m = _POINT.match(text or "")
    if m is None:
        return None
    a_marks, a, a_after, b_marks, b, b_after = m.groups()
    mark_a, mark_b = (a_marks or a_after), (b_marks or b_after)
    x, y = float(a), float(b)
    if mark_a in _NEGATIVE:
        x = -abs(x)
    if mark_b in _NEGATIVE:
        y = -abs(y)
    if mark_a in _LON_MARKS or mark_b in _LAT_MARKS:
        lon, lat = x, y
    elif mark_a in _LAT_MARKS or mark_b in _LON_MARKS:
        lat, lon = x, y
    elif abs(x) > 90 >= abs(y):
        lon, lat = x, y
    else:
        lat, lon = x, y
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    return lon, lat


def visible_regions(actor):
    """The regions a user finds: their home's subtree and the regions above it (as the boundaries API)."""
    prefix = region_prefix(actor)
    qs = Region.light.all()
    if prefix is None:
        return qs.none()
    if prefix:
        qs = qs.filter(Q(code__startswith=prefix) | Q(code__in=ancestor_codes(prefix)))
    return qs


def _hit(region, rank: int) -> dict:
    level = _("镇街") if region.level == "town" else _("村社") if region.level == "village" else _("区县")
    parent = region.parent.name if region.parent_id and region.level == "village" else ""
    return {"kind": f"place:{region.level}", "kind_name": str(level), "id": region.pk, "name": region.name,
            "code": region.code, "lon": round(region.lon, 6), "lat": round(region.lat, 6), "region_name": parent,
            "bbox": [round(v, 6) for v in (region.min_lon, region.min_lat, region.max_lon, region.max_lat)],
            "rank": rank}


def search_places(actor, q: str, limit: int = 8) -> list[dict]:
    """Towns and villages (the user may see) by name or code, best first: an exact name or code, then a name
    starting with the text, then one containing it; then the regions named inside the text (an address),
    the most precise (a village) first. Each hit as the map's search returns it, with the region's bbox."""
    q = (q or "").strip()
    if not q:
        return []
    point = parse_point(q)
    if point is not None:
        lon, lat = point
        return [{"kind": "point", "kind_name": _("坐标"), "id": 0, "name": f"{lat:.5f}, {lon:.5f}", "code": "",
                 "lon": round(lon, 6), "lat": round(lat, 6), "region_name": "", "bbox": None, "rank": 0}]
    regions = visible_regions(actor).select_related("parent").only(
        "id", "code", "name", "level", "lon", "lat", "min_lon", "min_lat", "max_lon", "max_lat", "parent__name")
    hits: dict[int, dict] = {}
    for region in regions.filter(Q(name__icontains=q) | Q(code__startswith=q))[:200]:
        if q in (region.name, region.code):
            rank = 0
        elif region.name.startswith(q) or region.code.startswith(q):
            rank = 1
        else:
            rank = 2
        hits[region.pk] = _hit(region, rank)
    if len(q) >= 2 and not any(h["rank"] == 0 for h in hits.values()):
        # An address: the regions whose names it contains (short names such as "新村" only inside a longer one).
        named = [r for r in regions.exclude(level="district") if len(r.name) >= 2 and r.name in q]
        for region in sorted(named, key=lambda r: (-len(r.code), -len(r.name))):
            hits.setdefault(region.pk, _hit(region, 1 if region.level == "village" else 2))
    order = {"village": 0, "town": 1, "district": 2}
    ranked = sorted(hits.values(), key=lambda h: (h["rank"], len(h["name"]), order.get(h["kind"][6:], 3), h["code"]))
    return ranked[:limit]
