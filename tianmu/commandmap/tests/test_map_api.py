"""The command map API (/api/v1/map/): layers, features, statistics and search, each limited to the caller's
region; plus the map page itself."""

from __future__ import annotations

import json
import re

import pytest

from tianmu.core.geo import locator
from tianmu.core.models import Region, User
from tianmu.core.registry.kinds import get_kind, kinds
from tianmu.core.registry.services import create_record

pytestmark = pytest.mark.django_db

API = "/api/v1/map"
DISTRICT = "330112"
TOWN_A, TOWN_B = "330112001", "330112002"


def square(lon0: float, lat0: float, size: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon0 + size, lat0], [lon0 + size, lat0 + size],
                                                [lon0, lat0 + size], [lon0, lat0]]]}


def make_region(code, name, level, parent, lon0, lat0, size):
    return Region.objects.create(code=code, name=name, level=level, parent=parent, lon=lon0 + size / 2,
                                 lat=lat0 + size / 2, min_lon=lon0, min_lat=lat0, max_lon=lon0 + size,
                                 max_lat=lat0 + size, boundary=square(lon0, lat0, size))


@pytest.fixture
def regions():
    district = make_region(DISTRICT, "临安区", "district", None, 119.2, 30.1, 0.4)
    town_a = make_region(TOWN_A, "锦城街道", "town", district, 119.3, 30.2, 0.1)
    town_b = make_region(TOWN_B, "於潜镇", "town", district, 119.4, 30.2, 0.1)
    make_region(TOWN_A + "001", "城中村", "village", town_a, 119.3, 30.2, 0.1)
    make_region(TOWN_B + "001", "光明村", "village", town_b, 119.4, 30.2, 0.1)
    locator.reset()
    yield {"district": district, "a": town_a, "b": town_b}
    locator.reset()


def make_user(username, role, region):
    return User.objects.create_user(username=username, password="Tm-test-pass-2024", role=role, region=region)


@pytest.fixture
def users(regions):
    return {
        "commander": make_user("commander", "commander", regions["district"]),
        "town_a": make_user("staff_a", "town_staff", regions["a"]),
        "town_b": make_user("staff_b", "town_staff", regions["b"]),
        "leader": make_user("leader", "leader", None),
    }


def shelter(actor, code, name, lon, lat, capacity, **extra):
    data = {"code": code, "name": name, "lon": lon, "lat": lat, "level": "town", "shelter_type": "school",
            "duration": "short", "capacity": capacity, "floor_area_m2": capacity * 2}
    data.update(extra)
    return create_record(actor, get_kind("shelters"), data)


@pytest.fixture
def shelters(users):
    actor = users["commander"]
    return {
        "a1": shelter(actor, "BN-A-01", "锦城一中避灾安置中心", 119.33, 30.23, 300),
        "a2": shelter(actor, "BN-A-02", "锦城体育馆避灾点", 119.36, 30.26, 200, shelter_type="gym"),
        "b1": shelter(actor, "BN-B-01", "於潜中学避灾安置中心", 119.45, 30.25, 500),
    }


def get(client, user, path, **params):
    client.force_login(user)
    return client.get(f"{API}{path}", params)


def ids(features):
    return sorted(f[0] for f in features)


# ---- /layers -------------------------------------------------------------------------------------------------


def test_layers_lists_every_map_kind_with_scoped_counts(client, users, shelters):
    res = get(client, users["town_a"], "/layers")
    assert res.status_code == 200
    layers = {layer["slug"]: layer for layer in res.json()["layers"]}
    assert set(layers) == {k.slug for k in kinds() if k.on_map}
    assert layers["shelters"]["count"] == 2
    assert layers["shelters"]["name"] == "避灾安置场所"
    assert layers["shelters"]["color"].startswith("#")
    assert isinstance(layers["shelters"]["cluster"], bool)
    assert all(layer["count"] == 0 for slug, layer in layers.items() if slug != "shelters")


def test_layers_count_everything_for_a_leader(client, users, shelters):
    layers = {layer["slug"]: layer for layer in get(client, users["leader"], "/layers").json()["layers"]}
    assert layers["shelters"]["count"] == 3


def test_layers_need_authentication(client, users):
    res = client.get(f"{API}/layers")
    assert res.status_code == 401
    assert res.json()["code"] == "unauthorized"


# ---- /layers/{slug} ------------------------------------------------------------------------------------------


