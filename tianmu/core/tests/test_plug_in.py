"""An app plugs in by declaration alone (core/plugins.py), proved with the throwaway notices app
(core/tests/notices/, installed only by tianmu/test_settings.py): a regional record kind, a menu entry, a page
and a demo step, and not one line about it in a central file. Then core/plugins.py itself, and a check that the
central files name no domain app."""

from __future__ import annotations

import ast
import graphlib
import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import override_settings

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core import plugins
from tianmu.core.models import Event
from tianmu.core.plugins import DemoStep, MenuItem
from tianmu.core.registry.kinds import get_kind

ROOT = Path(__file__).resolve().parents[2]  # the tianmu package
NOTICES = "tianmu.core.tests.notices"


@pytest.fixture
def notices():
    return get_kind("notices")


def test_the_app_is_installed_only_by_the_test_settings():
    from django.conf import settings

    assert NOTICES in settings.INSTALLED_APPS
    assert "notices" in [app.label for app in plugins.platform_apps()]
    assert NOTICES not in (ROOT / "settings.py").read_text()


# ---- the notices app: a regional kind, by declaration ---------------------------------------------------------


def test_a_regional_kind_is_not_placed_and_has_no_map_layer(notices, world, records, client):
    from tianmu.commandmap.api import map_kinds, search_records

    assert not notices.placed() and not notices.on_map
    assert {f.name for f in notices.model._meta.fields}.isdisjoint({"lon", "lat", "address"})
    assert notices not in map_kinds()
    client.force_login(world["users"]["commander"])
    layers = client.get("/api/v1/map/layers").json()["layers"]
    assert "notices" not in {layer["slug"] for layer in layers} and layers
    assert client.get("/api/v1/map/layers/notices").status_code == 404
    assert search_records(world["users"]["commander"], records["notices"]["a"].code) == []
    # Statistics by type and by town are not spatial: the map's statistics panel has them.
    stats = {s["kind"]: s for s in client.get("/api/v1/map/stats").json()["kinds"]}
    assert stats["notices"]["total"] == 2


