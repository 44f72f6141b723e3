"""How an app plugs in: it declares on its AppConfig what it contributes, and core collects it.

    class SensingConfig(TianmuApp):
        name = "tianmu.sensing"
        api = [("/sensing", "tianmu.sensing.api:router")]
        urls = [("sensing/", "tianmu.sensing.urls")]
        menu = [MenuItem(_("监测预警"), "sensing:alarms", order=30)]
        map_layers = [MapLayer("sensing", panel="sensing/map_panel.html", scripts=["sensing/map.js"],
                               config="tianmu.sensing.views:map_config")]
        demo_steps = [DemoStep("sensing.network", "tianmu.sensing.demo.network:build_network",
                               after=["registry.records"])]
        workers = {"ingest": ["ingest"]}
        settings = {"SENSING_BATCH_MAX_READINGS": 500}

Contributions name their code by dotted path ("module:attribute") so an AppConfig stays light to import; they
are resolved when core asks. The root URLconf, the API, the base template's menu, the command map, `tianmu
demo`, `tianmu run` and settings read these collections and name no domain app (docs/architecture.md,
"Adding an app"). Apps are visited in INSTALLED_APPS order, which is also the declared layering: an app
may know the apps above it in the list, never those below (checked by import-linter, see pyproject.toml).
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module

from django.apps import AppConfig, apps
from django.conf import settings as django_settings

__all__ = ["TianmuApp", "MenuItem", "MapLayer", "RecordPanel", "record_panels", "Attention", "DemoStep", "platform_apps",
           "resolve", "api_routers",
           "url_includes", "menu_for", "map_layers", "demo_steps", "workers", "setting", "MatrixObjects", "WriteCase",
           "matrix_providers"]


@dataclass(frozen=True)
class MenuItem:
    """An entry of the top menu. `url` is a URL name; `action` limits it to users the permission table allows
    that action (core/scope.py; empty: every signed-in user); `staff` shows it only to staff users. Lower
    `order` comes first."""

    label: str
    url: str
    action: str = ""
    staff: bool = False
    order: int = 50
    key: str = ""

    def visible_to(self, user) -> bool:
        from .scope import can

        if user is None or not getattr(user, "is_authenticated", False):
            return False
        if self.staff and not user.is_staff:
            return False
        return not self.action or can(user, self.action)


@dataclass(frozen=True)
class MapLayer:
    """Overlays an app draws on the command map: `panel` is a template rendered in the layer panel (toggles,
    legend, lists), `scripts` the static files that draw them (loaded after the map's own script, which exposes
    `window.tianmuMap`), and `config` a dotted path to a function (request) → dict that the scripts read from
    a JSON element with the id `map-layer-<key>`. Data endpoints belong to the app's API."""

    key: str
    panel: str
    scripts: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    config: str = ""
    order: int = 50


@dataclass(frozen=True)
class RecordPanel:
    """A panel on record detail pages: `template` is included with `panel` set to what `context` (a dotted path
    to a function (request, kind, obj) → dict, or None to leave the panel out) returns; `kinds` limits it to
    those slugs (empty: every kind), `placed_only` to kinds whose records sit at a point. Their scripts and styles
    are loaded once per page."""

    key: str
    template: str
    context: str
    kinds: tuple[str, ...] = ()
    placed_only: bool = False
    scripts: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    order: int = 50


@dataclass(frozen=True)
class Attention:
    """Something that asks for attention on every page (core/attention.py): `url` names the JSON view polled
    for the counter and the alerts, `page` the page where the user looks at them (opening it resets the
    counter), `levels` the levels that always ring, `optional_levels` those a user may add (a preference)."""

    key: str
    url: str
    page: str
    label: str
    levels: tuple[str, ...] = ()
    optional_levels: tuple[str, ...] = ()
    optional_label: str = ""  # the preference's checkbox, e.g. "橙色告警也提醒"


@dataclass(frozen=True)
class DemoStep:
    """One step of `tianmu demo`: `run` is a dotted path to a function (context) → dict of counts or None.
    Steps run in dependency order (`after` names other steps); `phase` "build" steps run inside the one
    transaction that creates the demo district, "replay" steps after it (e.g. a storm through the real
    ingest path)."""

    name: str
    run: str
    after: tuple[str, ...] = ()
    phase: str = "build"


class TianmuApp(AppConfig):
    """Base AppConfig of a Tianmu app: class attributes declare what the app contributes."""

    # (prefix under /api/v1, "module:router"), or "module:function" returning such pairs (routers made per kind)
    api: list[tuple[str, str] | str] = []
    urls: list[tuple[str, str]] = []  # (path prefix, urlconf module), in order
    menu: list[MenuItem] = []
    map_layers: list[MapLayer] = []
    record_panels: list[RecordPanel] = []
    demo_steps: list[DemoStep] = []
    workers: dict[str, list[str]] = {}  # name → `tianmu` command and arguments, supervised by `tianmu run`
    demo_workers: dict[str, list[str]] = {}  # the same, run only by `tianmu demo` (they invent data)
    settings: dict = {}  # defaults of the app's settings (read with core.plugins.setting)
    attention: list[Attention] = []  # counters and alerts on every page (core/attention.py)
    # Rows of the permission table (core/scope.py): action → {role: Grant}.
    permissions: dict = {}
    # "module:function" (records, world) → MatrixObjects, for the authorisation matrix test.
    matrix: str = ""
    # Declarations that register themselves live in modules of fixed names (kinds, lifecycles, events,
    # handlers): core imports them for every project app once all apps are loaded (core/eventtypes.py).