def test_layer_features_are_compact_rows(client, users, shelters):
    res = get(client, users["leader"], "/layers/shelters")
    assert res.status_code == 200
    data = res.json()
    assert data["slug"] == "shelters"
    assert ids(data["features"]) == sorted(s.pk for s in shelters.values())
    row = next(f for f in data["features"] if f[0] == shelters["a1"].pk)
    # Then the layer's own fields (a shelter's state, free places, occupancy, capacity): a new shelter is closed.
    assert row == [shelters["a1"].pk, 119.33, 30.23, "锦城一中避灾安置中心", "乡镇(街道)避灾安置中心",
                   "closed", 0, 0, shelters["a1"].capacity]


def test_town_staff_see_only_their_town_on_the_map(client, users, shelters):
    a = get(client, users["town_a"], "/layers/shelters").json()["features"]
    assert ids(a) == sorted([shelters["a1"].pk, shelters["a2"].pk])
    b = get(client, users["town_b"], "/layers/shelters").json()["features"]
    assert ids(b) == [shelters["b1"].pk]


def test_layer_features_filter_by_search_and_bbox(client, users, shelters):
    by_q = get(client, users["leader"], "/layers/shelters", q="体育馆").json()["features"]
    assert ids(by_q) == [shelters["a2"].pk]
    by_box = get(client, users["leader"], "/layers/shelters", bbox="119.40,30.20,119.50,30.30").json()["features"]
    assert ids(by_box) == [shelters["b1"].pk]
    by_choice = get(client, users["leader"], "/layers/shelters", shelter_type="gym").json()["features"]
    assert ids(by_choice) == [shelters["a2"].pk]


def test_filters_never_widen_the_scope(client, users, shelters):
    res = get(client, users["town_a"], "/layers/shelters", bbox="119.40,30.20,119.50,30.30", region=TOWN_B)
    assert res.status_code == 200
    assert res.json()["features"] == []


def test_malformed_bbox_is_a_field_error(client, users, shelters):
    res = get(client, users["leader"], "/layers/shelters", bbox="119.5,30.3")
    assert res.status_code == 422
    body = res.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == "bbox"


def test_unknown_layer_is_404(client, users):
    res = get(client, users["leader"], "/layers/nonsense")
    assert res.status_code == 404
    assert res.json()["code"] == "not_found"


# ---- /stats --------------------------------------------------------------------------------------------------


def stats_for(client, user, slug):
    res = get(client, user, "/stats")
    assert res.status_code == 200
    data = {s["kind"]: s for s in res.json()["kinds"]}
    assert set(data) == {k.slug for k in kinds()}
    return data[slug]


def test_stats_for_a_town_cover_only_that_town(client, users, shelters):
    s = stats_for(client, users["town_a"], "shelters")
    assert s["name"] == "避灾安置场所"
    assert s["total"] == 2
    assert s["sums"]["capacity"] == 500
    assert s["sum_labels"]["capacity"] == "容纳人数"
    assert s["by_town"] == [{"code": TOWN_A, "name": "锦城街道", "count": 2, "capacity": 500,
                             "floor_area_m2": 1000}]
    assert s["by_type"] == [{"value": "town", "label": "乡镇(街道)避灾安置中心", "count": 2}]


def test_stats_for_a_leader_cover_every_town(client, users, shelters):
    s = stats_for(client, users["leader"], "shelters")
    assert s["total"] == 3
    assert s["sums"]["capacity"] == 1000
    assert [(t["code"], t["name"], t["count"], t["capacity"]) for t in s["by_town"]] == [
        (TOWN_A, "锦城街道", 2, 500), (TOWN_B, "於潜镇", 1, 500)]


def test_stats_name_records_held_by_the_district_itself(client, users, shelters):
    shelter(users["commander"], "BN-D-01", "临安区避灾安置中心", 119.35, 30.24, 800, level="district",
            region=DISTRICT)
    s = stats_for(client, users["leader"], "shelters")
    assert s["by_town"][0] == {"code": DISTRICT, "name": "区本级", "count": 1, "capacity": 800,
                               "floor_area_m2": 1600}
    # Town staff read the district's own shelter too (up the chain), never town B's.
    town = stats_for(client, users["town_a"], "shelters")
    assert town["total"] == 3
    assert [(t["code"], t["count"]) for t in town["by_town"]] == [(DISTRICT, 1), (TOWN_A, 2)]


def test_stats_of_empty_kinds_are_zero(client, users, shelters):
    s = stats_for(client, users["leader"], "hazards")
    assert s["total"] == 0 and s["by_town"] == [] and s["by_type"] == []


