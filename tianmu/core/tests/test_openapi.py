"""The API contract: every operation has a unique, readable operationId and a tag; the OpenAPI document passes
an independent validator (openapi-spec-validator); and a Python client generated from the live document
(openapi-python-client, once per test session, into a temporary directory) works against the live API."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from openapi_spec_validator import validate

from tianmu.core.registry.kinds import kinds

SPEC = "/api/v1/openapi.json"
RECORD_VERBS = ("list", "create", "get", "update", "delete", "stats", "geojson", "history", "import")
CLIENT_PACKAGE = "tianmu_client"


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_operation_ids_are_unique_readable_and_tagged(client):
    spec = client.get(SPEC).json()
    ops = list(operations(spec))
    ids = [op.get("operationId") for _method, _path, op in ops]
    assert all(ids), "an operation without operationId"
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    for kind in kinds():
        verbs = RECORD_VERBS if kind.placed() else set(RECORD_VERBS) - {"geojson"}  # GeoJSON needs a point
        assert {f"{kind.slug}_{verb}" for verb in verbs} <= set(ids), kind.slug
    by_route = {(method, path): op["operationId"] for method, path, op in ops}
    assert by_route["get", "/api/v1/shelters/"] == "shelters_list"
    assert by_route["patch", "/api/v1/stations/{record_id}"] == "stations_update"
    assert by_route["post", "/api/v1/sensing/alarms/{alarm_id}/acknowledge"] == "sensing_alarm_acknowledge"
    assert by_route["get", "/api/v1/map/layers"] == "map_layers"
    assert by_route["get", "/api/v1/me"] == "core_me"
    # Tags: every operation has one; plain ASCII names (generators make modules and classes of them), each
    # listed at the top with a description carrying its Chinese title, groups in order.
    assert all(op.get("tags") for _method, _path, op in ops)
    listed = [t["name"] for t in spec["tags"]]
    assert {t for _method, _path, op in ops for t in op["tags"]} == set(listed)
    assert all(name.isascii() for name in listed)
    groups = [name.split()[0] for name in listed]
    assert groups == sorted(groups, key=["core", "map", "sensing", "registry", "warnings"].index)
    about = {t["name"]: t.get("description", "") for t in spec["tags"]}
    assert about["registry / shelters"].startswith("避灾安置场所") and about["map"].startswith("一张图")
    assert spec["paths"]["/api/v1/shelters/"]["get"]["tags"] == ["registry / shelters"]


def test_document_passes_the_openapi_validator(client):
    spec = client.get(SPEC).json()
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # raises OpenAPIValidationError on the first problem


# ---- a generated client against the live server ---------------------------------------------------------

@pytest.fixture(scope="session")
def generated_client(live_server, tmp_path_factory, django_db_blocker):
    """The `tianmu_client` package openapi-python-client generates from the live server's document: built
    once per session in a temporary directory (never committed), so it always matches the current API."""
    out = tmp_path_factory.mktemp("openapi_client")
    # The document reads no data, but the server thread's request_started checks its database connection.
    with django_db_blocker.unblock(), urllib.request.urlopen(live_server.url + SPEC) as response:
        (out / "openapi.json").write_bytes(response.read())
    # No post hooks: formatting the generated code with ruff is not needed to import and use it.
    (out / "config.json").write_text(json.dumps({"post_hooks": [], "project_name_override": CLIENT_PACKAGE,
                                                 "package_name_override": CLIENT_PACKAGE}))
    run = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(out / "openapi.json"),
         "--output-path", str(out / CLIENT_PACKAGE), "--config", str(out / "config.json"), "--meta", "none",
         "--fail-on-warning"],
        capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == CLIENT_PACKAGE or m.startswith(CLIENT_PACKAGE + ".")]:
            del sys.modules[name]


def api_token(user) -> str:
    from tianmu.core.models import ApiToken

    key = ApiToken.new_key()
    ApiToken.objects.create(user=user, name="generated client", prefix=key[:8],
                            key_hash=ApiToken.hash_key(key))
    return key


@pytest.mark.django_db(transaction=True)  # the live server reads the test's data from its own thread
def test_generated_client_calls_the_live_api(generated_client, live_server, world, records):
    from tianmu_client.api.core import core_me
    from tianmu_client.api.registry_shelters import shelters_create, shelters_get, shelters_list
    from tianmu_client.api.sensing import sensing_latest, sensing_post_readings, sensing_sensor_readings
    from tianmu_client.models import ReadingsIn, ShelterInput

    token = api_token(world["users"]["api_client"])
    with generated_client.AuthenticatedClient(base_url=live_server.url, token=token) as c:
        me = core_me.sync(client=c)
        assert (me.username, me.role, me.region) == ("dept", "api_client", world["district"].code)

        shelters = records["shelters"]
        page = shelters_list.sync(client=c, page_size=10)
        assert (page.count, page.page, page.page_size) == (2, 1, 10)
        assert {r.code for r in page.results} == {shelters["a"].code, shelters["b"].code}
        one = shelters_get.sync(record_id=shelters["a"].pk, client=c)
        assert (one.id, one.name, one.region, one.town) == (shelters["a"].pk, shelters["a"].name,
                                                           world["village_a"].code, world["town_a"].code)
        # Department clients read and write nothing: the error shape comes back as documented.
        denied = shelters_create.sync_detailed(client=c, body=ShelterInput(code="X-1", name="x"))
        assert denied.status_code == 403 and json.loads(denied.content)["code"] == "forbidden"

        # Monitoring: a gateway submission, then the latest values and the sensor's readings.
        sensor = records["sensors"]["a"]
        now = datetime.now(UTC).replace(microsecond=0)
        times = [now - timedelta(minutes=m) for m in (30, 20, 10)]
        body = ReadingsIn(readings=[{"sensor": sensor.code, "ts": t.isoformat(), "value": v}
                                    for t, v in zip(times, (0.5, 1.0, 1.5), strict=True)])
        submitted = sensing_post_readings.sync(client=c, body=body)
        assert (submitted.received, submitted.stored, submitted.errors) == (3, 3, [])
        latest = {row.sensor: row for row in sensing_latest.sync(client=c)}
        assert latest[sensor.code].value == 1.5 and latest[sensor.code].region == world["village_a"].code
        start = (now - timedelta(hours=1)).isoformat()
        series = sensing_sensor_readings.sync(code=sensor.code, client=c, start=start)
        assert (series.sensor, series.resolution) == (sensor.code, "raw")
        assert [p[1] for p in series.points] == [0.5, 1.0, 1.5]
