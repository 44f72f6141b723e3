"""The API contract: every operation has a unique, readable operationId and a tag; the OpenAPI document passes
an independent validator (openapi-spec-validator)."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tianmu.core.registry.kinds import kinds

SPEC = "/api/v1/openapi.json"
RECORD_VERBS = ("list", "create", "get", "update", "delete", "stats", "geojson", "history", "import")


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
        assert {f"{kind.slug}_{verb}" for verb in RECORD_VERBS} <= set(ids), kind.slug
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
    assert groups == sorted(groups, key=["core", "map", "sensing", "registry"].index)
    about = {t["name"]: t.get("description", "") for t in spec["tags"]}
    assert about["registry / shelters"].startswith("避灾安置场所") and about["map"].startswith("一张图")
    assert spec["paths"]["/api/v1/shelters/"]["get"]["tags"] == ["registry / shelters"]


def test_document_passes_the_openapi_validator(client):
    spec = client.get(SPEC).json()
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # raises OpenAPIValidationError on the first problem