# ---- /search -------------------------------------------------------------------------------------------------


def test_search_is_scoped_to_the_callers_town(client, users, shelters):
    res = get(client, users["town_b"], "/search", q="避灾")
    assert res.status_code == 200
    hits = res.json()
    assert [h["id"] for h in hits] == [shelters["b1"].pk]
    hit = hits[0]
    assert hit == {"kind": "shelters", "kind_name": "避灾安置场所", "id": shelters["b1"].pk,
                   "name": "於潜中学避灾安置中心", "code": "BN-B-01", "lon": 119.45, "lat": 30.25,
                   "region_name": "光明村", "bbox": None}


def test_search_for_a_leader_spans_every_town(client, users, shelters):
    hits = get(client, users["leader"], "/search", q="避灾").json()
    assert sorted(h["id"] for h in hits) == sorted(s.pk for s in shelters.values())


def test_search_puts_exact_and_prefix_matches_first(client, users, shelters):
    hits = get(client, users["leader"], "/search", q="BN-B-01").json()
    assert hits[0]["id"] == shelters["b1"].pk
    hits = get(client, users["leader"], "/search", q="锦城").json()
    assert (hits[0]["kind"], hits[0]["name"]) == ("place:town", "锦城街道")  # the place before its records
    assert {h["id"] for h in hits if h["kind"] == "shelters"} == {shelters["a1"].pk, shelters["a2"].pk}


def test_search_without_a_query_is_empty(client, users, shelters):
    assert get(client, users["leader"], "/search").json() == []
    assert get(client, users["leader"], "/search", q="   ").json() == []


def test_search_returns_at_most_twenty(client, users, regions):
    for i in range(25):
        shelter(users["commander"], f"BN-X-{i:02d}", f"测试安置点{i:02d}", 119.31 + i * 0.001, 30.21, 100)
    hits = get(client, users["leader"], "/search", q="测试安置点").json()
    assert len(hits) == 20


# ---- the page ------------------------------------------------------------------------------------------------


def test_map_page_requires_login(client, users):
    res = client.get("/")
    assert res.status_code == 302
    assert "/login/" in res["Location"]


def test_map_page_passes_config_without_inline_script(client, users, settings):
    settings.TILE_URL = ""
    client.force_login(users["town_a"])
    res = client.get("/")
    assert res.status_code == 200
    html = res.content.decode()
    match = re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "map config block missing"
    config = json.loads(match.group(1))
    assert config["center"] == [30.20, 119.40]
    # Boundaries only unless base tiles are configured; a town's user has their town framed and outlined.
    assert config["baseTiles"] == [] and config["defaultBase"] == ""
    assert config["home"] == {"code": TOWN_A, "level": "town", "name": "锦城街道", "bbox": [119.3, 30.2, 119.4, 30.3]}
    assert config["mapApi"] == "/api/v1/map/"
    assert config["boundariesApi"] == "/api/v1/regions/boundaries"
    assert set(config["defaultLayers"]) == {"shelters", "teams", "warehouses", "hazards"}
    # Strict CSP: every script is an external file or a JSON data block; no inline handlers.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", html)
    assert "commandmap/map.js" in html and "vendor/leaflet/leaflet.js" in html
    assert 'class="mapmain"' in html


def test_base_tiles_are_offered_only_when_configured(client, users, settings):
    settings.TILE_URL = "/tiles/{z}/{x}/{y}.png"
    settings.MAP_TIANDITU_KEY = "k-123"
    settings.MAP_DEFAULT_BASE = "tdt_img"
    client.force_login(users["commander"])
    html = client.get("/").content.decode()
    config = json.loads(re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S)
                        .group(1))
    assert [t["key"] for t in config["baseTiles"]] == ["tdt_vec", "tdt_img", "custom"]
    vec = config["baseTiles"][0]
    assert "T=vec_w" in vec["url"] and "tk=k-123" in vec["url"] and "T=cva_w" in vec["labels"]
    assert config["baseTiles"][2]["url"] == "/tiles/{z}/{x}/{y}.png"
    assert config["defaultBase"] == "tdt_img"
    assert config["home"] is None  # the district's users see the whole district
    assert 'name="base-tiles" value=""' in html  # boundaries only stays one click away
    settings.MAP_DEFAULT_BASE = "nonsense"
    html = client.get("/").content.decode()
    assert '"defaultBase": ""' in html
