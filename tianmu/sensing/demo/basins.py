"""The demo's river basins (流域), built by dissolving the demo towns into Lin'an's river systems and imported
through the real GeoJSON import (services/basins.py), so the demo shows the path a flood office uses.

Lin'an's rivers: the 分水江 (钱塘江水系) is fed by the 昌化溪 in the west and the 天目溪 in the middle; the 苕溪
(太湖水系) drains the east through the 南苕溪 and the 中苕溪/北苕溪. [U] The grouping of whole towns into basins
is approximate and demo-only: real basin boundaries follow ridges, not town borders, and a town can drain into
two basins (the demo towns themselves are synthetic Voronoi cells, tianmu/demo/geography.py). Real basins are
imported from the water department's GeoJSON.
"""

from __future__ import annotations

import json

import shapely

from tianmu.core.models import Region

from ..services.basins import import_basins

__all__ = ["BASINS", "TOWN_BASIN", "basin_features", "build_basins_step"]

# (code, name, English name, river, river system, parent code, member towns (sub-basins only)) [U]
BASINS: tuple[tuple[str, str, str, str, str, str, tuple[str, ...]], ...] = (
    ("LA-FSJ", "分水江流域", "Fenshui River Basin", "分水江", "钱塘江水系", "", ()),
    ("LA-FSJ-CHX", "昌化溪流域", "Changhua Creek Basin", "昌化溪", "钱塘江水系", "LA-FSJ",
     ("昌化镇", "河桥镇", "湍口镇", "龙岗镇", "清凉峰镇", "岛石镇")),
    ("LA-FSJ-TMX", "天目溪流域", "Tianmu Creek Basin", "天目溪", "钱塘江水系", "LA-FSJ",
     ("於潜镇", "天目山镇", "太阳镇", "潜川镇")),
    ("LA-TX", "苕溪流域(临安段)", "Tiaoxi River Basin (Lin'an)", "苕溪", "太湖水系", "", ()),
    ("LA-TX-NTX", "南苕溪流域", "South Tiaoxi Basin", "南苕溪", "太湖水系", "LA-TX",
     ("锦城街道", "锦北街道", "锦南街道", "玲珑街道", "青山湖街道", "板桥镇", "太湖源镇")),
    ("LA-TX-ZTX", "中苕溪·北苕溪流域", "Middle and North Tiaoxi Basin", "中苕溪", "太湖水系", "LA-TX", ("高虹镇",)),
)

# Every demo town in exactly one sub-basin (checked in tests against the demo geography's towns).
TOWN_BASIN: dict[str, str] = {town: code for code, *_rest, towns in BASINS for town in towns}

NOTE = "[U] 演示数据:按整镇街归并的近似流域,仅供演示;实际流域边界请由水利部门提供后导入。"


def basin_features(towns: dict[str, dict]) -> dict:
    """The demo basins as a GeoJSON FeatureCollection from the towns' boundaries ({name: GeoJSON geometry}):
    each sub-basin is the union of its towns, each river basin the union of its sub-basins."""
    shapes = {name: shapely.from_geojson(json.dumps(geom)) for name, geom in towns.items()}
    shapes = {name: s if s.is_valid else shapely.make_valid(s) for name, s in shapes.items()}
    merged: dict[str, object] = {}
    for code, *_rest, members in BASINS:
        if members:
            merged[code] = shapely.union_all([shapes[t] for t in members if t in shapes])
    for code, *_rest, members in BASINS:
        if not members:
            merged[code] = shapely.union_all([merged[c] for c, *_r, parent, _m in BASINS if parent == code])
    features = []
    for code, name, name_en, river, system, parent, _members in BASINS:
        # Slivers between towns' rounded coordinates are dissolved (a 1 m buffer out and back, in degrees).
        shape = shapely.set_precision(merged[code].buffer(1e-5).buffer(-1e-5), 1e-5)
        features.append({"type": "Feature", "geometry": json.loads(shapely.to_geojson(shape)),
                         "properties": {"code": code, "name": name, "name_en": name_en, "river": river,
                                        "system": system, "parent": parent, "notes": NOTE}})
    return {"type": "FeatureCollection", "features": features}


def build_basins_step(ctx) -> dict[str, int]:
    """The demo step "sensing.basins": the demo basins, through the GeoJSON import (district basins)."""
    towns = dict(Region.objects.filter(level="town").values_list("name", "boundary"))
    missing = sorted(set(TOWN_BASIN) - set(towns))
    if missing:
        raise RuntimeError(f"demo basins: towns not in the demo district: {missing}")
    data = json.dumps(basin_features(towns), ensure_ascii=False).encode()
    report = import_basins(ctx.actor, data, dry_run=False)
    if not report.ok:
        raise RuntimeError(f"demo basins refused by the import: {report.errors}")
    return {"basins": report.created + report.updated}
