"""River basins (流域) as geometry: the checks an outline must pass (a GeoJSON Polygon or MultiPolygon in WGS84:
valid, inside the district, within the size limits), its geodesic area, the basins an actor may read, and the
GeoJSON export. Only reads and pure functions; the import that writes is services/basins.py.
"""

from __future__ import annotations

import json
import math

import shapely
from django.utils.translation import gettext_lazy as _
from pyproj import Geod

from tianmu.core.models import Region
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.queries import visible
from tianmu.core.sheets import message

from .conf import conf

__all__ = ["outline_problems", "area_km2", "district_shape", "visible_basins", "basins_geojson", "vertex_count",
           "outline_text", "outline_svg"]

_GEOD = Geod(ellps="WGS84")
_POLYGONAL = ("Polygon", "MultiPolygon")


def area_km2(shape) -> float:
    """Geodesic (WGS84 ellipsoid) area in km², as the regions' areas (tianmu/demo/geography.py)."""
    return round(abs(_GEOD.geometry_area_perimeter(shape)[0]) / 1e6, 3)


def vertex_count(geometry: dict) -> int:
    """How many coordinate pairs a GeoJSON geometry has, counted without building it (a size limit)."""
    def count(node) -> int:
        if isinstance(node, (list, tuple)):
            if node and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in node):
                return 1
            return sum(count(child) for child in node)
        return 0

    return count(geometry.get("coordinates"))


def district_shape():
    """The district's polygon (lon/lat), or None when the district has no boundary."""
    text = Region.objects.filter(level="district").exclude(boundary=None).values_list("boundary", flat=True).first()
    if text is None:
        return None
    shape = shapely.from_geojson(outline_text(text))
    return shape if shape.is_valid else shapely.make_valid(shape)


def outline_text(boundary) -> str:
    """A stored GeoJSON geometry as canonical text (the Thiessen weight cache's key)."""
    return boundary if isinstance(boundary, str) else json.dumps(boundary, sort_keys=True)


def outline_problems(geometry, district=None) -> tuple[object | None, list]:
    """(the shapely shape, []) for a usable basin outline, else (None, [reasons]). `district`: the district's
    polygon (district_shape()); the outline may reach past it by SENSING_BASIN_OUTSIDE_M at most."""
    if not isinstance(geometry, dict) or geometry.get("type") not in _POLYGONAL:
        return None, [_("边界应为 GeoJSON Polygon 或 MultiPolygon")]
    vertices = vertex_count(geometry)
    most = int(conf("SENSING_BASIN_MAX_VERTICES"))
    if vertices > most:
        return None, [message(_("边界有 %(n)s 个顶点,超过上限 %(max)s"), n=vertices, max=most)]
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except Exception:  # noqa: BLE001 -- shapely raises GEOSException or ValueError for any malformed geometry
        return None, [_("边界坐标格式错误")]
    if shape.is_empty:
        return None, [_("边界为空")]
    lon0, lat0, lon1, lat1 = shape.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        return None, [_("坐标应为 WGS84 经纬度(经度在前)")]
    if not shape.is_valid:
        return None, [message(_("边界几何无效:%(reason)s"), reason=shapely.is_valid_reason(shape))]
    problems = []
    if district is not None:
        # Outside by more than the tolerance: the part of the outline beyond the district buffered by it
        # (degrees from metres at the district's latitude, the smaller of the two scales).
        tolerance = float(conf("SENSING_BASIN_OUTSIDE_M")) / 111_320.0
        outside = shapely.difference(shape, district.buffer(tolerance))
        if not outside.is_empty and outside.area > 0:
            problems.append(_("边界超出本区范围,请裁剪到区界以内后再导入"))
    area = area_km2(shape)
    least, largest = float(conf("SENSING_BASIN_MIN_KM2")), float(conf("SENSING_BASIN_MAX_KM2"))
    if area < least:
        problems.append(message(_("面积 %(area)s km² 小于下限 %(min)s km²"), area=area, min=least))
    elif area > largest:
        problems.append(message(_("面积 %(area)s km² 超过上限 %(max)s km²"), area=area, max=largest))
    return (None if problems else shape), problems


def outline_svg(boundary, size: int = 320) -> dict | None:
    """A basin's outline as an SVG path (local equirectangular projection, north up) for its detail page: no
    map library, numbers only. {"d": path, "w": width, "h": height}, or None without an outline."""
    if not boundary:
        return None
    shape = shapely.from_geojson(outline_text(boundary))
    w, s, e, n = shape.bounds
    scale = math.cos(math.radians((s + n) / 2))
    span = max((e - w) * scale, n - s, 1e-9)
    k = (size - 8) / span
    width, height = round((e - w) * scale * k) + 8, round((n - s) * k) + 8
    parts = []
    for poly in shapely.get_parts(shape):
        for ring in [poly.exterior, *poly.interiors]:
            pts = [f"{4 + (x - w) * scale * k:.1f},{4 + (n - y) * k:.1f}" for x, y in ring.coords]
            parts.append("M" + " L".join(pts) + " Z")
    return {"d": " ".join(parts), "w": width, "h": height}


def visible_basins(actor):
    """The basins the actor may read: their subtree's, and the district's and their town's (serves_below: a
    basin that crosses towns belongs to the district, and every town inside it reads it)."""
    return visible(actor, get_kind("basins")).select_related("parent").order_by("code")


def basins_geojson(qs) -> dict:
    """Basins as a GeoJSON FeatureCollection (WGS84), their properties as the import reads them; a basin
    without an outline is a feature with a null geometry."""
    features = []
    for b in qs:
        features.append({"type": "Feature", "id": b.code,
                         "geometry": json.loads(outline_text(b.boundary)) if b.boundary else None,
                         "properties": {"code": b.code, "name": b.name, "name_en": b.name_en, "river": b.river,
                                        "system": b.system, "parent": b.parent.code if b.parent_id else None,
                                        "region": b.region.code, "area_km2": b.area_km2, "contact": b.contact,
                                        "phone": b.phone, "notes": b.notes}})
    return {"type": "FeatureCollection", "features": features}
