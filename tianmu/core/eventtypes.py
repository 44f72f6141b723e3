"""Declared event types and the handlers that react to them.

Every event an app emits is declared in the app's `events.py`; `emit()` refuses a type that is not declared
or a payload that does not fit its schema (a programming error, not user input):

    # tianmu/sensing/events.py
    from pydantic import BaseModel
    from django.utils.translation import gettext_lazy as _
    from tianmu.core.eventtypes import declare

    class ThresholdChanged(BaseModel):
        rule: str
        station: str | None
        red: float | None

    declare("sensing.threshold.changed", ThresholdChanged, _("阈值被新建或修改"),
            emitted_by="sensing.services.set_threshold")

A payload schema is a pydantic model or a dict of field name → type (or (type, default) for an optional
field). Payloads are checked in pydantic's strict mode and may carry no field the schema does not name, so the
catalogue (/events/catalogue/) is the whole truth about what a handler receives.

Handlers live in the app's `handlers.py`:

    from tianmu.core.eventtypes import handles

    @handles("sensing.alarm.opened", "sensing.alarm.escalated")
    def propose_warning(event):        # one event, inside the transaction that advances the cursor
        ...

Core imports every project app's `kinds`, `events` and `handlers` modules at start-up (CoreConfig.ready),
in that order, so a handler may name a type any app declares. The worker that runs handlers is
`tianmu handle_events` (core/consumers.py).

How an event reads in the activity feed (动态, core/feed.py) is optional: `declare(..., describe=func)` or
`@describes("sensing.alarm.")` (a name, or a prefix ending in ".") registers `func(event) -> Sentence` (text in the
reader's language, a link to the subject, a warning level); `func.many(events)`, optional, describes a page of
them at once (one query for all, core/feed.py `sentences`). Types without one read from their description,
the actor, the region and the payload's name (record kinds have their own sentences).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

__all__ = ["EventType", "EventTypeError", "UndeclaredEventType", "PayloadMismatch", "PayloadField", "Handler",
           "declare", "undeclare", "event_type", "event_types", "is_declared", "handles", "register_handler",
           "unregister_handler", "handlers", "handler", "handlers_of", "autodiscover", "catalogue", "NAME_PATTERN",
           "Sentence", "describes", "describer"]

NAME_PATTERN = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
MAX_NAME = 64  # core.Event.type
MAX_CONSUMER = 64  # core.EventCursor.consumer

_TYPES: dict[str, EventType] = {}
_HANDLERS: dict[str, Handler] = {}
_DESCRIBERS: dict[str, Callable] = {}  # type name, or a prefix ending in "."


@dataclass(frozen=True)
class Sentence:
    """One event as a person reads it in the feed: plain text (never HTML), a link to its subject, and the warning
    level it carries ("red", "orange", "yellow", "blue" or "")."""

    text: str
    url: str = ""
    level: str = ""


def describes(*names: str):
    """Register how events of these types (or prefixes ending in ".") read in the activity feed."""

    def register(func):
        for name in names:
            _DESCRIBERS[name] = func
        return func

    return register


def describer(name: str) -> Callable | None:
    """The describe hook of a type: its own, else the longest registered prefix, else None."""
    if name in _DESCRIBERS:
        return _DESCRIBERS[name]
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        func = _DESCRIBERS.get(".".join(parts[:i]) + ".")
        if func is not None:
            return func
    return None


class EventTypeError(Exception):
    """An event that does not match its declaration: a bug in the emitting code."""


class UndeclaredEventType(EventTypeError, LookupError):
    """emit() of a type no app declared."""


class PayloadMismatch(EventTypeError, TypeError):
    """emit() of a payload that does not fit the type's declared schema."""


@dataclass(frozen=True)
class PayloadField:
    name: str
    type: str
    required: bool
    description: Any = ""  # a lazy string when the schema gives one


def _type_name(annotation) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


