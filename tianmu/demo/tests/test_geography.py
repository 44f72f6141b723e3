"""Tests for the synthetic Lin'an geography generator (pure Python, no database)."""

import csv
import random
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box, shape

from tianmu.demo import geography

TOWN_NAMES = (
    "锦城街道 锦北街道 锦南街道 玲珑街道 青山湖街道 板桥镇 高虹镇 太湖源镇 於潜镇 "
    "天目山镇 太阳镇 潜川镇 昌化镇 河桥镇 湍口镇 龙岗镇 清凉峰镇 岛石镇"
).split()
SHARED_CSV = Path("/work/shared/domain/linan_towns.csv")
EXTENT_BOX = box(*geography.EXTENT)
# Albers equal-area conic fitted to the district, for metric areas independent of the generator.
TO_METRIC = Transformer.from_crs(
    "EPSG:4326",
    "+proj=aea +lat_1=30.0 +lat_2=30.3 +lat_0=30.15 +lon_0=119.35 +datum=WGS84 +units=m",
    always_xy=True,
)


def metric_km2(geom) -> float:
    projected = shapely.transform(geom, lambda xy: np.column_stack(TO_METRIC.transform(xy[:, 0], xy[:, 1])))
    return projected.area / 1e6


def regions(data):
    return [data["district"], *data["towns"], *data["villages"]]


def overlap_pairs(geoms, tol=1e-9):
    """Index pairs whose intersection area exceeds ``tol`` (square degrees)."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    return [
        (int(i), int(j))
        for i, j in zip(left, right, strict=True)
        if i < j and geoms[i].intersection(geoms[j]).area >= tol
    ]


@pytest.fixture(scope="module")
def geo():
    return geography.generate()


def test_deterministic(geo):
    assert geography.generate() == geo
    assert geography.generate(seed=7) != geo


def test_towns_match_csv(geo):
    towns = geo["towns"]
    assert [t["name"] for t in towns] == TOWN_NAMES
    assert [t["code"] for t in towns] == [f"330112{i:03d}" for i in range(1, 19)]
    assert all(t["level"] == "town" and t["parent_code"] == "330112" for t in towns)
    if SHARED_CSV.exists():
        with SHARED_CSV.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert [(t["name"], t["kind"]) for t in towns] == [(r["name"], r["kind"]) for r in rows]


def test_region_fields(geo):
    district = geo["district"]
    expected = ("330112", "district", "区", None)
    assert (district["code"], district["level"], district["kind"], district["parent_code"]) == expected
    keys = set(
        "code name level kind parent_code population households area_km2 lon lat bbox boundary".split()
    )
    for r in regions(geo):
        assert set(r) == keys
        assert r["households"] >= 1 and r["population"] > 0 and r["area_km2"] > 0
        assert r["boundary"]["type"] in ("Polygon", "MultiPolygon")
        assert r["bbox"] == tuple(round(v, 5) for v in shape(r["boundary"]).bounds)


def test_villages_count_codes_and_names(geo):
    villages = geo["villages"]
    assert 280 <= len(villages) <= 330
    assert len({v["code"] for v in villages}) == len(villages)
    for town in geo["towns"]:
        mine = [v for v in villages if v["parent_code"] == town["code"]]
        assert [v["code"] for v in mine] == [f"{town['code']}{n:03d}" for n in range(1, len(mine) + 1)]
        assert len({v["name"] for v in mine}) == len(mine)
        assert all(v["level"] == "village" and v["name"].endswith(v["kind"]) for v in mine)
        if town["kind"] == "街道":
            assert 6 <= sum(v["kind"] == "社区" for v in mine) <= 12
        else:
            assert 10 <= sum(v["kind"] == "村" for v in mine) <= 25


def test_geometry_valid_rounded_and_inside_extent(geo):
    for r in regions(geo):
        geom = shape(r["boundary"])
        assert geom.is_valid, r["code"]
        assert EXTENT_BOX.contains(geom), r["code"]
        coords = shapely.get_coordinates(geom)
        assert np.array_equal(coords, np.round(coords, 5))


def test_towns_tile_district(geo):
    district = shape(geo["district"]["boundary"])
    towns = [shape(t["boundary"]) for t in geo["towns"]]
    assert not overlap_pairs(towns)
    union = shapely.union_all(towns)
    assert abs(union.area - district.area) / district.area < 0.005
    assert district.symmetric_difference(union).area < 1e-9
    for (_, _, lat, lon), town in zip(geography.TOWNS, towns, strict=True):
        assert district.contains(Point(lon, lat)) and town.contains(Point(lon, lat))


def test_villages_tile_towns(geo):
    villages = [shape(v["boundary"]) for v in geo["villages"]]
    assert not overlap_pairs(villages)
    for town in geo["towns"]:
        tgeom = shape(town["boundary"])
        mine = [g for g, v in zip(villages, geo["villages"], strict=True) if v["parent_code"] == town["code"]]
        assert all(g.difference(tgeom).area < 1e-9 for g in mine)
        assert tgeom.symmetric_difference(shapely.union_all(mine)).area < 1e-9


def test_populations_sum_exactly(geo):
    towns, villages = geo["towns"], geo["villages"]
    assert geo["district"]["population"] == geography.POPULATION == 634_555
    assert sum(t["population"] for t in towns) == 634_555
    for town in towns:
        mine = [v for v in villages if v["parent_code"] == town["code"]]
        assert sum(v["population"] for v in mine) == town["population"]
        assert sum(v["households"] for v in mine) == town["households"]
    streets = sum(t["population"] for t in towns if t["kind"] == "街道")
    assert 0.45 <= streets / 634_555 <= 0.50
    for v in villages:
        assert 2.3 <= v["population"] / v["households"] <= 2.9


def test_representative_points_inside(geo):
    for r in regions(geo):
        assert shape(r["boundary"]).contains(Point(r["lon"], r["lat"])), r["code"]


def test_district_area_metric(geo):
    area = metric_km2(shape(geo["district"]["boundary"]))
    assert 3000 <= area <= 3300
    assert abs(area - geo["district"]["area_km2"]) < 5
    town_sum = sum(t["area_km2"] for t in geo["towns"])
    assert abs(town_sum - geo["district"]["area_km2"]) < 0.1


def test_random_point_in(geo):
    rng = random.Random(1)
    for r in [geo["district"], *geo["towns"][:3], *geo["villages"][:20]]:
        geom = shape(r["boundary"])
        for _ in range(5):
            lon, lat = geography.random_point_in(r["boundary"], rng)
            assert geom.contains(Point(lon, lat))
    a = [geography.random_point_in(geo["district"]["boundary"], random.Random(5)) for _ in range(2)]
    assert a[0] == a[1]


@pytest.mark.parametrize("seed", [1, 2, 2024])
def test_other_seeds_consistent(seed):
    data = geography.generate(seed)
    assert 280 <= len(data["villages"]) <= 330
    towns = [shape(t["boundary"]) for t in data["towns"]]
    assert all(g.is_valid and EXTENT_BOX.contains(g) for g in towns)
    assert not overlap_pairs(towns)
    assert 3000 <= metric_km2(shape(data["district"]["boundary"])) <= 3300
    assert sum(v["population"] for v in data["villages"]) == 634_555
    for r in regions(data):
        assert shape(r["boundary"]).contains(Point(r["lon"], r["lat"])), r["code"]
