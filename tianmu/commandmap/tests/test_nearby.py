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


# ---- the panel's use of the API: the kinds in the panel's order, up the chain, figures with their labels ----------


def test_the_panels_query_against_the_brute_force_with_resources_up_the_chain(world, teams, client):
    """What the panel asks (its kinds, limit 5): each list the brute-force nearest of what the user reads — a
    village responder's includes the town's and the district's own teams (up the chain), never town B's."""
    from tianmu.commandmap.views import nearby_config

    admin = world["users"]["admin"]
    kind = get_kind("teams")
    above = [create_record(admin, kind, record_data(kind, world[level], f"up-{level}", headcount=40))
             for level in ("town_a", "district")]
    user = world["users"]["village_responder"]
    client.force_login(user)
    cfg = nearby_config(119.31, 30.16)
    assert cfg["kinds"][:3] == ["teams", "shelters", "warehouses"] and "hazards" in cfg["kinds"]
    r = client.get(cfg["api"], {"lon": cfg["lon"], "lat": cfg["lat"], "radius": 20000, "limit": 5,
                                "kinds": ",".join(cfg["kinds"])})
    assert r.status_code == 200
    data = r.json()
    assert [k["slug"] for k in data["kinds"]] == cfg["kinds"]  # in the panel's order
    got = next(k for k in data["kinds"] if k["slug"] == "teams")
    readable = [t for t in teams if t.region.code.startswith("330112001001")] + above
    expected = ranked(readable, cfg["lon"], cfg["lat"], 20000)
    assert [i["id"] for i in got["items"]] == expected[:5] and got["count"] == len(expected)
    assert all(OUTSIDE_MARK not in i["name"] for i in got["items"])
    assert got["figure_labels"] == {"headcount": "人数"}
    assert {above[0].pk, above[1].pk} <= set(expected)  # the town's and the district's own teams count


def test_detail_pages_carry_the_panel(world, records, client):
    client.force_login(world["users"]["town_staff"])
    for slug in ("teams", "hazards", "shelters"):
        obj = records[slug]["a"]
        page = client.get(f"/r/{slug}/{obj.pk}/").content.decode()
        assert "data-nearby" in page and f'"exclude": "{slug}:{obj.pk}"' in page and "commandmap/nearby.js" in page


def test_the_sensor_page_carries_the_panel(world, records, client):
    client.force_login(world["users"]["town_staff"])
    sensor = records["sensors"]["a"]
    page = client.get(f"/sensing/sensors/{sensor.pk}/").content.decode()
    assert "data-nearby" in page and f'"lon": {round(sensor.lon, 6)}' in page


def test_the_nearby_page_takes_a_coordinate_or_a_place(world, client):
    client.force_login(world["users"]["town_staff"])
    r = client.get("/nearby/", {"q": "30.15，119.30"})
    assert r.status_code == 200 and '"lon": 119.3, "lat": 30.15' in r.content.decode()
    r = client.get("/nearby/", {"q": "甲镇甲一村村委会"})  # an address: its village
    assert r.status_code == 200 and f'"lon": {world["village_a"].lon}' in r.content.decode()
    r = client.get("/nearby/", {"q": "蔺镇"})  # another town: not found, and nothing of it shown
    assert r.status_code == 400 and "data-nearby" not in r.content.decode()
    r = client.get("/nearby/", {"lon": "999", "lat": "30"})
    assert r.status_code == 400 and "errorlist" in r.content.decode()
    assert client.get("/nearby/", {"lon": "119.3", "lat": "30.15", "title": "<b>x</b>"}).content.decode().count(
        "<b>x</b>") == 0


def test_lists_near_a_point_show_a_chip_and_sort_by_distance(world, teams, client):
    client.force_login(world["users"]["town_staff"])
    lon, lat = 119.31, 30.16
    r = client.get("/r/teams/", {"lon": lon, "lat": lat, "radius": 3000, "team_type": "volunteer"})
    assert r.status_code == 200
    page = r.content.decode()
    assert "data-near-chip" in page
    expected = ranked([t for t in teams if t.region.code.startswith("330112001")], lon, lat, 3000)
    import re

    shown = [int(pk) for pk in re.findall(r'href="/r/teams/(\d+)/"', page)]
    assert shown == expected and expected
    # The chip's × keeps the other filters and drops the point.
    clear = re.search(r'class="chip-clear" href="\?([^"]*)"', page).group(1)
    assert "team_type=volunteer" in clear and "lon=" not in clear and "radius=" not in clear
    assert "data-near-chip" not in client.get("/r/teams/?" + clear.replace("&amp;", "&")).content.decode()