def test_its_api_routes_exist_and_work(notices, world, client):
    client.force_login(world["users"]["town_staff"])
    body = record_data(notices, world["village_a"], "api", category="meeting")
    r = client.post("/api/v1/notices/", body, content_type="application/json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["region"] == world["village_a"].code and created["category"] == "meeting"
    assert "lon" not in created
    rid = created["id"]
    assert client.get("/api/v1/notices/", {"category": "meeting"}).json()["count"] == 1
    assert client.get(f"/api/v1/notices/{rid}").json()["body"] == body["body"]
    assert client.patch(f"/api/v1/notices/{rid}", {"body": "改期"}, content_type="application/json").status_code == 200
    stats = client.get("/api/v1/notices/stats").json()
    assert stats["by_type"] == [{"value": "meeting", "label": "会议通知", "count": 1}]
    assert stats["by_town"][0]["code"] == world["town_a"].code
    assert client.delete(f"/api/v1/notices/{rid}").status_code == 204
    assert client.get("/api/v1/notices/geojson").status_code == 404
    # The generated OpenAPI document lists the kind's operations, without GeoJSON.
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/notices/", "/api/v1/notices/{record_id}", "/api/v1/notices/import"} <= set(paths)
    assert "/api/v1/notices/geojson" not in paths


def test_its_history_is_recorded_and_its_events_emitted(notices, world, client):
    staff = world["users"]["town_staff"]
    client.force_login(staff)
    body = record_data(notices, world["village_a"], "h")
    rid = client.post("/api/v1/notices/", body, content_type="application/json").json()["id"]
    client.patch(f"/api/v1/notices/{rid}", {"category": "work"}, content_type="application/json")
    history = client.get(f"/api/v1/notices/{rid}/history").json()
    assert [h["action"] for h in history] == ["changed", "created"] and history[0]["who"] == str(staff)
    assert history[0]["changes"] == {"category": ["warning", "work"]}
    page = client.get(f"/r/notices/{rid}/")
    assert page.status_code == 200 and "变更记录" in page.text and body["name"] in page.text
    client.delete(f"/api/v1/notices/{rid}")
    events = Event.objects.filter(subject=f"notice:{rid}").order_by("id")
    assert [(e.type, e.actor, e.region.code) for e in events] == [
        (f"notices.notice.{what}", staff, world["village_a"].code) for what in ("created", "updated", "deleted")]


def test_its_pages_exist_and_work(notices, world, records, client):
    client.force_login(world["users"]["town_staff"])
    a = records["notices"]["a"]
    r = client.get("/r/notices/")
    assert r.status_code == 200 and a.name in r.text and OUTSIDE_MARK not in r.text
    assert client.get(f"/r/notices/{a.pk}/").status_code == 200
    assert client.get(f"/r/notices/{records['notices']['b'].pk}/").status_code == 404
    form = client.get("/r/notices/new/")
    assert form.status_code == 200 and 'name="body"' in form.text and 'name="lon"' not in form.text
    r = client.post("/r/notices/new/", record_data(notices, world["village_a"], "page"))
    assert r.status_code == 302
    assert client.get("/r/notices/export.xlsx").status_code == 200
    assert client.get("/r/notices/template.xlsx").status_code == 200
    # Its own page (declared in NoticesConfig.urls), scoped like every read.
    board = client.get("/notices/")
    assert board.status_code == 200 and a.name in board.text and OUTSIDE_MARK not in board.text
    assert client.post("/notices/").status_code == 405


@pytest.mark.parametrize("role,sees", [("commander", True), ("admin", True), ("town_staff", True),
                                       ("leader", False), ("village_responder", False), ("api_client", False)])
def test_its_menu_entry_shows_for_the_roles_declared(role, sees, world, client):
    user = world["users"][role]
    assert any(item.key == "notices" for item in plugins.menu_for(user)) == sees
    client.force_login(user)
    page = client.get("/r/notices/")
    assert page.status_code == 200
    assert ('data-nav="notices"' in page.text) == sees
    # Every kind is listed under the records menu, whoever may see the app's own entry.
    records_menu = next(entry for entry in page.context["menu"] if entry["key"] == "records")
    assert "/r/notices/" in [child["href"] for child in records_menu["children"]]


def test_the_authorisation_matrices_pick_it_up(world, records):
    from tianmu.core.tests.test_scope_matrix import concrete_urls, outside_objects
    from tianmu.core.tests.test_write_matrix import Cases, api_operations, page_routes

    objs = outside_objects(records, world)
    urls = {path: kind for path, kind, _obj in concrete_urls(records, objs)}
    notice_b = records["notices"]["b"]
    for path in ("r/notices/", f"r/notices/{notice_b.pk}/", f"r/notices/{notice_b.pk}/edit/",
                 f"api/v1/notices/{notice_b.pk}", f"api/v1/notices/{notice_b.pk}/history"):
        assert urls[path].slug == "notices", path
    assert "notices/" in urls  # the app's own page, read as every role
    operations = [op for op in api_operations() if op[1].startswith("/api/v1/notices/")]
    assert sorted(operations) == [("DELETE", "/api/v1/notices/{record_id}"), ("PATCH", "/api/v1/notices/{record_id}"),
                                  ("POST", "/api/v1/notices/"), ("POST", "/api/v1/notices/import"),
                                  ("POST", "/api/v1/notices/{record_id}/publish"),
                                  ("POST", "/api/v1/notices/{record_id}/submit")]
    cases = Cases(world, records, objs)
    actions = {template: [c.action for c in cases.cases(method, template)] for method, template in operations}
    assert actions.pop("/api/v1/notices/{record_id}/submit") == ["notices.notice.submit"]
    assert actions.pop("/api/v1/notices/{record_id}/publish") == ["notices.notice.publish"]
    assert all(a == ["write"] for a in actions.values())
    assert "notices/" in page_routes() and cases.cases("POST", "notices/") == []  # a read-only page


def test_its_demo_step_runs_after_the_users_step(world):
    from tianmu.demo.dataset import DemoContext

    names = [s.name for s in plugins.demo_steps()]
    assert names.index("demo.regions") < names.index("demo.users") < names.index("notices.welcome")
    assert "notices.welcome" in [s.name for s in plugins.demo_steps("build")]
    step = next(s for s in plugins.demo_steps() if s.name == "notices.welcome")
    ctx = DemoContext(seed=1, rng=random.Random(1), actor=world["users"]["admin"],
                      regions={r.code: r for r in (world["district"], world["town_a"], world["village_a"])})
    ctx.report(plugins.resolve(step.run)(ctx))
    assert ctx.counts == {"notices": 1}
    notice = get_kind("notices").model.objects.get(code="TZ-0001")
    assert notice.region == world["district"] and notice.history.get().history_user == world["users"]["admin"]


# ---- core/plugins.py --------------------------------------------------------------------------------------------


def fake_apps(monkeypatch, *apps):
    """Replace the installed apps, as core.plugins sees them, by bare declarations."""
    defaults = {"demo_steps": [], "menu": [], "workers": {}, "demo_workers": {}, "settings": {}, "map_layers": [],
                "api": [], "urls": [], "matrix": ""}
    made = [SimpleNamespace(**{**defaults, **app}) for app in apps]
    monkeypatch.setattr(plugins, "platform_apps", lambda: made)
    # The merged defaults are cached from the real apps: merge the fakes' instead, uncached.
    monkeypatch.setattr(plugins, "declared_settings",
                        lambda: {k: v for app in reversed(made) for k, v in app.settings.items()})
    return made


def test_demo_steps_run_in_dependency_order_ties_in_app_order(monkeypatch):
    fake_apps(monkeypatch,
              {"demo_steps": [DemoStep("b.late", "x:y", after=("c.base",)), DemoStep("b.first", "x:y")]},
              {"demo_steps": [DemoStep("c.base", "x:y"), DemoStep("c.replay", "x:y", after=("b.late",),
                                                                    phase="replay")]})
    assert [s.name for s in plugins.demo_steps()] == ["b.first", "c.base", "b.late", "c.replay"]
    assert [s.name for s in plugins.demo_steps("build")] == ["b.first", "c.base", "b.late"]
    assert [s.name for s in plugins.demo_steps("replay")] == ["c.replay"]


def test_demo_steps_refuse_cycles_missing_steps_and_duplicates(monkeypatch):
    fake_apps(monkeypatch, {"demo_steps": [DemoStep("a", "x:y", after=("b",)), DemoStep("b", "x:y", after=("a",))]})
    with pytest.raises(graphlib.CycleError):
        plugins.demo_steps()
    fake_apps(monkeypatch, {"demo_steps": [DemoStep("a", "x:y", after=("nowhere",))]})
    with pytest.raises(ValueError, match="undeclared"):
        plugins.demo_steps()
    fake_apps(monkeypatch, {"demo_steps": [DemoStep("a", "x:y")]}, {"demo_steps": [DemoStep("a", "x:y")]})
    with pytest.raises(ValueError, match="twice"):
        plugins.demo_steps()


def test_menu_for_filters_by_permission_and_staff_and_orders(monkeypatch, world):
    """An entry with an `action` shows to whom the permission table grants it; `staff` to staff; by order."""
    fake_apps(monkeypatch,
              {"menu": [MenuItem("everyone", "e", order=50), MenuItem("staff", "s", staff=True, order=10)]},
              {"menu": [MenuItem("operators", "c", action="operations", order=20)]})
    users = world["users"]

    def labels(u):
        return [item.label for item in plugins.menu_for(u)]

    assert labels(users["commander"]) == ["operators", "everyone"]  # "operations": district-level writers
    assert labels(users["town_staff"]) == ["everyone"]
    assert labels(users["leader"]) == ["everyone"]
    assert labels(users["admin"]) == ["staff", "operators", "everyone"]  # staff and superuser
    assert labels(SimpleNamespace(is_authenticated=False)) == [] and labels(None) == []


def test_workers_add_demo_workers_only_for_the_demo(monkeypatch):
    fake_apps(monkeypatch, {"workers": {"ingest": ["ingest"]}, "demo_workers": {"feed": ["demo_feed", "--fast"]}},
              {"workers": {"mail": ["mail"]}})
    assert plugins.workers() == {"ingest": ["ingest"], "mail": ["mail"]}
    assert plugins.workers(demo=True) == {"ingest": ["ingest"], "feed": ["demo_feed", "--fast"], "mail": ["mail"]}
    fake_apps(monkeypatch, {"workers": {"ingest": ["a"]}}, {"demo_workers": {"ingest": ["b"]}})
    assert plugins.workers() == {"ingest": ["a"]}
    with pytest.raises(ValueError, match="twice"):
        plugins.workers(demo=True)


def test_setting_reads_settings_then_the_app_default(monkeypatch):
    fake_apps(monkeypatch, {"settings": {"TM_TEST_ONE": 1}}, {"settings": {"TM_TEST_ONE": 2, "TM_TEST_TWO": 3}})
    assert plugins.setting("TM_TEST_ONE") == 1  # the first app (INSTALLED_APPS order) declaring it
    assert plugins.setting("TM_TEST_TWO") == 3
    with override_settings(TM_TEST_ONE=10):
        assert plugins.setting("TM_TEST_ONE") == 10
    assert plugins.setting("TM_TEST_NONE", "fallback") == "fallback"
    assert plugins.setting("TM_TEST_NONE", None) is None
    with pytest.raises(KeyError):
        plugins.setting("TM_TEST_NONE")


def test_resolve_and_collections_follow_the_declarations(monkeypatch):
    fake_apps(monkeypatch, {"api": [("/x", "tianmu.core.tests.test_plug_in:ROOT")], "urls": [("x/", "m.urls")]},
              {"api": ["tianmu.core.tests.test_plug_in:_two_routers"], "urls": [("y/", "n.urls")]})
    assert plugins.resolve("tianmu.core.plugins:MenuItem.visible_to") is MenuItem.visible_to
    assert plugins.api_routers() == [("/x", ROOT), ("/a", "A"), ("/b", "B")]
    assert plugins.url_includes() == [("x/", "m.urls"), ("y/", "n.urls")]


def _two_routers():
    return [("/a", "A"), ("/b", "B")]


# ---- the central files name no domain app ---------------------------------------------------------------------

CORE_APPS = {"tianmu.core", "tianmu.commandmap", "tianmu.demo"}  # the platform itself


def domain_apps() -> list[tuple[str, str]]:
    """(module, label) of every installed Tianmu app that is not the platform itself (registry, sensing, …)."""
    return [(app.name, app.label) for app in plugins.platform_apps() if app.name not in CORE_APPS]


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _mentions(text: str, name: str, label: str) -> bool:
    """Does a string name the app: its module, or its label as a URL namespace or a template/static folder?"""
    return name in text or re.search(rf"(?<![\w.]){re.escape(label)}(?:[:/]|$)", text) is not None


def python_mentions(source: str, skip=lambda node: False) -> list[str]:
    """Imports of domain apps and string literals (not docstrings) naming one, in Python source."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    skipped = {id(n) for top in ast.walk(tree) if skip(top) for n in ast.walk(top)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        modules = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for module in modules:
            found += [module for name, _label in domain_apps() if module == name or module.startswith(name + ".")]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [node.value for name, label in domain_apps() if _mentions(node.value, name, label)]
    return found


def text_mentions(text: str) -> list[str]:
    return [label for name, label in domain_apps() if _mentions(text, name, label)]


def _is_installed_apps(node) -> bool:
    return isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "INSTALLED_APPS" for t in node.targets)


def central_files() -> list[Path]:
    files = [ROOT / "api.py", ROOT / "urls.py", ROOT / "templates" / "base.html"]
    for folder in ("commandmap", "demo"):
        files += [p for p in sorted((ROOT / folder).rglob("*")) if p.is_file() and "tests" not in p.parts
                  and p.suffix in (".py", ".html", ".js", ".css")]
    return files


def test_the_mention_checks_catch_what_they_look_for():
    assert {name for name, _label in domain_apps()} >= {"tianmu.registry", "tianmu.sensing", NOTICES}
    assert python_mentions("from tianmu.sensing.models import Alarm") == ["tianmu.sensing.models",
                                                                         "tianmu.sensing.models.Alarm"]
    assert python_mentions("from tianmu import registry") == ["tianmu.registry"]
    assert python_mentions("x = reverse('sensing:alarms')") == ["sensing:alarms"]
    assert python_mentions('"""Unlike sensing/, this is prose."""\nfrom tianmu.core.registry import kinds') == []
    assert text_mentions("{% include 'sensing/map_panel.html' %}") == ["sensing"]
    assert text_mentions("{% url 'records:list' 'notices' %}") == []


@pytest.mark.parametrize("path", central_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_central_files_name_no_domain_app(path):
    text = path.read_text()
    found = python_mentions(text) if path.suffix == ".py" else text_mentions(text)
    assert found == []


def test_settings_name_domain_apps_only_in_installed_apps():
    source = (ROOT / "settings.py").read_text()
    assert python_mentions(source, skip=_is_installed_apps) == []
    assert python_mentions(source)  # …where they are listed


def test_its_map_overlay_is_drawn_on_the_command_map(world, records, client):
    """The app declares a command-map overlay (MapLayer): its panel and config reach the map page, scoped."""
    from tianmu.core.tests.notices.models import Notice

    assert any(layer.key == "notices" for layer in plugins.map_layers())
    Notice.objects.filter(pk=records["notices"]["a"].pk).update(status="published")
    Notice.objects.filter(pk=records["notices"]["b"].pk).update(status="published")
    client.force_login(world["users"]["town_staff"])
    html = client.get("/").content.decode()
    assert 'data-layer-key="notices"' in html and "/notices/" in html
    config = json.loads(html.split('<script id="map-layer-notices" type="application/json">')[1].split("</script>")[0])
    assert config == {"published": 1}  # town A's notice only
