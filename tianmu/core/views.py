"""Core pages: the live event feed (server-sent events) that every live page builds on, the event catalogue,
and the operations page of the event consumers."""

from __future__ import annotations

import asyncio
import json
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST, require_safe

from .events import visible_events
from .models import Event

STREAM_SECONDS = 300  # the browser's EventSource reconnects with Last-Event-ID after this
KEEPALIVE_SECONDS = 15
POLL_SECONDS = 1.0


def event_json(event: Event) -> dict:
    return {
        "id": event.id,
        "type": event.type,
        "subject": event.subject,
        "region": event.region_code,
        "actor": str(event.actor) if event.actor_id else None,
        "time": timezone.localtime(event.created_at).isoformat(),
        "payload": event.payload,
    }


def _feed_filters(request) -> tuple[dict, list[dict]]:
    """The feed's filters from the query string: app, region (within the reader's region), levels."""
    from django.utils.translation import gettext

    from .feed import LEVELS, app_choices
    from .scope import region_prefix

    get, errors = request.GET, []
    values = {"app": get.get("app", ""), "region": get.get("region", ""),
              "levels": [v for raw in get.getlist("level") for v in raw.split(",") if v]}
    if values["app"] and values["app"] not in dict(app_choices()):
        errors.append({"field": "app", "message": gettext("不是有效的选项")})
        values["app"] = ""
    prefix = region_prefix(request.user) or ""
    if values["region"] and not (values["region"].isdigit() and len(values["region"]) in (6, 9, 12)
                                 and (values["region"].startswith(prefix) or prefix.startswith(values["region"]))):
        errors.append({"field": "region", "message": gettext("不是有效的选项")})
        values["region"] = ""
    if any(v not in LEVELS for v in values["levels"]):
        errors.append({"field": "level", "message": gettext("不是有效的选项")})
        values["levels"] = [v for v in values["levels"] if v in LEVELS]
    for name in ("before", "after"):
        raw = get.get(name, "")
        values[name] = int(raw) if raw.isdigit() and len(raw) < 19 else None
    return values, errors


def _feed_regions(user):
    """The regions a reader may narrow the feed to: the towns (district readers) or their town's villages."""
    from .models import Region
    from .scope import region_prefix

    prefix = region_prefix(user)
    if prefix is None or len(prefix) >= 12:
        return []
    qs = Region.light.filter(code__startswith=prefix) if prefix else Region.light.all()
    level = "village" if len(prefix) == 9 else "town"
    return list(qs.filter(level=level).order_by("code"))


@login_required
@require_safe
def event_list(request):
    """动态: the events the reader may see, one sentence each (core/feed.py), newest first, with filters; live
    (events.js asks for the rows after the newest shown whenever the stream says something happened)."""
    from django.db.models import Max

    from .feed import LEVELS, MAX_ROWS, app_choices, feed_events, feed_rows

    values, errors = _feed_filters(request)
    events = list(feed_events(request.user, app=values["app"], region=values["region"], levels=values["levels"],
                              before=values["before"], after=values["after"]))
    query = request.GET.copy()
    for name in ("before", "after", "fragment"):
        query.pop(name, None)
    context = {
        "rows": feed_rows(events), "f": values, "errors": errors, "query": query.urlencode(),
        "show_codes": request.user.is_staff,
        "older": events[-1].id if len(events) == MAX_ROWS else None,
        "last_id": Event.objects.aggregate(m=Max("id"))["m"] or 0,
        "apps": app_choices(), "regions": _feed_regions(request.user),
        "levels": [(lv, label) for lv, label in zip(LEVELS, (_("红色"), _("橙色"), _("黄色"), _("蓝色")), strict=True)],
    }
    if request.GET.get("fragment") == "1":
        return render(request, "core/_event_rows.html", context)
    return render(request, "core/events.html", context, status=400 if errors else 200)


