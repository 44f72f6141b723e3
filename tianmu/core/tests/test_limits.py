"""Hostile requests get a 4xx with a per-field message, never a 500 (issue 8, items 5, 6 and 7).

Every query parameter of every GET operation the OpenAPI document publishes, and every filter of the pages, is
sent values an attacker or a careless script would send (inf, nan, -0, 1e308, 10^20, empty, very long, a NUL
byte, the wrong type, a time in year 1). None may crash; every refusal names its parameter, in Chinese with an
English message_en. Then the limits on request sizes, the query string, long text fields and page sizes, and the
English of Django's own field errors."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from tianmu.conftest import record_data
from tianmu.core.registry.kinds import get_kind

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")
LONG = "x" * (settings.TIANMU_MAX_PARAM_LENGTH + 1)
HOSTILE = {
    "inf": "inf", "-inf": "-inf", "nan": "nan", "-0": "-0", "1e308": "1e308", "10^20": "100000000000000000000",
    "empty": "", "long": LONG, "nul": "a\x00b", "wrong type": "[]", "year 1": "0001-01-01T00:00:00",
}
NUMBERS = {"inf", "-inf", "nan", "1e308", "10^20", "wrong type", "year 1"}  # not a usable coordinate
ALWAYS = {"long", "nul"}  # refused for every parameter
# What each parameter must refuse (beyond ALWAYS); others may answer 200 (a search for "inf" finds nothing).
MUST_REFUSE = {
    "lon": NUMBERS, "lat": NUMBERS, "radius": NUMBERS | {"-0"},
    "bbox": set(HOSTILE) - {"empty"},
    "since": set(HOSTILE) - {"empty"}, "start": set(HOSTILE) - {"empty"}, "end": set(HOSTILE) - {"empty"},
}
API_INTEGERS = {"page", "page_size"}  # the API's pages: strict (the pages' own `page` shows the nearest page)
# A radius query needs all three: the one probed gets the hostile value, the others a valid one.
RADIUS = {"lon": "119.30", "lat": "30.15", "radius": "1000"}


def must_refuse(api: bool, param: str) -> set[str]:
    if api and param in API_INTEGERS:
        return set(HOSTILE) - {"empty"}
    return MUST_REFUSE.get(param, set()) | ALWAYS


def error_fields(response) -> list[str] | None:
    """The fields a refusal names; None when it has no per-field messages. Checks the API's shape and that
    message_en is English."""
    if response["Content-Type"].startswith("application/json"):
        body = response.json()
        if "errors" not in body:
            assert set(body) >= {"code", "message", "message_en"}, body
            return None
        for e in body["errors"]:
            assert set(e) == {"field", "message", "message_en"}, e
            assert e["message"] and e["message_en"] and not CJK.search(e["message_en"]), e
        return [e["field"] for e in body["errors"]]
    html = response.content.decode()
    return re.findall(r'<p class="errorlist">([\w.]+): ', html) + re.findall(r"<li><code>([\w.]+)</code>: ", html)


def probe(client, url: str, params: list[str], *, api: bool, base: dict | None = None) -> list[str]:
    """Send every hostile value in each parameter; the problems found, as readable lines."""
    problems = []
    for param in params:
        refuse = must_refuse(api, param)
        for label, value in HOSTILE.items():
            query = {**(base or {}), **(RADIUS if param in RADIUS else {}), param: value}
            try:
                with transaction.atomic():  # PostgreSQL: a failed statement must not spoil the next probe
                    r = client.get(url, query)
            except Exception as exc:  # noqa: BLE001 - a crash is what we are looking for
                problems.append(f"{url} {param}={label}: {type(exc).__name__}: {exc}"[:300])
                continue
            where = f"{url} {param}={label}: {r.status_code}"
            if r.status_code >= 500:
                problems.append(where)
            elif r.status_code >= 400:
                fields = error_fields(r)
                if fields is not None and fields != [param]:
                    problems.append(f"{where} names {fields}, not [{param!r}]")
                elif fields is None and label in refuse:
                    problems.append(f"{where} without a per-field message")
            elif label in refuse:
                problems.append(f"{where}: accepted")
    return problems


def api_routes() -> list[tuple[str, str]]:
    """Every GET operation with query parameters, from the published document; of the record kinds only one
    placed kind (shelters), the sensors (a path parameter `code`) and one regional kind (notices): the others
    share their code."""
    from tianmu.api import api

    spec = api.get_openapi_schema()
    out = []
    for path, item in spec["paths"].items():
        op = item.get("get")
        if not op or not any(p["in"] == "query" for p in op.get("parameters", [])):
            continue
        tags = op.get("tags", [""])[0]
        if tags.startswith(("registry /", "sensing /", "notices")) and not any(
                f"/{slug}/" in path for slug in ("shelters", "notices")):
            continue
        out.append((op["operationId"], path))
    return out


API_ROUTES = api_routes()


def fill(path: str, records) -> str:
    """A path with its parameters filled from the fixture records."""
    kind = path.split("/")[3]
    values = {"record_id": lambda: records[kind]["a"].pk, "code": lambda: records["sensors"]["a"].code,
              "slug": lambda: "shelters", "alarm_id": lambda: 1}
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]()), path)


def test_the_probes_cover_the_routes_of_the_issue():
    ids = {op for op, _path in API_ROUTES}
    assert {"shelters_list", "shelters_stats", "shelters_geojson", "notices_list", "map_layer_features",
            "sensing_latest", "sensing_sensor_readings", "sensing_alarm_list", "sensing_alarm_stations"} <= ids


@pytest.mark.parametrize("operation,path", API_ROUTES, ids=[op for op, _path in API_ROUTES])
def test_api_parameters_refuse_hostile_values_per_field(operation, path, world, records, client):
    from tianmu.api import api

    spec = api.get_openapi_schema()
    params = [p["name"] for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"]
    if operation == "map_layer_features":  # its filters are read from the query string, like a list's
        params += ["region", "q", "bbox", "lon", "lat", "radius"]
    client.force_login(world["users"]["commander"])
    assert probe(client, fill(path, records), params, api=True) == []


PAGES = [
    ("/r/shelters/", ["page", "region", "q", "bbox", "lon", "lat", "radius", "shelter_type", "standardised"]),
    ("/r/notices/", ["page", "region", "q", "bbox", "radius"]),
    ("/r/shelters/export.xlsx", ["region", "q", "bbox", "lon", "lat", "radius", "shelter_type"]),
    ("/r/shelters/export.geojson", ["bbox", "lon", "lat", "radius"]),
    ("/sensing/", ["alarming"]),
    ("/sensing/alarms/", ["status", "level", "kind", "rule", "town", "station", "sensor", "sort", "view", "page"]),
    ("/sensing/dead-letters/", ["source", "page"]),
    ("/events/", ["after"]),
    ("/", ["lang"]),
]


@pytest.mark.parametrize("url,params", PAGES, ids=[url for url, _params in PAGES])
def test_page_parameters_refuse_hostile_values_per_field(url, params, world, records, client):
    client.force_login(world["users"]["commander"])
    assert probe(client, url, params, api=False) == []


def test_the_issue_cases(world, records, client):
    """The three 500s of the issue, one by one."""
    client.force_login(world["users"]["commander"])
    r = client.get("/api/v1/shelters/", {"page": 10 ** 20})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "page"
    r = client.get("/api/v1/shelters/", {"lon": "inf", "lat": "inf", "radius": 1000})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"lon", "lat"}
    for radius in ("-5", "1e12", "nan"):
        r = client.get("/api/v1/shelters/", {"lon": 119.3, "lat": 30.15, "radius": radius})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["radius"]
    r = client.get("/api/v1/shelters/", {"lon": 119.3, "radius": 1000})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["lat"]  # the missing one


# ---- sizes --------------------------------------------------------------------------------------------------------

BIG = 25 * 1024 * 1024


def assert_api_413(r):
    assert r.status_code == 413, r.content[:300]
    body = r.json()
    assert body["code"] == "payload_too_large" and body["message"] and not CJK.search(body["message_en"])


def test_a_25_mb_body_is_413_for_the_api_and_pages(world, client):
    client.force_login(world["users"]["commander"])
    body = json.dumps({"name": "x", "notes": "x" * BIG})
    assert_api_413(client.post("/api/v1/shelters/", body, content_type="application/json"))
    assert_api_413(client.post("/api/v1/sensing/readings", body, content_type="application/json"))
    upload = {"file": SimpleUploadedFile("big.xlsx", b"x" * BIG), "dry_run": "true"}
    assert_api_413(client.post("/api/v1/shelters/import", upload))
    for url, data in (("/r/shelters/new/", {"name": "x", "notes": "x" * BIG}),
                      ("/r/shelters/import/", {"file": SimpleUploadedFile("big.xlsx", b"x" * BIG)})):
        r = client.post(url, data)
        assert r.status_code == 413 and "errorlist" in r.content.decode()
    assert not get_kind("shelters").model.objects.filter(name="x").exists()


def test_a_body_over_the_form_limit_is_413_although_under_the_upload_limit(world, client):
    client.force_login(world["users"]["commander"])
    size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    assert size < settings.TIANMU_MAX_REQUEST_BYTES
    body = json.dumps({"readings": [], "pad": "x" * size})
    assert_api_413(client.post("/api/v1/sensing/readings", body, content_type="application/json"))
    r = client.post("/r/shelters/new/", {"notes": "x" * size})
    assert r.status_code == 413


def test_a_long_query_string_is_414(world, client):
    client.force_login(world["users"]["commander"])
    query = "&".join(f"q{i}=1" for i in range(settings.TIANMU_MAX_QUERY_STRING // 4))
    r = client.get(f"/api/v1/shelters/?{query}")
    assert r.status_code == 414 and r.json()["code"] == "uri_too_long" and not CJK.search(r.json()["message_en"])
    assert client.get(f"/r/shelters/?{query}").status_code == 414


def test_too_many_fields_is_refused_in_the_api_shape(world, client):
    client.force_login(world["users"]["commander"])
    query = "&".join(["a"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    assert len(query) <= settings.TIANMU_MAX_QUERY_STRING
    r = client.get(f"/api/v1/shelters/?{query}")
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_nul_bytes_in_bodies_and_paths_are_field_errors(world, client):
    """PostgreSQL can store no NUL character: one in a JSON string, a form field or a path is refused on its
    field before any query is made."""
    client.force_login(world["users"]["commander"])
    kind = get_kind("shelters")
    body = dict(record_data(kind, world["village_a"], "nul"), region="330112001001\x00")
    r = client.post("/api/v1/shelters/", body, content_type="application/json")
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["region"]
    assert "NUL" in r.json()["errors"][0]["message_en"]
    r = client.post("/api/v1/sensing/readings", {"readings": [{"sensor": "a\x00", "ts": "x", "value": 1}]},
                    content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "readings.0.sensor"
    r = client.post("/r/shelters/new/", {**body, "region": "x\x00"})
    assert r.status_code == 400 and "<code>region</code>" in r.content.decode()
    r = client.get("/api/v1/sensing/sensors/a%00b/readings")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "path"
    assert not kind.model.objects.filter(code=body["code"]).exists()


def test_api_errors_without_a_route_have_the_api_shape(world, client):
    client.force_login(world["users"]["commander"])
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "not_found" and not CJK.search(r.json()["message_en"])
    r = client.put("/api/v1/shelters/", {}, content_type="application/json")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed" and "GET" in r["Allow"]
    r = client.post("/api/v1/shelters/", "{not json", content_type="application/json")
    assert r.status_code == 400 and r.json()["message"] != r.json()["message_en"]
    assert not CJK.search(r.json()["message_en"]) and CJK.search(r.json()["message"])


# ---- fields -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["shelters", "notices"])
def test_long_text_fields_are_limited_by_the_schema_and_the_form(slug, world, client):
    """A 10 MB note is refused by the API schema; the form (pages, imports, every service call) refuses a note
    over TIANMU_MAX_TEXT_LENGTH; at the limit it is stored."""
    from tianmu.core.errors import ServiceError
    from tianmu.core.registry.services import create_record

    kind = get_kind(slug)
    text = "notes" if slug == "shelters" else "body"
    limit = settings.TIANMU_MAX_TEXT_LENGTH
    client.force_login(world["users"]["town_staff"])
    body = record_data(kind, world["village_a"], "long", **{text: "长" * (limit + 1)})
    r = client.post(f"/api/v1/{slug}/", body, content_type="application/json")
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [text]
    assert str(limit) in r.json()["errors"][0]["message"] and not CJK.search(r.json()["errors"][0]["message_en"])
    spec = client.get("/api/v1/openapi.json").json()["components"]["schemas"][f"{kind.model.__name__}Input"]
    assert spec["properties"][text]["anyOf"][0]["maxLength"] == limit

    with pytest.raises(ServiceError) as refused:
        create_record(world["users"]["town_staff"], kind, body)
    assert list(refused.value.errors) == [text]
    [error] = refused.value.as_list()
    assert str(limit) in error["message"] and "at most" in error["message_en"]

    r = client.post(f"/r/{slug}/new/", body)
    assert r.status_code == 200 and "errorlist" in r.content.decode()
    assert f'maxlength="{limit}"' in client.get(f"/r/{slug}/new/").content.decode()

    ok = create_record(world["users"]["town_staff"], kind, {**body, text: "长" * limit})
    assert len(getattr(ok, text)) == limit


def test_the_admin_form_has_the_same_text_limit(world, client):
    client.force_login(world["users"]["admin"])
    html = client.get("/admin/registry/shelter/add/").content.decode()
    assert f'maxlength="{settings.TIANMU_MAX_TEXT_LENGTH}"' in html


def test_message_en_is_english_for_djangos_own_field_errors(world, client):
    client.force_login(world["users"]["town_staff"])
    kind = get_kind("shelters")
    body = dict(record_data(kind, world["village_a"], "en"), name="", capacity=-1)
    r = client.post("/api/v1/shelters/", body, content_type="application/json")
    assert r.status_code == 422
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert errors["name"]["message_en"] == "This field is required." and CJK.search(errors["name"]["message"])
    assert errors["capacity"]["message_en"] == "Ensure this value is greater than or equal to 0."
    assert all(not CJK.search(e["message_en"]) for e in errors.values()), errors
    # pydantic's checks (the schema) too: a number that is not one, a code over its max_length.
    r = client.post("/api/v1/shelters/", dict(body, capacity="many", code="x" * 41), content_type="application/json")
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert set(errors) == {"capacity", "code"} and all(not CJK.search(e["message_en"]) for e in errors.values())
    assert "40" in errors["code"]["message"] and "40" in errors["code"]["message_en"]
    # The same in English for a person who chose English: message stays Chinese, message_en English.
    r = client.post("/api/v1/shelters/?lang=en", body, content_type="application/json")
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert CJK.search(errors["name"]["message"]) and errors["name"]["message_en"] == "This field is required."


@pytest.mark.parametrize("lon,lat,fields", [
    (119.30, 95.0, ["lat"]),  # not a latitude
    (119.30, 29.0, ["lat"]),  # a latitude south of the district
    (117.0, 30.15, ["lon"]),  # a longitude west of it
    (121.5, 31.2, ["lon", "lat"]),  # Shanghai: both
    (30.15, 119.30, ["lon"]),  # swapped: one problem of the pair, reported once
    ("abc", 30.15, ["lon"]),
    (119.30, "abc", ["lat"]),
])
def test_each_coordinate_error_is_reported_on_its_own_field(lon, lat, fields, world, client):
    client.force_login(world["users"]["commander"])
    body = dict(record_data(get_kind("shelters"), world["village_a"], "coord"), lon=lon, lat=lat)
    r = client.post("/api/v1/shelters/", body, content_type="application/json")
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == fields, r.json()
    assert all(not CJK.search(e["message_en"]) for e in r.json()["errors"])
