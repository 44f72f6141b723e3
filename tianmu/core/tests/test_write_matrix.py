"""The authorisation matrix for writes: every route that changes something — API operations (POST, PUT, PATCH,
DELETE, read from the OpenAPI document) and pages that accept POST — probed with every role against objects in
town B (蔺镇).

Each probe is a fresh case naming the permission-table action it exercises (record kinds: "write"; apps'
routes: the WriteCase factories their AppConfig.matrix declares). The table decides the expectation:
  - a role the table allows in town B must succeed: the write takes effect (a new domain event, or the case's
    own fingerprint changes), which proves the probe reached the service and was not refused for a bad body;
  - any other role changes nothing, and gets a 4xx (or a page redirect/message), never a 500.
A write route with no case fails the test, as does a page that accepts POST without being a declared write.
"""

from __future__ import annotations

import io
import json
import re
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook, load_workbook

from tianmu.conftest import record_data
from tianmu.core.models import Event
from tianmu.core.plugins import WriteCase
from tianmu.core.registry.io import template_xlsx
from tianmu.core.registry.kinds import kinds
from tianmu.core.registry.services import create_record
from tianmu.core.scope import can, permission_table
from tianmu.core.tests.test_scope_matrix import outside_objects, walk

ROLES = ["commander", "admin", "leader", "town_staff", "village_responder", "api_client"]
APPROVER_PASSWORD = "second-pair-of-eyes"
WRITE_METHODS = ("post", "put", "patch", "delete")
# Page routes outside the platform's own writes: authentication and the language switch; and the one-tap
# confirmation link from an SMS, authorised by its signed token rather than a role (comms/tests/test_confirm.py).
PUBLIC_POSTS = {"login/", "logout/", "i18n/setlang/", "favicon.ico", "api/docs", "comms/c/<str:token>/"}
# Declared write routes probed for refusal only, with the reason.
REFUSAL_ONLY = {
    "POST r/<slug:slug>/import/": "two steps (upload → dry run, then confirm a token); the API import proves the "
                                  "write path and the battery in test_records.py the confirm step",
}


def api_operations() -> list[tuple[str, str]]:
    """(METHOD, path template) of every write operation in the OpenAPI document."""
    from tianmu.api import api

    quiet, sys.stdout = sys.stdout, io.StringIO()  # Ninja prints warnings about operation ids
    try:
        spec = api.get_openapi_schema()
    finally:
        sys.stdout = quiet
    return [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops if m in WRITE_METHODS]


def page_routes() -> list[str]:
    out = []
    for route, _pattern in walk():
        route = route.lstrip("^").rstrip("$").replace("\\Z", "")
        if route.startswith(("admin/", "api/", "static/")) or "(?P<" in route or route in PUBLIC_POSTS:
            continue
        out.append(route)
    return out


def _xlsx_row(kind, region, suffix) -> io.BytesIO:
    titles = list(next(load_workbook(io.BytesIO(template_xlsx(kind))).active.iter_rows(values_only=True)))
    data = record_data(kind, region, suffix)
    wb = Workbook()
    wb.active.append(titles)
    wb.active.append([data.get(n) for n in kind.editable_fields()])
    buf = io.BytesIO()
    wb.save(buf)
    return buf


