"""The API fuzzer: Schemathesis generates requests for every operation of the published OpenAPI document
(/api/v1/openapi.json) and sends them, in-process through Django's WSGI handler, with the credentials of each
role (a session cookie with its CSRF token, or a bearer token). A run fails on

- any 5xx (the server's traceback is in the report);
- any response that does not match the schema the document gives for its status (a documented success that
  does not validate, or a body whose content type is not the documented one);
- any error response that is not the API's error shape, a JSON object with a `code`;
- any response to a town or village user (or a town's API client) that carries data of the other town: every
  name in town B (蔺镇) carries OUTSIDE_MARK, as in the authorisation matrix.

It runs over the shared two-town world (tianmu/conftest.py) with one record of every kind in each town, and an
alarm in each. Generated values are mixed with real ones where a random value could only reach "not found"
(record ids, alarm ids, sensor and station codes, region codes, points inside the district), so the
operations run their real code on both towns' data; a list route's filters, which its view reads from the
query string without declaring them, are added to the generated requests in the same way. The document
itself is not changed: only the fuzzer's copy.

Fixed cost: EXAMPLES valid and NEGATIVE_EXAMPLES invalid requests per operation and role, derandomized (the
same requests every run, no example database), each request rolled back so every example sees the same world.
"""

from __future__ import annotations

import copy
import json
import os
import re
import traceback
from contextlib import contextmanager
from datetime import UTC

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from django.middleware.csrf import _get_new_csrf_string
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.errors import FailureGroup

from tianmu.conftest import OUTSIDE_MARK, record_data

pytestmark = pytest.mark.django_db

