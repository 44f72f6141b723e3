"""Deterministic, plausible administrative geography for Lin'an district (临安区), Hangzhou.

Pure Python (shapely, pyproj, numpy, random): no Django imports. Real boundaries are not available, so
:func:`generate` builds a synthetic but self-consistent hierarchy:

* a smooth, irregular district outline (~3,119 km²) inside the official extent box;
* 18 town (镇街) Voronoi cells around the approximate town seats, clipped to the outline;
* ~300 village (村) / community (社区) cells in total: per town, Voronoi cells of seeded points clipped to it.

All boundaries are noded together and snapped to a 1e-5 degree grid, so neighbours share identical
edges: towns tile the district and villages tile their town without gaps or overlaps.
"""

from __future__ import annotations

import math
import random

import numpy as np
import shapely
from pyproj import Geod
from shapely.affinity import affine_transform
from shapely.geometry import MultiPoint, Point, Polygon, box, shape
from shapely.geometry.polygon import orient

__all__ = ["DISTRICT_CODE", "EXTENT", "MOUNTAIN_WEIGHT", "POPULATION", "TOWNS", "generate", "random_point_in"]

DISTRICT_CODE = "330112"
DISTRICT_NAME = "临安区"
POPULATION = 634_555  # 2020 census
AREA_KM2 = 3118.77
SEAT = (119.7153, 30.2361)  # (lon, lat) of the district government, 锦城街道
# Official extent 118°51'–119°52' E, 29°56'–30°23' N as (min_lon, min_lat, max_lon, max_lat).
EXTENT = (118 + 51 / 60, 29 + 56 / 60, 119 + 52 / 60, 30 + 23 / 60)

# (name, kind, lat, lon), in official code order; from shared/domain/linan_towns.csv (approximate seats).
TOWNS: tuple[tuple[str, str, float, float], ...] = (
    ("锦城街道", "街道", 30.236, 119.715),
    ("锦北街道", "街道", 30.26, 119.72),
    ("锦南街道", "街道", 30.20, 119.72),
    ("玲珑街道", "街道", 30.22, 119.67),
    ("青山湖街道", "街道", 30.25, 119.80),
    ("板桥镇", "镇", 30.17, 119.76),
    ("高虹镇", "镇", 30.33, 119.68),
    ("太湖源镇", "镇", 30.30, 119.58),
    ("於潜镇", "镇", 30.21, 119.41),
    ("天目山镇", "镇", 30.30, 119.45),
    ("太阳镇", "镇", 30.17, 119.44),
    ("潜川镇", "镇", 30.10, 119.43),
    ("昌化镇", "镇", 30.16, 119.23),
    ("河桥镇", "镇", 30.07, 119.29),
    ("湍口镇", "镇", 30.06, 119.20),
    ("龙岗镇", "镇", 30.2095, 119.0964),
    ("清凉峰镇", "镇", 30.14, 119.01),
    ("岛石镇", "镇", 30.2901, 118.9504),
)
# Western mountain towns carry most geological and flash-flood risk (Lekima 2019 hit 龙岗 and 岛石 hardest).
MOUNTAIN_WEIGHT = {"龙岗镇": 3.0, "岛石镇": 3.0, "清凉峰镇": 2.6, "湍口镇": 2.4, "河桥镇": 2.2, "昌化镇": 2.0,
                   "太阳镇": 1.8, "潜川镇": 1.8, "天目山镇": 2.2, "於潜镇": 1.6, "太湖源镇": 2.0, "高虹镇": 1.6,
                   "板桥镇": 1.3, "锦北街道": 0.8, "玲珑街道": 0.8, "青山湖街道": 0.5, "锦南街道": 0.6,
                   "锦城街道": 0.3}

GRID = 1e-5  # degrees; output coordinates are rounded to 5 decimals
_GEOD = Geod(ellps="WGS84")
_MARGIN = 0.002  # degrees kept free inside the extent box
_KNEE = 0.06  # degrees over which the outline is softly squeezed towards the extent box

# Local equirectangular km frame used for shape building and Voronoi diagrams (isotropic distances).
_LON0, _LAT0 = 119.36, 30.16
_KX = 111.320 * math.cos(math.radians(_LAT0))
_KY = 110.574
_TO_KM = [_KX, 0.0, 0.0, _KY, -_LON0 * _KX, -_LAT0 * _KY]
_TO_DEG = [1 / _KX, 0.0, 0.0, 1 / _KY, _LON0, _LAT0]