@dataclass(frozen=True, eq=False)
class EventType:
    """One declared type: `{app}.{object}.{verb}`, its payload schema and what it means."""

    name: str
    schema: type[BaseModel]
    description: Any  # a lazy Chinese string; English through the catalogue
    emitted_by: str = ""
    declared_in: str = ""

    @property
    def app_label(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def app_name(self):
        from django.apps import apps

        return apps.get_app_config(self.app_label).verbose_name

    def fields(self) -> list[PayloadField]:
        return [PayloadField(name, _type_name(info.annotation), info.is_required(), info.description or "")
                for name, info in self.schema.model_fields.items()]

    def check(self, payload: dict) -> None:
        """Raise PayloadMismatch unless `payload` fits the schema exactly (no missing, extra or mistyped field)."""
        if not isinstance(payload, dict):
            raise PayloadMismatch(f"{self.name}: the payload must be a dict, not {type(payload).__name__}")
        extra = sorted(set(payload) - set(self.schema.model_fields))
        if extra:
            raise PayloadMismatch(f"{self.name}: fields not in the declared schema: {', '.join(map(str, extra))}")
        try:
            self.schema.model_validate(payload, strict=True)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(payload)'}: {e['msg']}" for e in exc.errors())
            raise PayloadMismatch(f"{self.name}: payload does not fit its schema: {problems}") from None


def _schema(name: str, payload) -> type[BaseModel]:
    if isinstance(payload, type) and issubclass(payload, BaseModel):
        return payload
    if isinstance(payload, dict):
        spec = {key: (value if isinstance(value, tuple) else (value, ...)) for key, value in payload.items()}
        model_name = "".join(part.title().replace("_", "") for part in name.split("."))
        return create_model(model_name, __config__=ConfigDict(extra="forbid"), **spec)
    raise ImproperlyConfigured(f"event type {name!r}: the payload schema must be a pydantic model or a dict of "
                               f"field → type")


def _caller_module(depth: int = 2) -> str:
    try:
        return sys._getframe(depth).f_globals.get("__name__", "")
    except ValueError:  # pragma: no cover - not that deep
        return ""


def declare(name: str, payload, description, *, emitted_by: str = "", declared_in: str | None = None,
            describe: Callable | None = None) -> EventType:
    """Declare an event type. `name` is `{app_label}.{object}.{verb}` (lower case, the app installed);
    `describe(event) -> Sentence`, optional, is how it reads in the activity feed."""
    from django.apps import apps

    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        raise ImproperlyConfigured(f"event type {name!r} must be '{{app}}.{{object}}.{{verb}}': three lower-case "
                                   f"words of [a-z0-9_], at most {MAX_NAME} characters")
    label = name.split(".", 1)[0]
    try:
        apps.get_app_config(label)
    except LookupError:
        raise ImproperlyConfigured(f"event type {name!r}: no installed app has the label {label!r}") from None
    if not description:
        raise ImproperlyConfigured(f"event type {name!r} needs a description")
    module = declared_in if declared_in is not None else _caller_module()
    existing = _TYPES.get(name)
    if existing is not None and existing.declared_in != module:
        raise ImproperlyConfigured(f"event type {name!r} declared twice: in {existing.declared_in} and {module}")
    declared = EventType(name=name, schema=_schema(name, payload), description=description, emitted_by=emitted_by,
                         declared_in=module)
    _TYPES[name] = declared
    if describe is not None:
        _DESCRIBERS[name] = describe
    return declared


def undeclare(name: str) -> None:
    """Forget a declaration (tests that declare their own types clean up with this)."""
    _TYPES.pop(name, None)
    _DESCRIBERS.pop(name, None)


def is_declared(name: str) -> bool:
    return name in _TYPES


def event_type(name: str) -> EventType:
    try:
        return _TYPES[name]
    except KeyError:
        raise UndeclaredEventType(f"event type {name!r} is not declared: declare it in its app's events.py "
                                  f"(see tianmu/core/eventtypes.py)") from None


def event_types() -> list[EventType]:
    return sorted(_TYPES.values(), key=lambda t: t.name)


# ---- handlers ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Handler:
    """A function run by the event worker for every event of its types, as the durable consumer `name`.

    `batch=False` (default): called with one Event. `batch=True`: called with a list of events; if a batch
    fails it is retried one event at a time, so one bad event cannot hold back the others.
    `start`: where a new consumer's cursor starts, "beginning" (every event already in the outbox) or "now".
    """

    name: str
    types: tuple[str, ...]
    func: Callable
    batch: bool = False
    start: str = "beginning"
    module: str = field(default="")


def register_handler(func: Callable, types, *, name: str | None = None, batch: bool = False,
                     start: str = "beginning") -> Handler:
    types = tuple(dict.fromkeys(types))
    if not types:
        raise ImproperlyConfigured(f"handler {func!r} handles no event type")
    for t in types:
        if t not in _TYPES:
            raise ImproperlyConfigured(f"handler {func.__module__}.{func.__qualname__} handles {t!r}, which no app "
                                       f"declares")
    name = name or f"{func.__module__}.{func.__qualname__}"
    if len(name) > MAX_CONSUMER:
        raise ImproperlyConfigured(f"handler name {name!r} is longer than {MAX_CONSUMER} characters: give it a "
                                   f"shorter name=")
    if start not in ("beginning", "now"):
        raise ImproperlyConfigured(f"handler {name!r}: start must be 'beginning' or 'now'")
    existing = _HANDLERS.get(name)
    if existing is not None and (existing.func.__module__, existing.func.__qualname__) != (
            func.__module__, func.__qualname__):
        raise ImproperlyConfigured(f"two handlers are named {name!r}: give one of them another name=")
    registered = Handler(name=name, types=types, func=func, batch=batch, start=start, module=func.__module__)
    _HANDLERS[name] = registered
    return registered


def handles(*types: str, name: str | None = None, batch: bool = False, start: str = "beginning"):
    """Decorator: run the function for every event of these types (see Handler). The consumer name is stable:
    `name`, or the function's module and name; renaming it starts a new cursor."""

    def decorate(func):
        register_handler(func, types, name=name, batch=batch, start=start)
        return func

    return decorate


def unregister_handler(name: str) -> None:
    _HANDLERS.pop(name, None)


def handlers() -> list[Handler]:
    return sorted(_HANDLERS.values(), key=lambda h: h.name)


def handler(name: str) -> Handler:
    return _HANDLERS[name]


def handlers_of(type_name: str) -> list[Handler]:
    return [h for h in handlers() if type_name in h.types]


# ---- discovery -----------------------------------------------------------------------------------------------------

PROJECT_PACKAGE = __name__.split(".", 1)[0]  # "tianmu"
DISCOVERED = ("kinds", "lifecycles", "events", "handlers")


def autodiscover() -> None:
    """Import `kinds`, `events` and `handlers` of every project app, each kind of module in every app before the
    next (record kinds declare their events; handlers may name any app's types).

    Only the project's own apps: third-party apps use these module names for other things (django-axes has a
    `handlers` package)."""
    from importlib import import_module

    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    ours = [c for c in apps.get_app_configs() if c.name.split(".", 1)[0] == PROJECT_PACKAGE]
    for module in DISCOVERED:
        for config in ours:
            if module_has_submodule(config.module, module):
                import_module(f"{config.name}.{module}")


# ---- the catalogue -------------------------------------------------------------------------------------------------

def catalogue() -> list[dict]:
    """Every declared type with what it means, its payload fields, the app that emits it and the handlers that
    handle it; texts stay lazy (rendered in the reader's language)."""
    by_type: dict[str, list[str]] = {}
    for h in handlers():
        for t in h.types:
            by_type.setdefault(t, []).append(h.name)
    return [{"name": t.name, "app": t.app_label, "app_name": t.app_name, "description": t.description,
             "emitted_by": t.emitted_by, "declared_in": t.declared_in, "fields": t.fields(),
             "handlers": by_type.get(t.name, [])} for t in event_types()]