SPEC = "/api/v1/openapi.json"
# Deeper or different runs by hand: TIANMU_FUZZ_EXAMPLES=200 TIANMU_FUZZ_SEED=7 pytest tests/fuzz
EXAMPLES = int(os.environ.get("TIANMU_FUZZ_EXAMPLES", "10"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES * 2 // 5)
SEED = int(os.environ.get("TIANMU_FUZZ_SEED", "20260801"))
# role → how it authenticates; the scoped ones must never see town B.
ROLES = {
    "commander": "session",
    "leader": "token",
    "town_staff": "session",
    "village_responder": "token",
    "town_api_client": "token",
}
SCOPED = {"town_staff", "village_responder", "town_api_client"}
OUTSIDE_ESCAPED = f"\\u{ord(OUTSIDE_MARK):04x}"
# Filters a record kind's list, stats and GeoJSON routes read from the query string (core/registry/queries.py
# RecordFilter) without declaring them in the document: the fuzzer's copy declares them.
UNDECLARED_FILTERS = ("region", "q", "bbox", "lon", "lat", "radius")
# Values worth sending on purpose besides the generated ones: the edges of numbers given as text.
NUMBERS = ["119.4", "30.15", "0", "-1", "1e309", "inf", "-inf", "nan", "1e-320", ""]
BIG = [1, 2, 0, -1, 2**31, 2**63, 10**20]


# ---- the world the fuzzer runs over -------------------------------------------------------------------------

@pytest.fixture
def fuzz_world(world, records, people):
    """Credentials per role and the real values the generators mix in."""
    from tianmu.core.choices import Role
    from tianmu.core.models import User
    from tianmu.core.registry.kinds import kinds
    from tianmu.sensing.choices import Level
    from tianmu.sensing.models import Alarm

    users = dict(world["users"])
    users["town_api_client"] = User.objects.create(username="dept_a", role=Role.API_CLIENT, region=world["town_a"])
    alarms = []
    for side in ("a", "b"):
        sensor = records["sensors"][side]
        alarms.append(Alarm.objects.create(rule="rainstorm", metric="rain_3h", sensor=sensor, region=sensor.region,
                                           level=Level.RED, peak_level=Level.RED, value=120, threshold=100))
    from tianmu.warnings.tests.helpers import draft_data, make_warning

    # A draft and an issued warning in each town, so the warning routes run past "not found".
    warnings = [make_warning(users["admin"], world[town], state, headline=f"{mark}fuzz{state}").pk
                for town, mark in (("town_a", ""), ("town_b", "蔺")) for state in ("draft", "issued")]
    from tianmu.comms.services import dispatch

    # An order to each town's persons (with 叫应), so the dispatch and delivery routes run past "not found".
    dispatches = [dispatch(users["commander"], source="comms.order", subject_id="", title=f"{town}fuzz",
                           text="fuzz", level="orange", regions=[world[town].code]) for town in ("town_a", "town_b")]
    deliveries = [pk for d in dispatches for pk in d.deliveries.values_list("pk", flat=True)]
    regions = [world[name].code for name in ("district", "town_a", "town_b", "village_a", "village_b")]
    sensors = [records["sensors"][side].code for side in "ab"]
    stations = [records["stations"][side].code for side in "ab"]
    return {
        "users": users,
        "ids": {kind.slug: [records[kind.slug][side].pk for side in "ab"] for kind in kinds()},
        # Valid input for a new record of each kind in village A1 or B1, to start a create or an update from.
        "records": {**{kind.slug: [record_data(kind, world[v], "fuzz") for v in ("village_a", "village_b")]
                       for kind in kinds()},
                    # A valid warning draft in each town, to start a create or an edit from.
                    "warnings": [{**draft_data(world[v]), "expires": draft_data(world[v])["expires"].isoformat()}
                                 for v in ("village_a", "village_b")]},
        "path": {"alarm_id": [a.pk for a in alarms], "warning_id": warnings,
                 "dispatch_id": [d.pk for d in dispatches], "delivery_id": deliveries, "code": sensors, "key": sensors + stations,
                 "slug": [kind.slug for kind in kinds()]},
        "query": {"region": regions, "parent": regions, "sensor": sensors, "station": stations, "q": ["测试", "蔺"],
                  "page": BIG, "page_size": BIG, "lon": NUMBERS, "lat": NUMBERS, "radius": NUMBERS + ["500"],
                  "bbox": ["119.2,30.05,119.6,30.25", "inf,inf,inf,inf", "nan,0,1,2", "1,2,3", "119.6,30.25,119.2,30.05"]},
        "body": {"region": regions, "station": stations, "sensor": sensors, "regions": [[r] for r in regions],
                 "areas": [[r] for r in regions], "level": ["blue", "yellow", "orange", "red"]},
    }


def credentials(client, user, how: str) -> dict:
    """Headers and cookies that sign a request in as `user`, by session (with CSRF) or bearer token."""
    from tianmu.core.models import ApiToken

    if how == "token":
        key = ApiToken.new_key()
        ApiToken.objects.create(user=user, name="fuzz", prefix=key[:8], key_hash=ApiToken.hash_key(key))
        return {"headers": {"Authorization": f"Bearer {key}"}, "cookies": {}}
    client.force_login(user)
    csrf = _get_new_csrf_string()
    return {"headers": {"X-CSRFToken": csrf},
            "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}}


# ---- the fuzzer's copy of the document, and real values -------------------------------------------------------

def fuzz_document(spec: dict, kinds: set[str]) -> dict:
    """The document with the filters the record routes read but do not declare."""
    spec = copy.deepcopy(spec)
    for path, item in spec["paths"].items():
        if re.fullmatch(r"/api/v1/([\w-]+)/(stats|geojson)?", path) and path.split("/")[3] in kinds:
            params = item["get"].setdefault("parameters", [])
            params += [{"in": "query", "name": name, "required": False, "schema": {"type": "string"}}
                       for name in UNDECLARED_FILTERS]
    return spec


def cases(op, mode: GenerationMode, pools: dict):
    """Schemathesis' cases for `op`; half of them with real values put in where the document only says
    "integer" or "string": a record's id, a sensor's code, a region, a number's edge, a valid record to
    start from (a pool value drawn into an `anyOf` beside the documented type would be absorbed by it)."""
    parts = op.path.split("/")
    slug = parts[3] if len(parts) > 3 else ""
    query_names = sorted({p.name for p in op.query} & set(pools["query"]))
    record_body = slug in pools["records"] and op.method.upper() in ("POST", "PATCH") and (
        op.path.endswith("/") or op.path.endswith("{record_id}"))

    @st.composite
    def strategy(draw):
        case = draw(op.as_strategy(generation_mode=mode))
        if not draw(st.booleans()):
            return case
        for name in list(case.path_parameters or {}):
            pool = pools["ids"].get(slug) if name == "record_id" else pools["path"].get(name)
            if pool:
                case.path_parameters[name] = draw(st.sampled_from(pool))
        if query_names:
            query = dict(case.query or {})
            for name in query_names:
                if draw(st.booleans()):
                    query[name] = draw(st.sampled_from(pools["query"][name]))
            case.query = query
        if isinstance(case.body, dict):
            body = dict(case.body)
            if record_body:
                body = dict(draw(st.sampled_from(pools["records"][slug])))
                body.update({k: v for k, v in case.body.items() if draw(st.booleans())})
            for name, pool in pools["body"].items():
                if name in body and draw(st.booleans()):
                    body[name] = draw(st.sampled_from(pool))
            if isinstance(body.get("readings"), list):
                body["readings"] = [*body["readings"], {
                    "sensor": draw(st.sampled_from(pools["body"]["sensor"])),
                    "ts": draw(st.datetimes(timezones=st.just(UTC))).isoformat(),
                    "value": draw(st.one_of(st.floats(), st.integers()))}]
            case.body = body
        return case

    return strategy()


# ---- checks of our own --------------------------------------------------------------------------------------

def error_shape(response, case) -> str | None:
    if response.status_code < 400:
        return None
    # A path no URL pattern takes (/api/v1/shelters/-1) gets the API's shape too (core/middleware.py).
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"{response.status_code} is not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return f"{response.status_code} is not the API's error shape: {body!r:.300}"
    return None


def outside_data(response, case) -> str | None:
    text = response.content.decode("utf-8", "replace")
    if OUTSIDE_MARK not in text and OUTSIDE_ESCAPED not in text.lower():
        return None
    sent = json.dumps([case.path_parameters, case.query, case.body if isinstance(case.body, (dict, list, str))
                       else None], ensure_ascii=False, default=str)
    if OUTSIDE_MARK in sent:  # the request itself carried the mark (echoed in a message): not a leak
        return None
    return f"town B's data ({OUTSIDE_MARK}) in the response: {text[:300]}"


class Finding(AssertionError):
    pass


# ---- the run ------------------------------------------------------------------------------------------------

@contextmanager
def in_process():
    """Django's test client keeps the test's transaction open across requests by not closing connections at
    request start and end (and connects that again after each of its own requests); the fuzzer calls the WSGI
    handler directly, so it does the same around all its requests. Server exceptions are kept for the report."""
    errors: list[str] = []

    def keep(sender, request=None, **kwargs):
        errors.append(traceback.format_exc(limit=-8))

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(keep)
    try:
        yield errors
    finally:
        signals.got_request_exception.disconnect(keep)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


class Fuzzer:
    """Sends one role's generated requests and collects what failed, one finding per operation and mode."""

    CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

    def __init__(self, role: str, auth: dict, pools: dict, server_errors: list[str]):
        self.role, self.auth, self.pools, self.server_errors = role, auth, pools, server_errors
        self.findings: list[str] = []
        self.statuses: dict[str, list[int]] = {}

    def send(self, case) -> None:
        del self.server_errors[:]
        savepoint = transaction.savepoint()
        try:
            response = case.call(headers=self.auth["headers"], cookies=self.auth["cookies"])
        finally:
            transaction.savepoint_rollback(savepoint)  # every example sees the same world
        self.statuses.setdefault(case.operation.label, []).append(response.status_code)
        problems = []
        try:
            case.validate_response(response, checks=self.CHECKS)
        except FailureGroup as exc:
            problems.append(str(exc).strip())
        problems.append(error_shape(response, case))
        if self.role in SCOPED:
            problems.append(outside_data(response, case))
        problems = [p for p in problems if p]
        if problems:
            detail = "\n".join(problems)
            if self.server_errors:
                detail += "\nserver traceback:\n" + self.server_errors[-1]
            raise Finding(f"{case.method} {case.formatted_path} → {response.status_code}\n{detail}\n"
                          f"{case.as_curl_command(headers=self.auth['headers'])}")

    def fuzz(self, op, mode: GenerationMode, examples: int) -> None:
        @seed(SEED)
        @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate, Phase.shrink], report_multiple_bugs=False)
        @given(case=cases(op, mode, self.pools))
        def run(case):
            self.send(case)

        try:
            run()
        except Finding as exc:
            self.findings.append(f"{self.role} · {op.label} [{mode.value}]: {exc}")
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): only valid requests for this one.
            if mode is not GenerationMode.NEGATIVE:
                self.findings.append(f"{self.role} · {op.label}: no valid request can be generated")
        except Exception as exc:  # noqa: BLE001 - e.g. a failure that did not repeat: reported with the rest
            self.findings.append(f"{self.role} · {op.label} [{mode.value}]: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("role", list(ROLES))
def test_fuzz_every_operation(role, fuzz_world, client):
    spec = client.get(SPEC).json()
    schema = schemathesis.openapi.from_dict(fuzz_document(spec, set(fuzz_world["ids"])))
    schema.app = WSGIHandler()
    ops = [result.ok() for result in schema.get_all_operations()]
    auth = credentials(client, fuzz_world["users"][role], ROLES[role])
    with in_process() as server_errors:
        fuzzer = Fuzzer(role, auth, fuzz_world, server_errors)
        for op in ops:
            fuzzer.fuzz(op, GenerationMode.POSITIVE, EXAMPLES)
            fuzzer.fuzz(op, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)

    assert not fuzzer.findings, f"{len(fuzzer.findings)} failed:\n\n" + "\n\n".join(fuzzer.findings)
    # The run reached the code behind the checks: every operation, the credentials always accepted, and for
    # the commander (who may do everything) most operations answered with success at least once.
    assert len(fuzzer.statuses) == len(ops) == sum(len(item) for item in spec["paths"].values()) > 100
    statuses = [code for codes in fuzzer.statuses.values() for code in codes]
    assert 401 not in statuses
    if role == "commander":
        succeeded = [label for label, codes in fuzzer.statuses.items() if any(c < 300 for c in codes)]
        assert len(succeeded) >= 0.9 * len(ops), "\n".join(sorted(set(fuzzer.statuses) - set(succeeded)))