class Cases:
    """Fresh write cases for every route: record kinds generically, apps from their declarations."""

    def __init__(self, world, records, objs):
        self.world, self.records, self.objs = world, records, objs
        self.n = 0
        self.role = "commander"  # the probing role (a second approver must be someone else)
        self.target = world["village_b"]  # where the records probed lie (up the chain: the district, town A)

    def _approver(self) -> dict:
        """A second approver allowed in town B who is not the probing user, with a password to confirm."""
        user = self.world["users"]["admin" if self.role != "admin" else "commander"]
        user.set_password(APPROVER_PASSWORD)
        user.save(update_fields=["password"])
        return {"approver": user.username, "approver_password": APPROVER_PASSWORD}

    def lifecycle_case(self, kind, t) -> WriteCase:
        """A fresh record of the kind in town B, in the transition's first source state."""
        lifecycle = kind.lifecycle
        obj = self._fresh(kind)
        kind.model.objects.filter(pk=obj.pk).update(**{lifecycle.field: t.sources[0]})
        body = {"note": "矩阵测试"} if t.note != "none" else {}
        if t.second_approver:
            body.update(self._approver())
        return WriteCase(lifecycle.action(t.name), params={"record_id": str(obj.pk)}, body=body)

    def _fresh(self, kind):
        self.n += 1
        return create_record(self.world["users"]["admin"], kind, record_data(kind, self.target, f"m{self.n}"))

    def kind_case(self, method: str, template: str, only=None) -> WriteCase | None:
        for kind in only or kinds():
            api, page = f"/api/v1/{kind.slug}/", "r/<slug:slug>/"
            village_b = self.target
            if template == api and method == "POST":
                self.n += 1
                return WriteCase("write", body=record_data(kind, village_b, f"n{self.n}"))
            if template == api + "{record_id}":
                obj = self._fresh(kind)
                return WriteCase("write", params={"record_id": str(obj.pk)},
                                 body={"name": "被篡改"} if method == "PATCH" else None)
            if kind.lifecycle is not None and template.startswith(api + "{record_id}/"):
                name = template.rsplit("/", 1)[-1]
                if name in kind.lifecycle.transitions and method == "POST":
                    return self.lifecycle_case(kind, kind.lifecycle.transitions[name])
            if template == api + "import":
                self.n += 1
                return WriteCase("write", multipart=True, body={
                    "file": SimpleUploadedFile("i.xlsx", _xlsx_row(kind, village_b, f"i{self.n}").getvalue()),
                    "dry_run": "false"})
            if template.startswith(page):
                rest = template[len(page):]
                if rest == "new/":
                    self.n += 1
                    return WriteCase("write", params={"slug": kind.slug},
                                     body=record_data(kind, village_b, f"p{self.n}"))
                if rest in ("<int:pk>/edit/", "<int:pk>/delete/"):
                    obj = self._fresh(kind)
                    body = record_data(kind, village_b, f"e{self.n}", name="被篡改") if "edit" in rest else {}
                    if "edit" in rest:
                        body["code"] = obj.code
                    return WriteCase("write", params={"slug": kind.slug, "pk": str(obj.pk)}, body=body)
                if rest == "import/":
                    return WriteCase("write", params={"slug": kind.slug}, multipart=True, body={
                        "file": SimpleUploadedFile("i.xlsx", _xlsx_row(kind, village_b, "pi").getvalue())})
        return None

    def cases(self, method: str, template: str) -> list[WriteCase]:
        """The route's cases (an app's factory may return several, e.g. one per action a route serves)."""
        factory = self.objs.writes.get(f"{method} {template}")
        if factory is not None:
            made = factory()
            return made if isinstance(made, list) else [made]
        case = self.kind_case(method, template)
        return [case] if case is not None else []


def fill(template: str, params: dict[str, str]) -> str:
    """The route with its parameters filled in (KeyError for a parameter without a value)."""
    return re.sub(r"<(?:\w+:)?(\w+)>|\{(?:\w+:)?(\w+)\}", lambda m: params[m.group(1) or m.group(2)], template)


def probe(client, method: str, path: str, case: WriteCase):
    url = path if path.startswith("/") else "/" + path
    if case.multipart:
        return client.post(url, case.body)
    if url.startswith("/api/"):
        body = json.dumps(case.body) if case.body is not None else ""
        return client.generic(method, url, body, content_type="application/json")
    return client.post(url, case.body or {})


def fingerprint(case: WriteCase):
    return case.fingerprint() if case.fingerprint else Event.objects.count()


def judge(client, user, town_b, method: str, path: str, case: WriteCase, *, prove: bool = True):
    """Probe one write; the problem found (None if it follows the table). With `prove`, a role the table
    allows must change something; a refused role never may, and nobody gets a 5xx."""
    before = fingerprint(case)
    r = probe(client, method, path, case)
    after = fingerprint(case)
    allowed = can(user, case.action, town_b)
    if r.status_code >= 500:
        return (method, path, r.status_code)
    if prove and allowed and after == before:
        return ("allowed but nothing changed", method, path, r.status_code, r.content[:200])
    if not allowed and after != before:
        return ("refused role changed something", method, path, r.status_code)
    return None


