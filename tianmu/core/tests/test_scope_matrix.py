"""The authorisation matrix: every URL pattern and API route, with every role.

The URL list is read from Django's resolver, so a new page or API route is covered without anyone
remembering to add it. Parameters are filled with a record (or region) that lies in town B (蔺镇); users
whose home is town A must never see anything from town B, and nobody may change town B's records unless
their role and region allow it.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core.plugins import MatrixObjects, matrix_providers
from tianmu.core.registry.kinds import kinds

# URL prefixes that are not the platform's own (Django admin's static jsi18n, language switch, login).
PUBLIC = {"login/", "logout/", "i18n/setlang/", "api/v1/health", "api/v1/docs", "api/v1/openapi.json", "api/docs",
          "favicon.ico",
          # Published warnings: the public CAP files and feeds (warnings/views.py; imported alerts stay private).
          "warnings/feed.atom", "warnings/feed.json", "warnings/cap/"}
SCOPED_ROLES = ["town_staff", "village_responder"]
ALL_ROLES = ["commander", "admin", "leader", "town_staff", "village_responder", "api_client"]
STREAMING = {"events/stream"}


def walk(patterns=None, prefix=""):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def outside_objects(records, world):
    """Every app's matrix objects (TianmuApp.matrix), merged: values for route parameters other than a record
    kind's slug and id, each naming something in town B, and the checks that refused writes left them alone.
    A new route with a parameter no app provides makes test_every_route_is_walked fail until one does."""
    merged = MatrixObjects()
    for provider in matrix_providers():
        objs = provider(records, world)
        merged.params.update(objs.params)
        for fragment, values in objs.route_params.items():
            merged.route_params.setdefault(fragment, {}).update(values)
        merged.unchanged.extend(objs.unchanged)
        merged.writes.update(objs.writes)
    return merged


def concrete_urls(records, objs: MatrixObjects, skipped: list | None = None):
    """Every route with its parameters filled in, once per record kind where it takes a slug."""
    extra = objs.params
    out = []
    for route, _pattern in walk():
        route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\/", "/")
        if route.startswith("admin/") and "<" in route:
            # Admin: the registry changelists/change pages carry the record kinds; others by id.
            for kind in kinds():
                meta = kind.model._meta
                b = records[kind.slug]["b"]
                filled = route.replace("<path:object_id>", str(b.pk))
                if f"{meta.app_label}/{meta.model_name}/" in filled and "<" not in filled:
                    out.append((filled, kind, b))
            continue
        if "(?P<" in route or route.startswith("static/"):
            continue
        params = re.findall(r"<(?:(\w+):)?(\w+)>", route)
        if not params:
            out.append((route, None, None))
            continue
        # A kind's API routes name its own records (a route under another kind's prefix is not this kind's).
        owner = next((k for k in kinds() if route.startswith(f"api/v1/{k.slug}/")), None)
        for kind in [owner] if owner is not None else kinds():
            b = records[kind.slug]["b"]
            filled = route
            ok = True
            for conv, name in params:
                if name == "slug":
                    value = kind.slug
                elif name in extra and "slug" not in dict((n, c) for c, n in params):
                    value = extra[name]
                elif any(fragment in route and name in values for fragment, values in objs.route_params.items()):
                    value = next(values[name] for fragment, values in objs.route_params.items()
                                 if fragment in route and name in values)
                elif name in ("pk", "record_id", "object_id", "id"):
                    value = str(b.pk)
                else:
                    ok = False
                    break
                filled = re.sub(rf"<(?:{conv}:)?{name}>", value, filled, count=1)
            if ok and "<" not in filled:
                out.append((filled, kind, b))
            elif skipped is not None:
                skipped.append(route)
    # Ninja records its API routes under one resolver each; make sure they are all present.
    assert any(u.startswith("api/v1/shelters/") for u, _k, _b in out)
    seen, unique = set(), []
    for item in out:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


@pytest.fixture
def matrix_objects(world, records):
    return outside_objects(records, world)


@pytest.fixture
def urls(records, matrix_objects):
    return concrete_urls(records, matrix_objects)


def test_every_route_is_walked(records, matrix_objects):
    skipped: list = []
    concrete_urls(records, matrix_objects, skipped)
    assert sorted(set(skipped)) == [], "add a value for these parameters in outside_objects()"


def test_matrix_covers_every_kind_and_route_family(urls):
    paths = [u for u, _k, _b in urls]
    for kind in kinds():
        assert f"r/{kind.slug}/" in paths
        assert any(p.startswith(f"api/v1/{kind.slug}/") for p in paths)
    assert len(paths) > 100


@pytest.mark.parametrize("role", SCOPED_ROLES)
def test_scoped_roles_never_read_outside_their_region(role, world, records, urls, client):
    client.force_login(world["users"][role])
    leaks = []
    for path, _kind, _obj in urls:
        if path in STREAMING or path.endswith("/import/") or path.endswith("import"):
            continue
        r = client.get("/" + path)
        assert r.status_code < 500, (path, r.status_code)
        body = b"".join(r.streaming_content) if r.streaming else r.content
        text = body.decode("utf-8", "replace")
        if r.status_code == 200 and (OUTSIDE_MARK in text or "\\u853a" in text.lower()):
            leaks.append(path)
    assert leaks == []


@pytest.mark.parametrize("role", ALL_ROLES)
def test_writes_to_town_b_refused_unless_role_and_region_allow(role, world, records, urls, matrix_objects, client):
    user = world["users"][role]
    client.force_login(user)
    may_write_b = role in ("commander", "admin")
    for path, kind, obj in urls:
        if kind is None or obj is None or path in STREAMING:
            continue
        before = kind.model.objects.filter(pk=obj.pk).values().first()
        for method in ("post", "patch", "delete"):
            kwargs = {"content_type": "application/json"} if path.startswith("api/") else {}
            data = {"name": "被篡改"} if method != "delete" else None
            if data is not None and not path.startswith("api/"):
                data = record_data(kind, world["village_b"], "b", name="被篡改")
            if method == "patch" and not path.startswith("api/"):
                continue
            r = getattr(client, method)("/" + path, data, **kwargs)
            assert r.status_code < 500, (role, method, path, r.status_code)
            after = kind.model.objects.filter(pk=obj.pk).values().first()
            if not may_write_b:
                assert after == before, (role, method, path, r.status_code)
            elif after != before:
                # A permitted write; put the record back for the next route.
                if after is None:
                    break
                before = after
    if not may_write_b:
        for check in matrix_objects.unchanged:
            check(role)


@pytest.mark.parametrize("role", ["leader", "town_staff", "village_responder", "api_client"])
def test_creating_in_town_b_is_refused(role, world, client):
    client.force_login(world["users"][role])
    for kind in kinds():
        count = kind.model.objects.count()
        data = record_data(kind, world["village_b"], "new")
        r_api = client.post(f"/api/v1/{kind.slug}/", data, content_type="application/json")
        r_page = client.post(f"/r/{kind.slug}/new/", data)
        assert r_api.status_code in (403, 422), (role, kind.slug, r_api.status_code)
        assert r_page.status_code in (403, 200), (role, kind.slug, r_page.status_code)
        assert kind.model.objects.count() == count


def test_anonymous_is_sent_to_login(urls, client):
    for path, _kind, _obj in urls:
        if any(path.startswith(p) for p in PUBLIC) or path.startswith("admin/") or path.startswith("static/"):
            continue
        for method in ("get", "post"):
            r = getattr(client, method)("/" + path)
            if r.status_code in (404, 405):  # no such method or route: nothing to leak
                continue
            assert r.status_code in (302, 401, 403), (method, path, r.status_code)
            if r.status_code == 302:
                assert "/login/" in r["Location"]


def test_api_token_client(world, records, client):
    from tianmu.core.models import ApiToken

    user = world["users"]["api_client"]
    key = ApiToken.new_key()
    ApiToken.objects.create(user=user, name="t", prefix=key[:8], key_hash=ApiToken.hash_key(key))
    r = client.get("/api/v1/shelters/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 200 and r.json()["count"] == 2
    r = client.post("/api/v1/shelters/", record_data(kinds()[0], world["village_a"], "t"),
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 403
    assert client.get("/api/v1/shelters/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


# ---- up the chain ----------------------------------------------------------------------------------------------------
# A record of every kind at every level: the district's and each town's own records, and records in village A1,
# in its sibling village A2 and in village B1. What each role reads, by level, for a kind that serves the regions
# below it (teams, shelters, warehouses, experts, equipment: RecordKind.serves_below) and for any other kind
# (hazards, protected sites, stations): core/scope.py, "up the chain". Nobody ever reads a sibling's records.
LEVELS = ("district", "town_a", "town_b", "village_a", "village_a2", "village_b")
EVERY_LEVEL = set(LEVELS)
UP_THE_CHAIN_READS = {
    #                    serves_below                                    every other kind
    "commander":         (EVERY_LEVEL,                                    EVERY_LEVEL),
    "admin":             (EVERY_LEVEL,                                    EVERY_LEVEL),
    "leader":            (EVERY_LEVEL,                                    EVERY_LEVEL),
    "api_client":        (EVERY_LEVEL,                                    EVERY_LEVEL),
    "town_staff":        ({"district", "town_a", "village_a", "village_a2"}, {"town_a", "village_a", "village_a2"}),
    "village_responder": ({"district", "town_a", "village_a"},            {"village_a"}),
}


@pytest.fixture
def chain(world):
    """{slug: {level: record}} with one record of every kind at every level of LEVELS."""
    from tianmu.conftest import square
    from tianmu.core.geo import locator
    from tianmu.core.models import Region
    from tianmu.core.registry.services import create_record

    village_a2 = Region.objects.create(code="330112001002", name="甲二村", level="village", parent=world["town_a"],
                                       lon=119.22, lat=30.23, min_lon=119.20, min_lat=30.21, max_lon=119.24,
                                       max_lat=30.25, boundary=square(119.22, 30.23, 0.02), population=300,
                                       households=100)
    locator.reset()
    regions = {**{level: world[level] for level in LEVELS if level != "village_a2"}, "village_a2": village_a2}
    admin = world["users"]["admin"]
    return {kind.slug: {level: create_record(admin, kind, record_data(kind, region, f"c{level}"))
                        for level, region in regions.items()} for kind in kinds()}


def _levels_of(chain_records: dict, pks) -> set:
    by_pk = {obj.pk: level for level, obj in chain_records.items()}
    return {by_pk[pk] for pk in pks if pk in by_pk}


@pytest.mark.parametrize("role", list(UP_THE_CHAIN_READS))
def test_resources_are_read_up_the_chain_and_never_from_a_sibling(role, world, chain, client):
    """Lists (API and page), detail pages, the API's record, map layers and nearby all read exactly what the
    table above says."""
    from tianmu.commandmap.api import map_kinds

    user = world["users"][role]
    client.force_login(user)
    on_map = {k.slug for k in map_kinds()}
    for kind in kinds():
        expected = UP_THE_CHAIN_READS[role][0 if kind.serves_below else 1]
        records = chain[kind.slug]
        listed = client.get(f"/api/v1/{kind.slug}/", {"page_size": 500}).json()["results"]
        assert _levels_of(records, [row["id"] for row in listed]) == expected, (role, kind.slug, "api list")
        for level, obj in records.items():
            want = 200 if level in expected else 404
            assert client.get(f"/api/v1/{kind.slug}/{obj.pk}").status_code == want, (role, kind.slug, level)
            detail = client.get(f"/r/{kind.slug}/{obj.pk}/")
            assert detail.status_code == want, (role, kind.slug, level)
            above = level == "district" or (level == "town_a" and role == "village_responder")
            if want == 200 and role in SCOPED_ROLES:  # read-only up the chain, and the page says so
                assert ("只读" in detail.content.decode()) == above, (role, kind.slug, level)
                assert (f"/r/{kind.slug}/{obj.pk}/edit/" in detail.content.decode()) != above
        page = client.get(f"/r/{kind.slug}/").content.decode()
        assert {lv for lv, obj in records.items() if f"/r/{kind.slug}/{obj.pk}/\"" in page} == expected, \
            (role, kind.slug, "page list")
        if kind.slug in on_map:
            features = client.get(f"/api/v1/map/layers/{kind.slug}").json()["features"]
            assert _levels_of(records, [f[0] for f in features]) == expected, (role, kind.slug, "map")
            near = client.get("/api/v1/map/nearby", {"lon": 119.4, "lat": 30.15, "radius": 100000, "limit": 50,
                                                      "kinds": kind.slug}).json()["kinds"][0]["items"]
            assert _levels_of(records, [item["id"] for item in near]) == expected, (role, kind.slug, "nearby")


def test_the_rule_in_the_scope_helper(world):
    """can_read_region with up_the_chain: the regions above home at their own level, never a sibling."""
    from tianmu.core.scope import ancestor_codes, can_read_region

    village = world["users"]["village_responder"]
    town = world["users"]["town_staff"]
    assert ancestor_codes("330112001001") == ["330112", "330112001"]
    assert ancestor_codes("330112") == []
    for actor, above in ((village, ["330112", "330112001"]), (town, ["330112"])):
        for code in above:
            assert can_read_region(actor, code, up_the_chain=True)
            assert not can_read_region(actor, code)
    assert not can_read_region(village, "330112002", up_the_chain=True)
    assert not can_read_region(village, "330112001002", up_the_chain=True)
    assert not can_read_region(town, "330112002", up_the_chain=True)
    assert not can_read_region(town, "330112002001", up_the_chain=True)