# Relative population density of towns (镇) beyond their area: sub-centres up, western mountains down.
_TOWN_DENSITY = {"於潜镇": 1.8, "昌化镇": 1.7, "板桥镇": 1.4, "高虹镇": 1.1, "太湖源镇": 1.1}
_TOWN_DENSITY |= {"龙岗镇": 0.8, "湍口镇": 0.75, "清凉峰镇": 0.7, "岛石镇": 0.7}
# Relative weight of the five 街道 within their combined ~45–50 % population share.
_STREET_WEIGHT = {"锦城街道": 1.4, "锦北街道": 0.9, "锦南街道": 0.85, "玲珑街道": 0.8, "青山湖街道": 1.15}

# Syllables for names; curated so that every combination reads as an ordinary place name.
_V_PREFIX = "上下东西南北前后大小新高石竹桃杨柳梅青白金龙凤双横长茶松桐枫里"
_V_ROOT = "溪坞坑岭口源塘山畈湾坪岙田桥川泉庄"
_V_SURNAME = "杨徐章何汪方胡潘陈吴俞洪叶程孙钱"
_C_FIRST = "锦衣钱吴城天苕青文华新安春翠桂兰滨湖玲"
_C_SECOND = "城锦溪苑园华兴安康宁和源桥山林湖光庭景"


def _to_km(geom):
    """lon/lat → local km frame."""
    return affine_transform(geom, _TO_KM)


def _to_deg(geom):
    """Local km frame → lon/lat."""
    return affine_transform(geom, _TO_DEG)


