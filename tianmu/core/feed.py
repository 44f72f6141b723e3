"""The activity feed (动态): events as sentences a person reads — who did what to which record where, in the
reader's language, Beijing time, a link to the subject — filtered by app, region and warning level, and always
limited to the reader's region (plus region-less events), as the live stream is.

How a type reads: its own describe hook (core/eventtypes.py `describes` / `declare(describe=)`), else the
record-kind sentences below for `{app}.{kind}.{created|updated|deleted|imported|generated}`, else its
declared description with the actor and the payload's name. A describe hook that fails falls back too: the
feed never breaks on one odd event."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.apps import apps
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .eventtypes import Sentence, describer, is_declared
from .models import Event
from .names import person_name
from .scope import region_prefix, scope_q

__all__ = ["sentence", "sentences", "feed_events", "feed_rows", "LEVELS", "MAX_ROWS"]

log = logging.getLogger(__name__)
LEVELS = ("red", "orange", "yellow", "blue")
MAX_ROWS = 100


def actor_name(event: Event) -> str:
    return person_name(event.actor) if event.actor_id else _("系统")


def _record_sentence(event: Event) -> Sentence | None:
    from .registry.kinds import get_kind

    app_label, label, verb = event.type.split(".")
    payload = event.payload or {}
    try:
        kind = get_kind(payload.get("kind", ""))
    except KeyError:
        return None
    if kind.model._meta.app_label != app_label or kind.label() != label:
        return None
    params = {"actor": actor_name(event), "kind": kind.model._meta.verbose_name, "name": payload.get("name", ""),
              "count": payload.get("count", 0)}
    url = ""
    if verb in ("created", "updated") and event.subject.partition(":")[2].isdigit():
        try:
            url = reverse("records:detail", args=[kind.slug, int(event.subject.partition(":")[2])])
        except NoReverseMatch:
            url = ""
    if verb == "created":
        text = _("%(actor)s 新建了%(kind)s「%(name)s」") % params
    elif verb == "updated":
        text = _("%(actor)s 修改了%(kind)s「%(name)s」") % params
        changes = payload.get("changes") or {}
        labels = []
        for field in changes:
            try:
                labels.append(str(kind.model._meta.get_field(field).verbose_name))
            except Exception:  # noqa: BLE001 - a field since removed: its name
                labels.append(field)
        if labels:
            text += _(":%(fields)s") % {"fields": _("、").join(labels)}
    elif verb == "deleted":
        text = _("%(actor)s 删除了%(kind)s「%(name)s」") % params
    elif verb == "imported":
        text = ngettext("%(actor)s 从表格导入了 %(count)d 条%(kind)s", "%(actor)s 从表格导入了 %(count)d 条%(kind)s",
                        params["count"]) % params
        url = reverse("records:list", args=[kind.slug])
    elif verb == "generated":
        text = ngettext("演示数据生成了 %(count)d 条%(kind)s", "演示数据生成了 %(count)d 条%(kind)s", params["count"]) % params
        url = reverse("records:list", args=[kind.slug])
    else:
        return None
    return Sentence(text, url)


def _generic_sentence(event: Event) -> Sentence:
    from .eventtypes import event_type

    description = str(event_type(event.type).description) if is_declared(event.type) else event.type
    name = (event.payload or {}).get("name")
    text = _("%(actor)s:%(what)s") % {"actor": actor_name(event), "what": description}
    if name:
        text += _("「%(name)s」") % {"name": name}
    level = (event.payload or {}).get("level")
    return Sentence(text, "", level if level in LEVELS else "")


def sentence(event: Event) -> Sentence:
    """How one event reads for the current language."""
    func = describer(event.type)
    if func is not None:
        try:
            result = func(event)
            if result is not None:
                return result
        except Exception:  # noqa: BLE001 - one odd event must not break the feed
            log.exception("describing event %s (%s) failed", event.pk, event.type)
    record = _record_sentence(event) if event.type.count(".") == 2 else None
    return record or _generic_sentence(event)


def app_choices() -> list[tuple[str, str]]:
    """(label, verbose name) of every app that declares event types, for the app filter."""
    from .eventtypes import event_types

    labels = dict.fromkeys(t.app_label for t in event_types())
    return [(label, str(apps.get_app_config(label).verbose_name)) for label in labels]


def feed_events(actor, *, app: str = "", region: str = "", levels=(), before: int | None = None,
                after: int | None = None, limit: int = MAX_ROWS) -> QuerySet:
    """The newest events the actor may see, narrowed by app, region (a code: its subtree) and warning levels."""
    if region_prefix(actor) is None:
        return Event.objects.none()
    qs = Event.objects.select_related("actor", "region__parent").defer(
        "region__boundary", "region__parent__boundary").order_by("-id")
    scope = scope_q(actor, "region_code")
    if scope:
        qs = qs.filter(scope | Q(region_code=""))
    if app:
        qs = qs.filter(type__startswith=app + ".")
    if region:
        qs = qs.filter(region_code__startswith=region)
    if levels:
        qs = qs.filter(payload__level__in=list(levels))
    if before:
        qs = qs.filter(id__lt=before)
    if after:
        qs = qs.filter(id__gt=after)
    return qs[:limit]


def sentences(events) -> list[Sentence]:
    """Many events: a describer with a batch hook (`func.many(events) -> [Sentence | None]`, e.g. one query
    for all the alarms' stations) gets its events at once; the rest one by one."""
    events = list(events)
    done: dict[int, Sentence] = {}
    groups: dict[Callable, list[Event]] = {}
    for e in events:
        func = describer(e.type)
        if func is not None and hasattr(func, "many"):
            groups.setdefault(func, []).append(e)
    for func, group in groups.items():
        try:
            for e, result in zip(group, func.many(group), strict=True):
                if result is not None:
                    done[e.pk] = result
        except Exception:  # noqa: BLE001 - one odd batch must not break the feed: one by one instead
            log.exception("describing %d events in a batch failed", len(group))
    return [done.get(e.pk) or sentence(e) for e in events]


def feed_rows(events) -> list[dict]:
    """What the feed page draws for each event."""
    out = []
    events = list(events)
    labels = dict(zip(LEVELS, (_("红色"), _("橙色"), _("黄色"), _("蓝色")), strict=True))
    for e, s in zip(events, sentences(events), strict=True):
        out.append({"event": e, "text": s.text, "url": s.url, "level": s.level, "level_label": labels.get(s.level, ""),
                    "region": e.region,
                    "app": e.type.split(".", 1)[0]})
    return out