@login_required
@require_safe
def event_catalogue(request):
    """Every declared event type: what it means, its payload, who emits it and which handlers handle it."""
    from itertools import groupby

    from .eventtypes import catalogue

    entries = catalogue()
    apps = [{"label": label, "name": group[0]["app_name"], "types": group}
            for label, group in ((label, list(g)) for label, g in groupby(entries, key=lambda e: e["app"]))]
    return render(request, "core/event_catalogue.html", {"apps": apps, "total": len(entries)})


@login_required
@require_safe
def ops_events(request):
    """The event consumers for district-level operators: position, lag, last success, failures, dead letters."""
    from .consumers import DEAD_LETTER_PREFIX, conf, consumer_status, recent_dead_letters
    from .scope import can

    if not can(request.user, "operations"):
        raise PermissionDenied(_("只有区级管理人员可以查看运行状态"))
    rows = consumer_status()
    letters = [{"letter": d, "consumer": d.source[len(DEAD_LETTER_PREFIX):]} for d in recent_dead_letters()]
    return render(request, "core/ops_events.html", {
        "rows": rows, "letters": letters, "head": rows[0].head if rows else Event.objects.aggregate(m=Max("id"))["m"],
        "total_lag": sum(r.lag for r in rows), "failing": sum(1 for r in rows if r.failures),
        "dead_letters": sum(r.dead_letters for r in rows), "max_attempts": conf("TIANMU_EVENT_MAX_ATTEMPTS"),
    })


@require_safe
async def event_stream(request):
    """text/event-stream of the events the user may see, resuming after Last-Event-ID."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse(status=401)
    once = request.GET.get("once") == "1"
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after")
    try:
        last = int(raw) if raw else None
    except ValueError:
        last = None
    if last is None:
        last = await sync_to_async(lambda: Event.objects.aggregate(m=Max("id"))["m"] or 0)()

    def fetch(after):
        return list(visible_events(user, after_id=after, limit=200))

    async def stream():
        nonlocal last
        started = quiet = time.monotonic()
        yield "retry: 3000\n\n"
        while True:
            events = await sync_to_async(fetch)(last)
            for event in events:
                last = event.id
                # Unnamed messages: one onmessage handler sees every type (the type is in the data).
                yield f"id: {event.id}\ndata: {json.dumps(event_json(event), ensure_ascii=False)}\n\n"
            if once:
                return
            now = time.monotonic()
            if events:
                quiet = now
            elif now - quiet > KEEPALIVE_SECONDS:
                quiet = now
                yield ": keepalive\n\n"
            if now - started > STREAM_SECONDS:
                return
            await asyncio.sleep(POLL_SECONDS)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# ---- lifecycle transitions (core/workflow.py): the page side of every declared transition ---------------------

@login_required
@require_POST
def transition_view(request, key: str, pk: int, name: str, done: str = "", fallback: str = "/"):
    """A person makes a declared transition from a page button (form fields: note, approver, next); the
    result is a message and a redirect back to `next` (same site only) or `fallback`. Objects the user may not
    see are a 404; a refused or invalid transition is an error message, never a 500."""
    from django.contrib import messages
    from django.http import Http404
    from django.shortcuts import get_object_or_404, redirect
    from django.utils.http import url_has_allowed_host_and_scheme
    from django.utils.translation import gettext as _

    from .errors import ScopeError, ServiceError
    from .workflow import authenticate_approver, get_lifecycle

    try:
        lifecycle = get_lifecycle(key)
    except KeyError:
        raise Http404(key) from None
    obj = get_object_or_404(lifecycle.visible(request.user), pk=pk)
    try:
        t = lifecycle.transition(name)
        approver = None
        if t.second_approver:
            approver = authenticate_approver(request, request.POST.get("approver", ""),
                                             request.POST.get("approver_password", ""))
        lifecycle.perform(request.user, obj, name, note=request.POST.get("note", ""), approver=approver)
        messages.success(request, str(done) if done else _("已完成:%(label)s") % {"label": t.label})
    except ServiceError as exc:
        for err in exc.as_list():
            messages.error(request, err["message"])
    except ScopeError as exc:
        messages.error(request, str(exc.message))
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)