def platform_apps() -> list[TianmuApp]:
    """Tianmu apps in INSTALLED_APPS order."""
    return [cfg for cfg in apps.get_app_configs() if isinstance(cfg, TianmuApp)]


def resolve(path: str):
    """'package.module:attribute' → the object."""
    module, _, attr = path.partition(":")
    obj = import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def api_routers() -> list[tuple[str, object]]:
    out = []
    for app in platform_apps():
        for entry in app.api:
            if isinstance(entry, str):
                out.extend(resolve(entry)())
            else:
                out.append((entry[0], resolve(entry[1])))
    return out


def url_includes() -> list[tuple[str, str]]:
    return [pair for app in platform_apps() for pair in app.urls]


def menu_for(user) -> list[MenuItem]:
    items = [item for app in platform_apps() for item in app.menu if item.visible_to(user)]
    return sorted(items, key=lambda i: i.order)


def map_layers() -> list[MapLayer]:
    return sorted((layer for app in platform_apps() for layer in app.map_layers), key=lambda lay: lay.order)


def record_panels(kind) -> list[RecordPanel]:
    """The panels declared for a record kind's detail page, in order."""
    return sorted((panel for app in platform_apps() for panel in app.record_panels
                   if (not panel.kinds or kind.slug in panel.kinds) and (kind.placed() or not panel.placed_only)),
                  key=lambda panel: panel.order)


def demo_steps(phase: str | None = None) -> list[DemoStep]:
    """Every declared demo step in dependency order (ties in INSTALLED_APPS order)."""
    steps: dict[str, DemoStep] = {}
    for app in platform_apps():
        for step in app.demo_steps:
            if step.name in steps:
                raise ValueError(f"demo step {step.name!r} declared twice")
            steps[step.name] = step
    sorter = graphlib.TopologicalSorter()
    for name, step in steps.items():
        missing = [dep for dep in step.after if dep not in steps]
        if missing:
            raise ValueError(f"demo step {name!r} runs after undeclared step(s) {missing}")
        sorter.add(name, *step.after)
    declared = list(steps)
    ordered: list[DemoStep] = []
    sorter.prepare()  # raises graphlib.CycleError on a cycle
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=declared.index)
        ordered.extend(steps[n] for n in ready)
        sorter.done(*ready)
    return [s for s in ordered if phase is None or s.phase == phase]


def workers(*, demo: bool = False) -> dict[str, list[str]]:
    """Workers for `tianmu run`: every app's, plus its demo workers when `demo`."""
    out: dict[str, list[str]] = {}
    for app in platform_apps():
        for name, args in [*app.workers.items(), *(app.demo_workers.items() if demo else ())]:
            if name in out:
                raise ValueError(f"worker {name!r} declared twice")
            out[name] = list(args)
    return out


_MISSING = object()


@cache
def declared_settings() -> dict:
    """Every app's setting defaults, merged once (rule evaluation reads settings per sensor)."""
    merged: dict = {}
    for app in platform_apps():
        for name, value in app.settings.items():
            merged.setdefault(name, value)  # the first app (INSTALLED_APPS order) declaring it
    return merged


def setting(name: str, default=_MISSING):
    """A setting: settings.py (environment) first, then the default its app declares."""
    value = getattr(django_settings, name, _MISSING)
    if value is not _MISSING:
        return value
    value = declared_settings().get(name, default)
    if value is _MISSING:
        raise KeyError(f"setting {name!r} is not declared by any app")
    return value


@dataclass
class WriteCase:
    """One write probe of the authorisation matrix, made fresh for each probe: the permission-table `action` it
    exercises in the other town, the route parameters, the body (JSON, or form fields with files when
    `multipart`), and optionally a `fingerprint` () → value that differs after the write took effect (default:
    the number of domain events, since every change emits one)."""

    action: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    multipart: bool = False
    fingerprint: Callable[[], object] | None = None


@dataclass
class MatrixObjects:
    """What an app gives the authorisation matrix: values for route parameters naming objects in the other
    town (`params`), checks that nothing of the app's changed after a refused write (`unchanged`: callables
    (role) → None that assert), and one WriteCase factory per write route ("METHOD route", the route as in
    the URL resolver or the OpenAPI paths) that is not a record kind's."""

    params: dict[str, str] = field(default_factory=dict)
    route_params: dict[str, dict[str, str]] = field(default_factory=dict)  # route fragment → params
    unchanged: list[Callable[[str], None]] = field(default_factory=list)
    writes: dict[str, Callable[[], WriteCase]] = field(default_factory=dict)


def matrix_providers() -> Iterable[Callable]:
    return [resolve(app.matrix) for app in platform_apps() if app.matrix]
