"""What is near a point (周边资源): the nearby API and radius lists, nearest first, against a brute-force sort of
great-circle distances over every visible record; scoped like every read; bad parameters are 4xx."""

from __future__ import annotations

import random

import pytest

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core.geo import haversine_m
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(world):
    """Twenty teams scattered over town A's village and ten over town B's, at seeded random points."""
    rng = random.Random(7)
    kind = get_kind("teams")
    admin = world["users"]["admin"]
    made = []
    for i, village in enumerate([world["village_a"]] * 20 + [world["village_b"]] * 10):
        lon = village.lon + rng.uniform(-0.04, 0.04)
        lat = village.lat + rng.uniform(-0.04, 0.04)
        made.append(create_record(admin, kind, record_data(kind, village, f"n{i}", lon=round(lon, 6),
                                                           lat=round(lat, 6), headcount=i + 1)))
    return made


def ranked(objs, lon, lat, radius):
    """The brute force: every record's great-circle distance, sorted (ties by id), those within the radius."""
    near = sorted((haversine_m(lon, lat, o.lon, o.lat), o.pk) for o in objs)
    return [pk for d, pk in near if d <= radius]


def test_nearby_lists_the_nearest_first_as_a_brute_force_sort_does(world, teams, client):
    client.force_login(world["users"]["commander"])
    village = world["village_a"]
    for radius in (1500, 4000, 9000, 30000):
        r = client.get("/api/v1/map/nearby", {"lon": village.lon, "lat": village.lat, "radius": radius,
                                               "kinds": "teams", "limit": 50})
        assert r.status_code == 200, r.content
        (layer,) = r.json()["kinds"]
        expected = ranked(teams, village.lon, village.lat, radius)
        assert [item["id"] for item in layer["items"]] == expected[:50] and layer["count"] == len(expected)
        distances = [item["distance_m"] for item in layer["items"]]
        assert distances == sorted(distances)
        for item in layer["items"]:
            assert item["figures"]["headcount"] >= 1 and item["phone"] is not None
    r = client.get("/api/v1/map/nearby", {"lon": village.lon, "lat": village.lat, "radius": 30000, "limit": 3})
    body = r.json()
    assert {k["slug"] for k in body["kinds"]} >= {"teams", "shelters"}
    assert all(len(k["items"]) <= 3 for k in body["kinds"])


def test_nearby_is_scoped_like_every_read(world, teams, client):
    client.force_login(world["users"]["town_staff"])
    b = world["village_b"]
    r = client.get("/api/v1/map/nearby", {"lon": b.lon, "lat": b.lat, "radius": 50000, "kinds": "teams"})
    assert r.status_code == 200 and OUTSIDE_MARK not in r.content.decode()
    mine = [t for t in teams if t.region_id == world["village_a"].pk]
    assert [i["id"] for i in r.json()["kinds"][0]["items"]] == ranked(mine, b.lon, b.lat, 50000)[:10]
    client.logout()
    assert client.get("/api/v1/map/nearby", {"lon": b.lon, "lat": b.lat}).status_code == 401


@pytest.mark.parametrize("params,field", [
    ({"lon": "inf", "lat": 30.2}, "lon"), ({"lon": 119.4, "lat": 95}, "lat"), ({"lat": 30.2}, "lon"),
    ({"lon": 119.4, "lat": 30.2, "radius": -5}, "radius"), ({"lon": 119.4, "lat": 30.2, "radius": 1e9}, "radius"),
    ({"lon": 119.4, "lat": 30.2, "limit": 0}, "limit"), ({"lon": 119.4, "lat": 30.2, "kinds": "nope"}, "kinds"),
])
def test_nearby_refuses_bad_parameters_on_their_field(params, field, world, client):
    client.force_login(world["users"]["commander"])
    r = client.get("/api/v1/map/nearby", params)
    assert r.status_code == 422, (params, r.status_code)
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()


def test_radius_lists_are_nearest_first_with_their_distance(world, teams, client):
    client.force_login(world["users"]["commander"])
    village = world["village_a"]
    expected = ranked(teams, village.lon, village.lat, 6000)
    r = client.get("/api/v1/teams/", {"lon": village.lon, "lat": village.lat, "radius": 6000, "page_size": 5})
    body = r.json()
    assert body["count"] == len(expected) and [row["id"] for row in body["results"]] == expected[:5]
    assert all(a["distance_m"] <= b["distance_m"] for a, b in zip(body["results"], body["results"][1:],
                                                                   strict=False))
    page2 = client.get("/api/v1/teams/", {"lon": village.lon, "lat": village.lat, "radius": 6000, "page_size": 5,
                                          "page": 2}).json()
    assert [row["id"] for row in page2["results"]] == expected[5:10]