def _area_km2(geom) -> float:
    """Geodesic (WGS84 ellipsoid) area in km²."""
    return abs(_GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def _polys(geom) -> list[Polygon]:
    """Non-empty polygon parts of any geometry, in stored order."""
    out = []
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon" and not part.is_empty:
            out.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            out += _polys(part)
    return out


def _soft_clamp(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Monotone squeeze of ``v`` into (lo, hi): identity in the middle, tanh within _KNEE of the edges."""
    v = np.array(v, dtype=float)
    top, bot = hi - _KNEE, lo + _KNEE
    up, dn = v > top, v < bot
    v[up] = top + _KNEE * np.tanh((v[up] - top) / _KNEE)
    v[dn] = bot - _KNEE * np.tanh((bot - v[dn]) / _KNEE)
    return v


def _outline(centres_km: np.ndarray, nrng: np.random.Generator) -> Polygon:
    """Irregular district outline (lon/lat) enclosing all town centres, with area ≈ AREA_KM2."""
    hull = MultiPoint(centres_km).convex_hull
    cx, cy = hull.centroid.coords[0]
    theta = np.linspace(0.0, 2 * math.pi, 720, endpoint=False)
    ends = np.column_stack([cx + 1e3 * np.cos(theta), cy + 1e3 * np.sin(theta)])
    rays = shapely.linestrings(np.stack([np.tile([cx, cy], (theta.size, 1)), ends], axis=1))
    r_hull = shapely.distance(Point(cx, cy), shapely.intersection(rays, hull.exterior))
    k = np.arange(2, 41)
    amp = np.where(k <= 6, nrng.uniform(0.04, 0.09, k.size) * 2 / k, nrng.uniform(0.0, 0.025, k.size) * 7 / k)
    phase = nrng.uniform(0.0, 2 * math.pi, k.size)
    wobble = 1.0 + (amp[:, None] * np.cos(k[:, None] * theta[None, :] + phase[:, None])).sum(axis=0)
    seats = _to_deg(shapely.union_all([Point(c).buffer(3.0, quad_segs=8) for c in centres_km]))
    min_lon, min_lat, max_lon, max_lat = EXTENT
    frame = box(min_lon + _MARGIN, min_lat + _MARGIN, max_lon - _MARGIN, max_lat - _MARGIN)

    def build(pad_km: float) -> Polygon:
        r = (r_hull + pad_km) * wobble
        lon = _soft_clamp((cx + r * np.cos(theta)) / _KX + _LON0, min_lon + _MARGIN, max_lon - _MARGIN)
        lat = _soft_clamp((cy + r * np.sin(theta)) / _KY + _LAT0, min_lat + _MARGIN, max_lat - _MARGIN)
        shape_ = shapely.make_valid(Polygon(np.column_stack([lon, lat]))).union(seats).intersection(frame)
        return max(_polys(shape_), key=lambda p: p.area)

    lo, hi = 0.0, 40.0
    for _ in range(30):  # area grows monotonically with the padding
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _area_km2(build(mid)) < AREA_KM2 else (lo, mid)
    return build((lo + hi) / 2)


def _voronoi_deg(points_km: np.ndarray, clip_deg) -> list:
    """Voronoi cells of ``points_km`` (in input order), converted to lon/lat and clipped to ``clip_deg``."""
    env = MultiPoint(points_km).envelope.buffer(50.0)
    cells = list(shapely.voronoi_polygons(MultiPoint(points_km), extend_to=env).geoms)
    tree = shapely.STRtree(cells)
    out = []
    for p in points_km:
        idx = tree.query(Point(p), predicate="within")
        out.append(_to_deg(cells[int(idx[0])]).intersection(clip_deg))
    return out


def _defragment(cells: list, seeds: list[Point]) -> list:
    """Keep the part of each clipped cell holding its seed; give detached parts to the best neighbour."""
    cells = list(cells)
    orphans = []
    for i, g in enumerate(cells):
        parts = _polys(g)
        keep = next((p for p in parts if p.intersects(seeds[i])), max(parts, key=lambda p: p.area))
        cells[i] = keep
        orphans += [(i, p) for p in parts if p is not keep]
    orphans.sort(key=lambda t: (-t[1].area, t[0]))
    for i, part in orphans:
        best, best_len = i, 0.0
        for j, g in enumerate(cells):
            if j != i and g.distance(part) < 1e-7:
                shared = part.boundary.intersection(g.buffer(1e-7)).length
                if shared > best_len:
                    best, best_len = j, shared
        cells[best] = cells[best].union(part)
    return cells


def _inside_points(poly_km, n: int, nrng: np.random.Generator, centre=None, sigma=None) -> np.ndarray:
    """``n`` random points inside ``poly_km``: uniform, or Gaussian around ``centre`` if ``sigma``."""
    minx, miny, maxx, maxy = poly_km.bounds
    found, total = [], 0
    while total < n:
        m = max(32, 4 * n)
        if sigma is None:
            pts = nrng.uniform([minx, miny], [maxx, maxy], size=(m, 2))
        else:
            pts = nrng.normal(centre, sigma, size=(m, 2))
        pts = pts[shapely.contains_xy(poly_km, pts[:, 0], pts[:, 1])]
        found.append(pts)
        total += len(pts)
    return np.concatenate(found)[:n]


def _place_seeds(poly_km, centre_km, n_comm: int, n_vill: int, street: bool, nrng) -> np.ndarray:
    """Best-candidate seed points: communities near the seat, villages spread over the town."""
    shapely.prepare(poly_km)
    edge = poly_km.boundary
    seeds: list[np.ndarray] = []
    if not street and n_comm:
        seeds.append(np.asarray(centre_km, dtype=float))  # the town seat community
    sigma = max(0.8, math.sqrt(poly_km.area) / 6)
    while len(seeds) < n_comm + n_vill:
        urban = len(seeds) < n_comm
        cand = _inside_points(poly_km, 10, nrng, *((centre_km, sigma) if urban else ()))
        d_edge = shapely.distance(edge, shapely.points(cand)) * 2
        if seeds:
            d_seed = np.linalg.norm(cand[:, None, :] - np.array(seeds)[None, :, :], axis=2).min(axis=1)
            d_edge = np.minimum(d_edge, d_seed)
        seeds.append(cand[int(np.argmax(d_edge))])
    return np.array(seeds)


def _apportion(total: int, weights, minimum: int = 0) -> list[int]:
    """Split integer ``total`` by ``weights`` (largest remainder), each share at least ``minimum``."""
    w = np.asarray(weights, dtype=float)
    rest = total - minimum * len(w)
    if rest < 0:
        raise ValueError("total too small for the minimum share")
    share = rest * w / w.sum()
    base = np.floor(share).astype(int)
    order = sorted(range(len(w)), key=lambda i: (-(share[i] - base[i]), i))
    for i in order[: rest - int(base.sum())]:
        base[i] += 1
    return [int(b) + minimum for b in base]


def _name(kind: str, rng: random.Random, used: set[str]) -> str:
    """A fresh plausible 村 or 社区 name, unique across the district."""
    for _ in range(1000):
        if kind == "社区":
            a, b = rng.choice(_C_FIRST), rng.choice(_C_SECOND)
            name = f"{a}{b}社区" if a != b else ""
        elif rng.random() < 0.35:
            name = f"{rng.choice(_V_SURNAME)}家{rng.choice(_V_ROOT)}村"
        else:
            name = f"{rng.choice(_V_PREFIX)}{rng.choice(_V_ROOT)}村"
        if name and name not in used:
            used.add(name)
            return name
    raise RuntimeError("name space exhausted")


def _snap_tiling(cells: list) -> list:
    """Node all cell boundaries on the GRID and rebuild cells from the faces, so neighbours share edges."""
    lines = shapely.union_all([c.boundary for c in cells], grid_size=GRID)
    faces = list(shapely.polygonize(shapely.get_parts(lines)).geoms)
    tree = shapely.STRtree(cells)
    owned: list[list[Polygon]] = [[] for _ in cells]
    for face in faces:
        hits = tree.query(face.point_on_surface(), predicate="within")
        if len(hits) != 1:
            near = sorted(int(j) for j in tree.query(face.buffer(GRID)))
            hits = [max(near, key=lambda j: (cells[j].intersection(face).area, -cells[j].distance(face)))]
        owned[int(hits[0])].append(face)
    if any(not fs for fs in owned):
        raise RuntimeError("a cell vanished while snapping")
    return [fs[0] if len(fs) == 1 else shapely.coverage_union_all(fs) for fs in owned]


def _geojson(geom) -> dict:
    """GeoJSON geometry (lon/lat, 5 decimals, RFC 7946 ring orientation)."""

    def ring(r):
        return [[round(x, 5), round(y, 5)] for x, y in r.coords]

    rings = [[ring(p.exterior), *map(ring, p.interiors)] for p in map(lambda q: orient(q, 1.0), _polys(geom))]
    if len(rings) == 1:
        return {"type": "Polygon", "coordinates": rings[0]}
    return {"type": "MultiPolygon", "coordinates": rings}


def _anchor(geom, lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) if inside ``geom`` (rounded to 6 decimals when still inside), else a point on its surface."""
    surface = geom.point_on_surface()
    for x, y in ((lon, lat), (surface.x, surface.y)):
        for cand in ((round(x, 6), round(y, 6)), (x, y)):
            if geom.contains(Point(cand)):
                return cand
    return surface.x, surface.y


def _region(code, name, level, kind, parent, population, households, geom, lon, lat) -> dict:
    """The public Region dict for one unit."""
    lon, lat = _anchor(geom, lon, lat)
    return {
        "code": code,
        "name": name,
        "level": level,
        "kind": kind,
        "parent_code": parent,
        "population": int(population),
        "households": int(households),
        "area_km2": round(_area_km2(geom), 3),
        "lon": lon,
        "lat": lat,
        "bbox": tuple(round(v, 5) for v in geom.bounds),
        "boundary": _geojson(geom),
    }


def _unit_counts(town_areas: list[float], rng: random.Random) -> tuple[list[int], list[int]]:
    """Communities (社区) and villages (村) per town, ~300 in total.

    街道 get 6–12 社区 (the seat 锦城 12) plus 2–8 村 by area; 镇 get one seat 社区 plus 10–25 村 by area.
    """
    street = [kind == "街道" for _, kind, _, _ in TOWNS]
    n_comm = [(12 if i == 0 else rng.randint(6, 10)) if s else 1 for i, s in enumerate(street)]
    n_vill = [min(8, max(2, round(a / 15))) if s else 0 for s, a in zip(street, town_areas, strict=True)]
    rural_area = sum(a for s, a in zip(street, town_areas, strict=True) if not s)
    per_km2 = (300 - sum(n_comm) - sum(n_vill)) / rural_area
    for i, s in enumerate(street):
        if not s:
            n_vill[i] = min(25, max(10, round(town_areas[i] * per_km2)))
    return n_comm, n_vill


def _town_populations(town_areas: list[float], rng: random.Random) -> list[int]:
    """Split POPULATION: the five 街道 take 45–50 % together, the 镇 share the rest by area × density."""
    streets = [i for i, t in enumerate(TOWNS) if t[1] == "街道"]
    rural = [i for i, t in enumerate(TOWNS) if t[1] == "镇"]
    street_total = round(POPULATION * rng.uniform(0.45, 0.50))
    pops = [0] * len(TOWNS)
    weights = [_STREET_WEIGHT.get(TOWNS[i][0], 1.0) * rng.lognormvariate(0, 0.1) for i in streets]
    for i, p in zip(streets, _apportion(street_total, weights), strict=True):
        pops[i] = p
    weights = [
        town_areas[i] * _TOWN_DENSITY.get(TOWNS[i][0], 1.0) * rng.lognormvariate(0, 0.15) for i in rural
    ]
    for i, p in zip(rural, _apportion(POPULATION - street_total, weights), strict=True):
        pops[i] = p
    return pops


def _unit_populations(total: int, kinds: list[str], areas: list[float], street: bool, rng) -> list[int]:
    """Split a town's population: 社区 are dense (65–80 % in 街道, 8–15 % in 镇), 村 scale with area."""
    comm = [j for j, k in enumerate(kinds) if k == "社区"]
    vill = [j for j, k in enumerate(kinds) if k != "社区"]
    weights = [
        a ** (0.3 if k == "社区" else 0.6) * rng.lognormvariate(0, 0.25 if k == "社区" else 0.35)
        for a, k in zip(areas, kinds, strict=True)
    ]
    comm_total = round(total * (rng.uniform(0.65, 0.8) if street else rng.uniform(0.08, 0.15)))
    pops = [0] * len(kinds)
    for j, p in zip(comm, _apportion(comm_total, [weights[j] for j in comm], 500), strict=True):
        pops[j] = p
    for j, p in zip(vill, _apportion(total - comm_total, [weights[j] for j in vill], 100), strict=True):
        pops[j] = p
    return pops


def generate(seed: int = 330112) -> dict:
    """Build the district, its 18 towns and ~300 villages/communities; same seed → identical output.

    Returns ``{"district": Region, "towns": [Region] * 18, "villages": [Region, ...]}`` where a Region is a
    dict with code, name, level, kind, parent_code, population, households, area_km2, lon, lat (a point
    inside the boundary), bbox and boundary (GeoJSON Polygon/MultiPolygon, lon/lat, 5 decimals).
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    centres_km = np.array([((lon - _LON0) * _KX, (lat - _LAT0) * _KY) for _, _, lat, lon in TOWNS])
    outline = _outline(centres_km, nrng)
    town_geoms = _defragment(_voronoi_deg(centres_km, outline), [Point(lon, lat) for _, _, lat, lon in TOWNS])
    town_areas = [_area_km2(g) for g in town_geoms]
    n_comm, n_vill = _unit_counts(town_areas, rng)
    town_pop = _town_populations(town_areas, rng)

    # Village cells per town; communities first, each group ordered by distance from the town seat.
    cells, units = [], []  # units: (town index, kind, seed lon, seed lat)
    for i, (_, kind, _, _) in enumerate(TOWNS):
        seeds = _place_seeds(_to_km(town_geoms[i]), centres_km[i], n_comm[i], n_vill[i], kind == "街道", nrng)
        seed_pts = [_to_deg(Point(s)) for s in seeds]
        town_cells = _defragment(_voronoi_deg(seeds, town_geoms[i]), seed_pts)
        dist = np.linalg.norm(seeds - centres_km[i], axis=1)
        for j in sorted(range(len(seeds)), key=lambda j: (j >= n_comm[i], dist[j], j)):
            cells.append(town_cells[j])
            units.append((i, "社区" if j < n_comm[i] else "村", seed_pts[j].x, seed_pts[j].y))
    cells = _snap_tiling(cells)

    used = {"衣锦社区"}  # the real community around the district government, given to 锦城's first unit
    towns, villages = [], []
    for i, (name, kind, lat, lon) in enumerate(TOWNS):
        code = f"{DISTRICT_CODE}{i + 1:03d}"
        members = [k for k, unit in enumerate(units) if unit[0] == i]
        kinds = [units[k][1] for k in members]
        areas = [_area_km2(cells[k]) for k in members]
        pops = _unit_populations(town_pop[i], kinds, areas, kind == "街道", rng)
        households = 0
        for n, (k, pop) in enumerate(zip(members, pops, strict=True), start=1):
            _, vkind, vlon, vlat = units[k]
            vname = "衣锦社区" if (i, n) == (0, 1) else _name(vkind, rng, used)
            hh = max(1, round(pop / rng.uniform(2.45, 2.8)))
            households += hh
            villages.append(
                _region(f"{code}{n:03d}", vname, "village", vkind, code, pop, hh, cells[k], vlon, vlat)
            )
        geom = shapely.coverage_union_all([cells[k] for k in members])
        towns.append(
            _region(code, name, "town", kind, DISTRICT_CODE, town_pop[i], households, geom, lon, lat)
        )

    households = sum(t["households"] for t in towns)
    geom = shapely.coverage_union_all(cells)
    district = _region(
        DISTRICT_CODE, DISTRICT_NAME, "district", "区", None, POPULATION, households, geom, *SEAT
    )
    return {"district": district, "towns": towns, "villages": villages}


def random_point_in(boundary_geojson: dict, rng: random.Random) -> tuple[float, float]:
    """A (lon, lat) point uniformly inside a GeoJSON (Multi)Polygon, by rejection sampling in its bbox."""
    geom = shape(boundary_geojson)
    shapely.prepare(geom)
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    for _ in range(10_000):
        lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
        if shapely.contains_xy(geom, lon, lat):
            return lon, lat
    p = geom.point_on_surface()
    return p.x, p.y
