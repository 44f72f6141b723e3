"""Geometry helpers: WGS84 lon/lat checks, distances, and locating a point in the region tree."""

from __future__ import annotations

import math
import threading

from django.conf import settings
from django.utils.translation import gettext_lazy as _

__all__ = ["EARTH_RADIUS_M", "haversine_m", "radius_bbox", "coordinate_problem", "coordinate_problems",
           "parse_bbox", "RegionLocator",
           "locator"]

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def radius_bbox(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that contains the circle; filter by it in SQL, then by haversine exactly."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def district_bbox() -> tuple[float, float, float, float]:
    return settings.TIANMU["DISTRICT_BBOX"]


def in_bbox(lon: float, lat: float, bbox) -> bool:
    return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]


def coordinate_problems(lon, lat) -> dict[str, object]:
    """{} if (lon, lat) is a usable point in the district, else the reason for each coordinate that is wrong,
    on its own field ({"lat": …} for a latitude outside the district). A problem of the pair, lon and lat
    swapped, is reported once, on lon."""
    problems: dict[str, object] = {}
    values = {}
    for name, value in (("lon", lon), ("lat", lat)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems[name] = _("必须是数字")
            continue
        if not math.isfinite(number):
            problems[name] = _("必须是有限的数字")
        else:
            values[name] = number
    if problems:
        return problems
    lon, lat = values["lon"], values["lat"]
    bbox = district_bbox()
    if in_bbox(lat, lon, bbox) and not in_bbox(lon, lat, bbox):
        return {"lon": _("经纬度可能填反了(经度约119,纬度约30)")}
    if not -180 <= lon <= 180:
        problems["lon"] = _("经纬度超出有效范围")
    if not -90 <= lat <= 90:
        problems["lat"] = _("经纬度超出有效范围")
    if problems:
        return problems
    if not bbox[0] <= lon <= bbox[2]:
        problems["lon"] = _("坐标不在临安区范围内")
    if not bbox[1] <= lat <= bbox[3]:
        problems["lat"] = _("坐标不在临安区范围内")
    return problems


def coordinate_problem(lon, lat) -> str | None:
    """None if (lon, lat) is a usable point in the district, else the first reason (translatable)."""
    problems = coordinate_problems(lon, lat)
    return next(iter(problems.values())) if problems else None


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'min_lon,min_lat,max_lon,max_lat' → tuple; raises ValueError with a clear message."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    if len(parts) != 4:
        raise ValueError("bbox must be min_lon,min_lat,max_lon,max_lat")
    a, b, c, d = (float(p) for p in parts)
    if not all(math.isfinite(x) for x in (a, b, c, d)):
        raise ValueError("bbox values must be finite numbers")
    if not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
        raise ValueError("bbox must lie within longitude ±180 and latitude ±90")
    if a > c or b > d:
        raise ValueError("bbox minimum must not exceed maximum")
    return a, b, c, d


class RegionLocator:
    """Finds the smallest region containing a point, with an STRtree over region boundaries."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tree = None
        self._regions: list = []
        self._shapes: list = []
        self._version = None

    def _load(self):
        from shapely import STRtree
        from shapely.geometry import shape

        from .models import Region

        regions = list(Region.objects.exclude(boundary=None).only("id", "code", "level", "boundary"))
        self._regions = regions
        self._shapes = [shape(r.boundary) for r in regions]
        self._tree = STRtree(self._shapes) if self._shapes else None

    def reset(self):
        with self._lock:
            self._tree = None
            self._regions = []
            self._shapes = []

    def locate(self, lon: float, lat: float):
        """The deepest region (village over town over district) containing the point, or None."""
        from shapely.geometry import Point

        with self._lock:
            if self._tree is None:
                self._load()
            if self._tree is None:
                return None
            pt = Point(lon, lat)
            best = None
            for idx in self._tree.query(pt, predicate="intersects"):
                region = self._regions[int(idx)]
                if best is None or len(region.code) > len(best.code):
                    best = region
            return best

    def contains(self, region, lon: float, lat: float, tolerance_m: float = 300.0) -> bool:
        """Whether the point lies in the region's boundary (within a tolerance for surveyed edges)."""
        from shapely.geometry import Point, shape

        if not region.boundary:
            return True
        geom = shape(region.boundary)
        pt = Point(lon, lat)
        if geom.contains(pt):
            return True
        tol_deg = tolerance_m / 111_000
        return geom.distance(pt) <= tol_deg


locator = RegionLocator()
