"""The map's search: typed coordinates and places (towns, villages, addresses) before records, exact names and
codes first, within what the user may see."""

from __future__ import annotations

import pytest

from tianmu.commandmap.places import parse_point
from tianmu.commandmap.tests.test_map_api import get, regions, shelter, users  # noqa: F401 - fixtures

POINT = (119.1, 30.21)


@pytest.fixture(autouse=True)
def _db(db):
    pass


@pytest.mark.parametrize("text", ["30.21,119.10", "30.21, 119.10", "119.10 30.21", "30.21，119.10", "119.10，30.21",
                                  "30.21;119.1", "N30.21 E119.10", "E119.10 N30.21", "北30.21 东119.10",
                                  " 30.21 , 119.10 ", "119.10/30.21", "30.21° 119.10°"])
def test_typed_coordinates(text):
    lon, lat = parse_point(text)
    assert (round(lon, 6), round(lat, 6)) == POINT


@pytest.mark.parametrize("text", ["", "龙岗镇", "30.21", "30.21,119.10,5", "200,300", "abc,def", "30.21,,119.10x",
                                  "95,95"])
def test_not_coordinates(text):
    assert parse_point(text) is None


def test_ambiguous_pairs_read_latitude_first():
    assert parse_point("30.2,60.5") == (60.5, 30.2)
    assert parse_point("S12.5 W45") == (-45, -12.5)


def test_a_coordinate_is_the_only_hit(client, users):  # noqa: F811
    hits = get(client, users["leader"], "/search", q="30.21，119.10").json()
    assert len(hits) == 1 and hits[0]["kind"] == "point"
    assert (hits[0]["lon"], hits[0]["lat"]) == POINT


@pytest.fixture
def named(users):  # noqa: F811
    actor = users["commander"]
    return {
        # A record whose name contains the town's name, and one whose code is exactly what is typed.
        "town_named": shelter(actor, "BN-A-09", "锦城街道文化礼堂", 119.31, 30.21, 100),
        "long": shelter(actor, "BN-A-10", "锦城街道城中村第二避灾安置点", 119.32, 30.22, 100),
        "exact": shelter(actor, "BN-A-11", "城中", 119.34, 30.24, 100),
    }


def test_places_come_before_records_and_exact_names_first(client, users, named):  # noqa: F811
    hits = get(client, users["leader"], "/search", q="锦城街道").json()
    assert (hits[0]["kind"], hits[0]["name"], hits[0]["code"]) == ("place:town", "锦城街道", "330112001")
    assert hits[0]["bbox"] == [119.3, 30.2, 119.4, 30.3]
    records = [h["name"] for h in hits if h["kind"] == "shelters"]
    assert records == ["锦城街道文化礼堂", "锦城街道城中村第二避灾安置点"]  # both start with it: the shorter first
    hits = get(client, users["leader"], "/search", q="城中").json()
    # The shelter named exactly 城中 first; then the village 城中村, whose name starts with the text, before the
    # records whose names only start with it or contain it.
    assert [(h["kind"], h["name"]) for h in hits[:2]] == [("shelters", "城中"), ("place:village", "城中村")]
    # A record's exact name beats a town named inside it (read as an address).
    hits = get(client, users["leader"], "/search", q="锦城街道文化礼堂").json()
    assert [(h["kind"], h["name"]) for h in hits[:2]] == [("shelters", "锦城街道文化礼堂"), ("place:town", "锦城街道")]
    hits = get(client, users["leader"], "/search", q="bn-a-11").json()
    assert hits[0]["name"] == "城中"  # a code, case aside
    hits = get(client, users["leader"], "/search", q="330112002").json()
    assert (hits[0]["kind"], hits[0]["name"]) == ("place:town", "於潜镇")


def test_an_address_finds_its_village(client, users):  # noqa: F811
    hits = get(client, users["leader"], "/search", q="於潜镇光明村环溪路8号").json()
    assert [(h["kind"], h["name"]) for h in hits[:2]] == [("place:village", "光明村"), ("place:town", "於潜镇")]
    assert hits[0]["region_name"] == "於潜镇"


def test_places_are_scoped(client, users):  # noqa: F811
    names = [h["name"] for h in get(client, users["town_a"], "/search", q="镇").json()]
    assert "於潜镇" not in names
    names = [h["name"] for h in get(client, users["town_a"], "/search", q="临安区").json()]
    assert names == ["临安区"]  # the district above them: context, as their map's boundaries
    assert get(client, users["town_a"], "/search", q="光明村").json() == []


def test_exact_matches_survive_many_weaker_ones(client, users):  # noqa: F811
    actor = users["commander"]
    for i in range(25):
        shelter(actor, f"BN-X-{i:02d}", f"避灾点{i:02d}号", 119.31 + i * 0.001, 30.21, 100)
    target = shelter(actor, "BN-Y-01", "避灾点", 119.35, 30.25, 100)
    hits = get(client, users["leader"], "/search", q="避灾点").json()
    assert hits[0]["id"] == target.pk and len(hits) == 20