@pytest.fixture
def cases(world, records):
    return Cases(world, records, outside_objects(records, world))


def test_every_write_route_has_a_case(cases):
    missing = []
    for method, template in api_operations():
        if not cases.cases(method, template):
            missing.append(f"{method} {template}")
    assert missing == [], "declare a WriteCase for these routes (TianmuApp.matrix)"


@pytest.mark.parametrize("role", ROLES)
def test_api_writes_follow_the_permission_table(role, world, cases, client):
    cases.role = role
    user = world["users"][role]
    client.force_login(user)
    town_b = world["village_b"]
    problems = []
    for method, template, case in ((m, t, c) for m, t in api_operations() for c in cases.cases(m, t)):
        problems.append(judge(client, user, town_b, method, fill(template, case.params), case))
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("role", ROLES)
def test_page_posts_follow_the_permission_table(role, world, cases, client):
    cases.role = role
    user = world["users"][role]
    client.force_login(user)
    town_b = world["village_b"]
    problems = []
    for template, case in ((t, c) for t in page_routes() for c in cases.cases("POST", t) or [None]):
        if case is None:
            # Not a declared write: the page must refuse POST outright, for every role.
            params = {"slug": kinds()[0].slug, "pk": "1", **cases.objs.params}
            try:
                path = fill(template, params)
            except KeyError as missing:
                problems.append(("cannot fill", template, str(missing)))
                continue
            before = Event.objects.count()
            r = client.post("/" + path, {})
            if r.status_code != 405 or Event.objects.count() != before:
                problems.append(("accepts POST but is no declared write", template, r.status_code))
            continue
        problems.append(judge(client, user, town_b, "POST", fill(template, case.params), case,
                              prove=f"POST {template}" not in REFUSAL_ONLY))
    problems = [p for p in problems if p]
    assert problems == [], "\n".join(map(str, problems))


def test_every_action_in_the_table_is_probed(cases):
    """Each action of the permission table is exercised by at least one write case, or is a read."""
    exercised = {"read"}
    for method, template in api_operations():
        exercised.update(c.action for c in cases.cases(method, template))
    for template in page_routes():
        exercised.update(c.action for c in cases.cases("POST", template))
    # Reads: "operations" (the dead-letter and operations pages) and "<app>.<page>.view" actions gate pages and
    # menu entries; the read matrix and the plug-in tests check those.
    reads = {action for action in permission_table() if action == "operations" or action.endswith(".view")}
    # "users.manage" gates the user and API-token admins; test_delegated_admin.py probes it role by role.
    admin_only = {"users.manage"}
    assert set(permission_table()) - exercised - reads - admin_only == set()


# Up the chain: a village responder reads the town's and the district's own resources, town staff the district's
# (test_scope_matrix.py, UP_THE_CHAIN_READS), but writes stay within their subtree — every write route of a record
# kind, against records at those levels, follows can(user, "write", region), which refuses them.
UP_THE_CHAIN_WRITES = [("town_staff", "district"), ("village_responder", "district"), ("village_responder", "town_a"),
                       ("commander", "district")]


@pytest.mark.parametrize(("role", "level"), UP_THE_CHAIN_WRITES)
def test_writes_up_the_chain_follow_the_table(role, level, world, cases, client):
    from tianmu.core.registry.queries import visible

    cases.role, cases.target = role, world[level]
    user = world["users"][role]
    client.force_login(user)
    probes = [(m, t) for m, t in api_operations()] + [("POST", t) for t in page_routes()]
    problems, probed = [], 0
    for kind in (k for k in kinds() if k.serves_below):
        for method, template in probes:
            case = cases.kind_case(method, template, only=[kind])
            if case is None:
                continue
            pk = case.params.get("record_id") or case.params.get("pk")
            if pk is not None:  # a record the role reads (up the chain) but may not change
                assert visible(user, kind).filter(pk=pk).exists(), (role, level, template)
            probed += 1
            problems.append(judge(client, user, world[level], method, fill(template, case.params), case,
                                  prove=f"POST {template}" not in REFUSAL_ONLY))
    problems = [p for p in problems if p]
    assert probed >= 5 * 8 and problems == [], "\n".join(map(str, problems))
    assert can(user, "write", world[level]) == (role == "commander")
