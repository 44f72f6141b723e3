"""Objects with a lifecycle: a state machine declared once, from which the rest follows.

    ALARM = Lifecycle(
        "sensing.alarm", Alarm, field="status",
        states={"open": _("未确认"), "acknowledged": _("已确认"), "closed": _("已关闭")},
        transitions=[
            Transition("acknowledge", ["open"], "acknowledged", _("确认"), event="acknowledged",
                       grants=writers, apply=_set_acknowledged),
            Transition("close", ["open", "acknowledged"], "closed", _("关闭"), event="closed",
                       grants=writers, note=REQUIRED, apply=_set_closed),
        ])

From the declaration come:
  - the permission-table rows (action "sensing.alarm.acknowledge", who may do it, at which region level),
    merged into core/scope.py's one table;
  - the service: `ALARM.perform(actor, alarm, "acknowledge", note=…)` locks the row, checks the state, the
    permission in the row's region, the required note or second approver, sets the state and the
    transition's own fields, records history (django-simple-history, when the model has it) and emits the
    event "sensing.alarm.acknowledged", all in one transaction;
  - the API route (`add_routes(router, …)`: POST …/{id}/acknowledge with a body of the fields it needs);
  - the page button and its view (core/views.py `transition_view`, the template tag `transitions`);
  - the authorisation-matrix row (the matrix probes each route and reads the table).
One module serves alarms now and warnings, incidents, tasks, hidden dangers, requisitions and approvals later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .errors import ServiceError
from .events import emit
from .scope import Grant, can, check

__all__ = ["Transition", "Lifecycle", "Step", "OPTIONAL", "REQUIRED", "NONE", "lifecycles", "get_lifecycle",
           "NOTE_MAX", "body_schema", "add_routes", "authenticate_approver"]

OPTIONAL, REQUIRED, NONE = "optional", "required", "none"
NOTE_MAX = 2000

_LIFECYCLES: dict[str, Lifecycle] = {}


@dataclass
class Step:
    """One transition being performed: what `apply` and `after` hooks receive."""

    actor: object
    transition: Transition
    note: str
    at: datetime
    approver: object | None = None
    extra: dict = field(default_factory=dict)  # added to the event's payload


@dataclass(frozen=True)
class Transition:
    """A move from one of `sources` to `target`. `grants` (role → scope.Grant) say who may make it; `note`
    is NONE, OPTIONAL or REQUIRED; `second_approver` asks for another user who may also make it; `apply`
    (obj, Step) sets the transition's own fields (who, when, the note) and `after` (obj, Step) runs after
    the save, in the same transaction."""

    name: str
    sources: tuple[str, ...]
    target: str
    label: str
    event: str
    grants: dict[str, Grant]
    note: str = OPTIONAL
    second_approver: bool = False
    apply: Callable | None = None
    after: Callable | None = None
    state_error: str = _("当前状态不能执行此操作")
    note_error: str = _("请填写说明")
    style: str = ""  # the button's CSS class on pages ("danger", …)
    description: str = ""  # the event's description in the catalogue (default: the label)
    payload_fields: dict = field(default_factory=dict)  # extra event fields: name → (type, default)

    def __post_init__(self):
        object.__setattr__(self, "sources", tuple(self.sources))


class Lifecycle:
    """The state machine of one model. `key` is "{app}.{object}": actions are "{key}.{transition}" and events
    "{key}.{event}"."""

    def __init__(self, key: str, model, *, states: dict[str, str], transitions: Iterable[Transition],
                 field: str = "status", region_field: str = "region",
                 payload: Callable[[object], dict] | None = None, payload_schema=None,
                 subject: Callable[[object], str] | None = None, visible: Callable | None = None,
                 related: tuple[str, ...] = ()):
        self.key, self.model, self.field, self.region_field = key, model, field, region_field
        self.states = dict(states)
        self.transitions = {t.name: t for t in transitions}
        self._payload, self._subject, self._visible, self.related = payload, subject, visible, related
        for t in self.transitions.values():
            unknown = {*t.sources, t.target} - set(self.states)
            if unknown:
                raise ValueError(f"{key}.{t.name}: unknown states {sorted(unknown)}")
        if key in _LIFECYCLES and _LIFECYCLES[key].model is not model:
            raise ValueError(f"lifecycle {key!r} declared twice")
        _LIFECYCLES[key] = self
        self._declare_events(payload_schema)

    def _declare_events(self, base) -> None:
        """Each transition's event type "{key}.{event}": the object's payload (`payload_schema`, a pydantic
        model; default just its id) plus from_state, to_state, note, the approver and the transition's own
        payload_fields."""
        from pydantic import BaseModel, create_model

        from .eventtypes import declare

        for t in self.transitions.values():
            fields = {"from_state": (str, ...), "to_state": (str, ...), "note": (str, ""),
                      "approver": (str | None, None), **t.payload_fields}
            if base is None:
                fields["id"] = (int, ...)
            name = "".join(p.title() for p in self.event_type(t).split(".")) + "Payload"
            schema = create_model(name, __base__=base or BaseModel, **fields)
            declare(self.event_type(t), schema, t.description or t.label, emitted_by=f"{self.key} lifecycle",
                    declared_in=f"{self.model.__module__}:{self.key}")

    # ---- declarations derived ---------------------------------------------------------------------------------
    def action(self, name: str) -> str:
        return f"{self.key}.{name}"

    def event_type(self, t: Transition) -> str:
        return f"{self.key}.{t.event}"

    def permissions(self) -> dict[str, dict[str, Grant]]:
        """The permission-table rows of the transitions."""
        return {self.action(t.name): dict(t.grants) for t in self.transitions.values()}

    def transition(self, name: str) -> Transition:
        try:
            return self.transitions[name]
        except KeyError:
            raise ServiceError({"transition": [_("没有这项操作")]}) from None

    def state_label(self, value: str) -> str:
        return self.states.get(value, value)

    def region(self, obj):
        return getattr(obj, self.region_field)

    def visible(self, actor):
        """The rows the actor may see (the app's own scoped query, or the region scope)."""
        if self._visible is not None:
            return self._visible(actor)
        from .scope import scope_queryset

        return scope_queryset(self.model.objects.all(), actor, self.region_field)

    def available(self, actor, obj) -> list[Transition]:
        """The transitions the actor may make on `obj` now (for buttons)."""
        state = getattr(obj, self.field)
        return [t for t in self.transitions.values()
                if state in t.sources and can(actor, self.action(t.name), self.region(obj))]

    # ---- the service -------------------------------------------------------------------------------------------
    def lock(self, obj):
        pk = obj.pk if isinstance(obj, self.model) else obj
        return self.model.objects.select_for_update(of=("self",)).select_related(*self.related).get(pk=pk)

    def check(self, actor, obj, name: str, *, note: str = "", approver=None) -> Step:
        """Everything but the change: permission in the row's region, state, note, second approver. Returns
        the Step to apply. Raises ScopeError or ServiceError (per field)."""
        t = self.transition(name)
        check(actor, self.action(t.name), self.region(obj))
        if getattr(obj, self.field) not in t.sources:
            raise ServiceError({self.field: [t.state_error]})
        note = (note or "").strip()[:NOTE_MAX] if t.note != NONE else ""
        if t.note == REQUIRED and not note:
            raise ServiceError({"note": [t.note_error]})
        if t.second_approver:
            if approver is None:
                raise ServiceError({"approver": [_("此操作需要另一位有权限的人员复核")]})
            if getattr(approver, "pk", None) == getattr(actor, "pk", None):
                raise ServiceError({"approver": [_("复核人不能是操作人本人")]})
            if not can(approver, self.action(t.name), self.region(obj)):
                raise ServiceError({"approver": [_("复核人没有此项操作的权限")]})
        return Step(actor=actor, transition=t, note=note, at=timezone.now(), approver=approver)

    def apply(self, obj, step: Step) -> None:
        """Make a checked step: state, the transition's fields, history, event. Call inside a transaction with
        the row locked (perform does both)."""
        t = step.transition
        before = getattr(obj, self.field)
        setattr(obj, self.field, t.target)
        if t.apply is not None:
            t.apply(obj, step)
        obj._history_user = step.actor if getattr(step.actor, "pk", None) else None
        obj._change_reason = t.name
        obj.save()
        payload = {**(self._payload(obj) if self._payload else {"id": obj.pk}), "from_state": before,
                   "to_state": t.target, "note": step.note, **step.extra}
        if step.approver is not None:
            payload["approver"] = step.approver.username
        emit(self.event_type(t), actor=step.actor, region=self.region(obj),
             subject=self._subject(obj) if self._subject else f"{self.key.split('.')[-1]}:{obj.pk}",
             payload=payload)
        if t.after is not None:
            t.after(obj, step)

    def perform(self, actor, obj, name: str, *, note: str = "", approver=None, extra: dict | None = None):
        """A person makes a transition: lock, check, apply, in one transaction. Returns the fresh object."""
        with transaction.atomic():
            obj = self.lock(obj)
            step = self.check(actor, obj, name, note=note, approver=approver)
            step.extra.update(extra or {})
            self.apply(obj, step)
        return obj


def body_schema(lifecycle: Lifecycle, t: Transition):
    """The request body a transition needs: a note (when it takes one) and an approver's username (when it asks
    for a second approver)."""
    from ninja import Schema
    from pydantic import Field, create_model

    fields: dict = {}
    if t.note != NONE:  # a required note is checked by the service, with the transition's own message
        fields["note"] = (str, Field("", max_length=NOTE_MAX))
    if t.second_approver:  # the approver confirms with their own password (two-person rule)
        fields["approver"] = (str, Field(..., max_length=150))
        fields["approver_password"] = (str, Field(..., max_length=128))
    name = "".join(part.title() for part in f"{lifecycle.key}.{t.name}".split(".")) + "In"
    return create_model(name, __base__=Schema, **fields)


def authenticate_approver(request, username: str, password: str):
    """The second approver of a two-person transition, who confirms with their own password (through Django's
    authentication, so the login throttle counts failures). ServiceError on `approver` if they cannot."""
    from django.contrib.auth import authenticate

    user = authenticate(request, username=username or "", password=password or "") if username else None
    if user is None or not user.is_active:
        raise ServiceError({"approver": [_("复核人的用户名或密码不正确")]})
    return user


def add_routes(router, lifecycle: Lifecycle, *, path: str, param: str, response, serialize) -> None:
    """Add `POST {path}/{transition}` to a Ninja router for every transition, e.g. path "/alarms/{int:alarm_id}",
    param "alarm_id": the object is looked up among those the caller may see (else 404), the body is the
    transition's (body_schema), and the answer is `serialize(obj)`. operationId: "<app>_<object>_<transition>"."""
    import inspect

    from django.shortcuts import get_object_or_404

    for t in lifecycle.transitions.values():
        schema = body_schema(lifecycle, t)

        def view(request, payload, _t=t, **kwargs):
            obj = get_object_or_404(lifecycle.visible(request.auth), pk=kwargs[param])
            approver = None
            if _t.second_approver:
                approver = authenticate_approver(request, payload.approver, payload.approver_password)
            return serialize(lifecycle.perform(request.auth, obj, _t.name, note=getattr(payload, "note", ""),
                                               approver=approver))

        view.__name__ = f"{lifecycle.key.split('.')[-1]}_{t.name}"
        view.__signature__ = inspect.Signature([
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=int),
            inspect.Parameter("payload", inspect.Parameter.KEYWORD_ONLY, annotation=schema),
        ])
        router.post(f"{path}/{t.name}", response=response, summary=f"{t.label} ({lifecycle.key}.{t.name})",
                    operation_id=f"{lifecycle.key.replace('.', '_')}_{t.name}")(view)


def lifecycles() -> list[Lifecycle]:
    return list(_LIFECYCLES.values())


def get_lifecycle(key: str) -> Lifecycle:
    return _LIFECYCLES[key]
