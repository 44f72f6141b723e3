"""Monitoring pages: the latest value of every visible sensor, and the alarm list where people acknowledge
and close alarms. No logic beyond calling queries and services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.scope import can_write_region

from .choices import AlarmStatus, Level
from .queries import AlarmFilter, alarms, latest_values
from .services import acknowledge_alarm, close_alarm

__all__ = ["latest_page", "alarm_page", "alarm_action"]


@login_required
def latest_page(request):
    try:
        rows = list(latest_values(request.user, alarming=request.GET.get("alarming") == "1")[:2000])
    except ServiceError:
        rows = []
    return render(request, "sensing/latest.html", {"rows": rows, "alarming": request.GET.get("alarming") == "1"})


@login_required
def alarm_page(request):
    status = request.GET.get("status") or "active"
    level = request.GET.get("level") or None
    try:
        qs = alarms(request.user, AlarmFilter(status=status, level=level))
        errors = []
    except ServiceError as exc:
        qs, errors = alarms(request.user).none(), exc.as_list()
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    rows = [{"alarm": a, "can_act": can_write_region(request.user, a.region)} for a in page.object_list]
    return render(request, "sensing/alarms.html", {
        "page": page, "rows": rows, "status": status, "level": level or "", "errors": errors,
        "statuses": [("active", _("未关闭"))] + [(s.value, s.label) for s in AlarmStatus],
        "levels": [(v.value, v.label) for v in Level],
    })


@login_required
@require_POST
def alarm_action(request, pk: int, action: str):
    alarm = get_object_or_404(alarms(request.user), pk=pk)
    note = request.POST.get("note", "")
    try:
        if action == "acknowledge":
            acknowledge_alarm(request.user, alarm, note)
            messages.success(request, _("告警已确认"))
        elif action == "close":
            close_alarm(request.user, alarm, note)
            messages.success(request, _("告警已关闭"))
        else:
            messages.error(request, _("不支持的操作"))
    except ServiceError as exc:
        for err in exc.as_list():
            messages.error(request, err["message"])
    except ScopeError as exc:
        messages.error(request, str(exc.message))
    return redirect(request.POST.get("next") or "sensing:alarms")
