"""Monitoring pages (监测预警): the alarm list (per alarm or per station, filters, acknowledge and close, live over
SSE), the latest value of every visible sensor, one sensor's chart with its thresholds, and the dead letters. No
logic beyond calling queries and services."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Max, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tianmu.core.attention import last_seen, mark_seen
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Event
from tianmu.core.names import region_name
from tianmu.core.registry.kinds import get_kind
from tianmu.core.scope import can

from .basins import basins_geojson, outline_svg, visible_basins
from .choices import AlarmKind, AlarmStatus, Level, Rule, SensorType
from .conf import conf
from .explain import alarm_detail
from .lifecycles import ALARM
from .models import SensorLatest
from .queries import (
    LEVEL_ORDER_LATEST,
    AlarmFilter,
    alarm_counts,
    alarm_place,
    alarm_towns,
    alarms,
    alarms_by_station,
    can_see_dead_letters,
    chart_thresholds,
    dead_letters,
    latest_values,
    open_alarms_by_group,
    order_alarms,
    parse_time,
    sensor_by_pk,
    station_groups,
    station_level_counts,
    visible_station,
)
from .rainfall import (
    BASIN_STATES,
    WINDOWS,
    areal_rainfall,
    areal_xlsx,
    basin_detail,
    basin_rainfall,
    parse_window,
    rain_classes,
    station_rainfall,
    stations_xlsx,
)
from .services.alarms import acknowledge_station_alarms
from .services.basins import import_basins

__all__ = ["latest_page", "alarm_page", "alarm_detail_page", "alarm_export", "attention", "acknowledge_station_view",
           "sensor_page", "dead_letter_page", "map_layer_config", "rainfall_page", "rainfall_export", "areal_page",
           "areal_export", "rain_layer_config", "basin_rain_page", "basin_import_page", "basin_export", "basin_panel",
           "basin_layer_config"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
IMPORT_DIR = Path(settings.VAR_DIR) / "imports"

PAGE_SIZE = 50
SEEN_KEY = "sensing.alarms"  # the alarm list's "new since you last looked" mark (core/attention.py)
ALERT_TYPES = ("sensing.alarm.opened", "sensing.alarm.escalated")
MAX_ALERTS = 10
MAX_EVENTS = 500


def _tabs(request, current: str) -> dict:
    return {"tab": current, "show_dead_letters": can_see_dead_letters(request.user)}


LATEST_PAGE_SIZE = 100
MAX_SEARCH = 100


@login_required
@require_safe
def latest_page(request):
    """实时监测: every visible sensor's latest value, with search (code, name, station), town, sensor type and
    "alarming only" filters, paged; bad filter values are reported, not applied."""
    get = request.GET
    alarming = get.get("alarming") == "1"
    values = {"q": get.get("q", "").strip()[:MAX_SEARCH], "town": get.get("town", ""),
              "sensor_type": get.get("sensor_type", ""), "alarming": alarming}
    errors = []
    if values["town"] and not (values["town"].isdigit() and len(values["town"]) == 9):
        errors.append({"field": "town", "message": _("不是有效的选项")})
        values["town"] = ""
    try:
        qs = latest_values(request.user, alarming=alarming, region=values["town"] or None,
                           sensor_type=values["sensor_type"] or None)
    except ServiceError as exc:
        errors += exc.as_list()
        values["sensor_type"] = ""
        qs = latest_values(request.user, alarming=alarming, region=values["town"] or None)
    if values["q"]:
        q = values["q"]
        qs = qs.filter(Q(sensor__code__icontains=q) | Q(sensor__name__icontains=q)
                       | Q(sensor__station__name__icontains=q) | Q(sensor__station__code__icontains=q))
    if alarming:
        qs = qs.annotate(rank=LEVEL_ORDER_LATEST).order_by("-rank", "sensor__code")
    page = Paginator(qs, LATEST_PAGE_SIZE).get_page(get.get("page"))
    query = get.copy()
    query.pop("page", None)
    return render(request, "sensing/latest.html", {
        "rows": list(page.object_list), "page": page, "query": query.urlencode(), "f": values, "errors": errors,
        "alarming": alarming, "towns": list(alarm_towns(request.user)), "sensor_types": list(SensorType.choices),
        **_tabs(request, "latest")}, status=400 if errors else 200)


def _several(get, name: str) -> list[str]:
    """A filter that takes several values: repeated (level=red&level=orange) or comma-separated."""
    return list(dict.fromkeys(v.strip() for raw in get.getlist(name) for v in raw.split(",") if v.strip()))


def _alarm_filter(request) -> tuple[AlarmFilter, dict, list]:
    """The filter from the query string; unknown values are reported, not applied. Levels and towns take
    several values each, kept in every link of the page (paging, chips, views, export)."""
    get = request.GET
    values = {"status": get.get("status") or "active", "levels": _several(get, "level"), "kind": get.get("kind") or "",
              "rule": get.get("rule") or "", "towns": _several(get, "town"), "station": get.get("station") or "",
              "sensor": get.get("sensor") or "", "sort": "time" if get.get("sort") == "time" else "level",
              "view": "station" if get.get("view") == "station" else "list"}
    values["level"] = values["levels"][0] if len(values["levels"]) == 1 else ""  # one chip highlighted
    errors = []
    status = None if values["status"] == "all" else values["status"]
    towns = [t for t in values["towns"] if t.isdigit() and len(t) == 9]
    if len(towns) != len(values["towns"]):
        errors.append({"field": "town", "message": _("不是有效的选项")})
        values["towns"] = towns
    flt = AlarmFilter(status=status, level=tuple(values["levels"]) or None, kind=values["kind"] or None,
                      rule=values["rule"] or None, region=tuple(towns) or None, station=values["station"] or None,
                      sensor=values["sensor"] or None)
    return flt, values, errors


def _links(request) -> dict[str, str]:
    """Query strings for the page's own links, each keeping the filters it does not replace: the level chips
    (which add `level=`), the two views, and a station row's way to its alarms (which adds its station)."""
    keep = request.GET.copy()
    keep.pop("fragment", None)

    def without(*names, **extra) -> str:
        query = keep.copy()
        for name in ("page", *names):
            query.pop(name, None)
        query.update(extra)
        return query.urlencode()

    return {"level": without("level"), "as_list": without("view"), "as_stations": without("view", view="station"),
            "station": without("view", "station", "sensor"),
            "back_to_stations": without("view", "station", "sensor", view="station")}


def _alarm_rows(request, qs, values) -> tuple:
    """The per-alarm view: one page of alarms with what the user may do to each."""
    page = Paginator(order_alarms(qs.select_related("region__parent"), values["sort"]), PAGE_SIZE).get_page(
        request.GET.get("page"))
    rows = [{"alarm": a, "can_act": a.status != AlarmStatus.CLOSED and can(request.user, "sensing.alarm.acknowledge", a.region),
             "escalated": (a.last_level_change - a.opened_at).total_seconds() > 60} for a in page.object_list]
    return page, rows


def _station_rows(request, flt, values) -> tuple:
    """The per-station view: one page of stations, grouped and counted by the database; on the rows the user may
    write, the open alarms 确认全部 would acknowledge (all of the station's, whatever the filters)."""
    page = Paginator(alarms_by_station(request.user, flt, values["sort"]), PAGE_SIZE).get_page(
        request.GET.get("page"))
    rows = station_groups(request.user, list(page.object_list), flt)
    writable = [g["group"] for g in rows if can(request.user, "sensing.alarm.acknowledge", g["region"])]
    to_acknowledge = open_alarms_by_group(request.user, writable)
    for g in rows:
        g["to_acknowledge"] = to_acknowledge.get(g["group"], [])
    return page, rows


@login_required
@require_safe
def alarm_page(request):
    flt, values, errors = _alarm_filter(request)
    try:
        qs = alarms(request.user, flt)
    except ServiceError as exc:
        errors += exc.as_list()
        flt = AlarmFilter(status="active")
        qs = alarms(request.user, flt)
    summary_flt = AlarmFilter(status=flt.status, kind=flt.kind, rule=flt.rule, region=flt.region, station=flt.station,
                              sensor=flt.sensor)
    by_station = values["view"] == "station"
    if by_station:
        page, rows = _station_rows(request, flt, values)
        counts = station_level_counts(alarms(request.user, summary_flt))
    else:
        page, rows = _alarm_rows(request, qs, values)
        counts = alarm_counts(alarms(request.user, summary_flt))
    keep = request.GET.copy()
    keep.pop("fragment", None)
    here = request.path + (f"?{keep.urlencode()}" if keep else "")  # where an action returns to
    query = keep.copy()
    query.pop("page", None)
    context = {
        "page": page, "rows": rows, "f": values, "errors": errors, "query": query.urlencode(), "links": _links(request),
        "counts": [(lv.value, lv.label, counts.get(lv.value, 0)) for lv in reversed(Level)],
        "alarm_total": qs.count() if by_station else page.paginator.count,
        "station": visible_station(request.user, values["station"]),
        "statuses": [("active", _("未关闭")), *[(s.value, s.label) for s in AlarmStatus], ("all", _("全部"))],
        "levels": [(v.value, v.label) for v in Level], "kinds": list(AlarmKind.choices),
        "rules": list(Rule.choices), "towns": list(alarm_towns(request.user)),
        "stream_url": reverse("core:event_stream"), "here": here, "api_root": reverse("api:api-root"),
        **_tabs(request, "alarms"),
    }
    mark_seen(request.user, SEEN_KEY)  # the user is looking at the list (a live refresh included)
    if request.GET.get("fragment") == "1":  # the live refresh of a page already shown (with its errors)
        return render(request, "sensing/_alarm_live.html", context)
    return render(request, "sensing/alarms.html", context, status=400 if errors else 200)  # with what is wrong


EXPORT_MAX_ROWS = 100_000  # far above a storm's alarms; a sheet says so when it stops there


def _local(dt):
    return timezone.localtime(dt).replace(tzinfo=None) if dt else None  # Beijing time, as Excel shows it


def alarms_xlsx(qs) -> tuple[bytes, int]:
    """The alarms of a filtered list as one sheet (every text cell through core/sheets.py: never a formula)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    from tianmu.core.names import person_name
    from tianmu.core.sheets import append_row

    wb = Workbook()
    ws = wb.active
    ws.title = str(_("告警"))
    heads = [_("编号"), _("等级"), _("最高等级"), _("告警规则"), _("监测指标"), _("类别"), _("监测站"), _("传感器编码"),
             _("镇街"), _("村社"), _("当前值"), _("阈值"), _("单位"), _("告警时间(北京时间)"), _("数据时间"),
             _("状态"), _("条件解除时间"), _("确认人"), _("确认时间"), _("确认说明"), _("关闭人"), _("关闭时间"),
             _("关闭说明")]
    append_row(ws, [str(h) for h in heads])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE7F3")
    n = 0
    for a in qs.select_related("region__parent")[:EXPORT_MAX_ROWS].iterator(chunk_size=2000):
        town, village = (a.region.parent, a.region) if a.region.level == "village" else (a.region, None)
        append_row(ws, [a.pk, a.get_level_display(), a.get_peak_level_display(), a.get_rule_display(),
                        a.get_metric_display(), a.get_kind_display(),
                        a.station.name if a.station_id else a.sensor.name, a.sensor.code,
                        region_name(town), region_name(village), a.value, a.threshold, a.sensor.unit,
                        _local(a.opened_at), _local(a.observed_at), a.get_status_display(), _local(a.cleared_at),
                        person_name(a.acknowledged_by), _local(a.acknowledged_at), a.acknowledged_note,
                        person_name(a.closed_by), _local(a.closed_at), a.closed_note])
        n += 1
    for col, width in zip("ABCDEFGHIJKLMNOPQRSTUVW", (8, 6, 8, 18, 14, 10, 24, 16, 12, 12, 9, 9, 6, 18, 18, 8, 18,
                                                       10, 18, 24, 10, 18, 24), strict=True):
        ws.column_dimensions[col].width = width
    for row in ws.iter_rows(min_row=2, min_col=14, max_col=22):
        for cell in row:
            if cell.column in (14, 15, 17, 19, 22):
                cell.number_format = "yyyy-mm-dd hh:mm"
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), n


@login_required
@require_safe
def alarm_export(request):
    """导出Excel on the alarm list: exactly the rows the list's filters select (every page), in its order."""
    flt, values, errors = _alarm_filter(request)
    try:
        qs = alarms(request.user, flt)
    except ServiceError as exc:
        errors += exc.as_list()
    if errors:
        return JsonResponse({"code": "validation_error", "errors": errors}, status=422)
    content, _n = alarms_xlsx(order_alarms(qs, values["sort"]))
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''alarms-{stamp}.xlsx"
    return response


def _alert(alarm) -> dict:
    """One desktop notification: the level and the place first, what was measured after."""
    place = alarm.station.name if alarm.station_id else alarm.sensor.name
    region = alarm.region.name if alarm.region.level != "village" else f"{alarm.region.parent.name} · {alarm.region.name}"
    value = "" if alarm.value is None else f" {alarm.value:g}{alarm.sensor.unit}"
    return {"id": alarm.pk, "level": alarm.level,
            "title": _("%(level)s告警:%(place)s") % {"level": alarm.get_level_display(), "place": place},
            "body": f"{alarm.get_rule_display()}{value} · {region}",
            "url": reverse("sensing:alarm", args=[alarm.pk])}


@login_required
@require_safe
def attention(request):
    """What every page polls (core/attention.js; declared on SensingConfig.attention): the alarms new since the
    user last opened the alarm list, and the alarms opened or escalated after `after` (an event id) at the
    `levels` asked for (red always; orange if the user chose it), in the user's region only."""
    levels = [lv for lv in request.GET.get("levels", "red").split(",") if lv in ("red", "orange")] or ["red"]
    seen = last_seen(request.user, SEEN_KEY)
    active = alarms(request.user, AlarmFilter(status="active"))
    new = active.filter(Q(opened_at__gt=seen) | Q(last_level_change__gt=seen)) if seen else active
    cursor = Event.objects.aggregate(m=Max("id"))["m"] or 0
    raw = request.GET.get("after", "")
    alerts = []
    if raw.isdigit() and len(raw) < 19:  # not the first call of a page (that one only learns where to start)
        payloads = Event.objects.filter(id__gt=int(raw), id__lte=cursor, type__in=ALERT_TYPES).order_by(
            "-id").values_list("payload", flat=True)[:MAX_EVENTS]
        wanted = list(dict.fromkeys(p.get("alarm") for p in payloads if p.get("level") in levels))
        if wanted:  # the alarms the user may see, at a level they asked for now
            found = {a.pk: a for a in alarms(request.user).select_related("region__parent").filter(
                pk__in=wanted, level__in=levels)}
            alerts = [_alert(found[pk]) for pk in wanted if pk in found][:MAX_ALERTS]
    return JsonResponse({"count": new.count(), "cursor": cursor, "alerts": alerts, "levels": levels})


def _back(request):
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return redirect(target)
    return redirect("sensing:alarms")


@login_required
@require_POST
def acknowledge_station_view(request, key: str):
    """确认全部 on the per-station view, without JavaScript (alarms.js posts the same form to the API and stays
    on the page). `seen` is the guard the page drew: "id:level" of each open alarm, space-separated."""
    place = alarm_place(request.user, key)
    seen = [tuple(token.partition(":")[::2]) for token in request.POST.get("seen", "").split()]
    try:
        n = acknowledge_station_alarms(request.user, place, request.POST.get("note", ""), seen=seen)
        messages.success(request, ngettext("已确认 %(name)s 的 %(n)d 条告警", "已确认 %(name)s 的 %(n)d 条告警", n) % {
            "name": place.name, "n": n})
    except ServiceError as exc:
        for msgs in exc.errors.values():
            for msg in msgs:
                messages.error(request, str(msg))  # in the page's language
    except ScopeError as exc:
        messages.error(request, str(exc.message))
    return _back(request)


@login_required
@require_safe
def alarm_detail_page(request, pk: int):
    """One alarm explained (explain.py): level history, what triggered it against which threshold row, the data
    around it, the hazard zones it stands for, and the lifecycle's buttons the user may press now. Another
    region's alarm is a 404."""
    detail = alarm_detail(request.user, pk)
    alarm = detail.alarm
    return render(request, "sensing/alarm.html", {
        "d": detail, "a": alarm, "transitions": ALARM.available(request.user, alarm),
        "lifecycle_key": ALARM.key, "obj": alarm, **_tabs(request, "alarms"),
    })


@login_required
@require_safe
def sensor_page(request, pk: int):
    sensor = sensor_by_pk(request.user, pk)
    latest = SensorLatest.objects.filter(pk=sensor.pk).first()
    recent = list(order_alarms(alarms(request.user, AlarmFilter(sensor=sensor.code)), "time")[:20])
    config = {
        "code": sensor.code, "name": sensor.name, "unit": sensor.unit, "sensorType": sensor.sensor_type,
        "readingsUrl": reverse("api:api-root") + f"sensing/sensors/{sensor.code}/readings",
        "thresholds": chart_thresholds(sensor),
        "labels": {"raw": _("原始数据"), "hourly": _("小时统计"), "value": _("数值"), "rain_1h": _("滑动1小时雨量"),
                   "hourly_total": _("小时雨量"), "hourly_max": _("小时最高"), "hourly_avg": _("小时平均"),
                   "daily": _("日统计"), "daily_total": _("日雨量"), "daily_max": _("日最高"),
                   "daily_avg": _("日平均"), "disp_24h": _("24小时位移量"), "no_data": _("该时段没有数据"), "load_failed": _("加载失败,请重试"),
                   "loading": _("加载中…")},
    }
    return render(request, "sensing/sensor.html", {
        "sensor": sensor, "latest": latest, "recent": recent, "config": config,
        "thresholds": config["thresholds"], **_tabs(request, "latest"),
    })


@login_required
@require_safe
def dead_letter_page(request):
    if not can_see_dead_letters(request.user):
        raise PermissionDenied(_("只有区级管理人员可以查看死信"))
    source = request.GET.get("source") or None
    qs = dead_letters(request.user, source=source)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    sources = sorted(set(dead_letters(request.user).values_list("source", flat=True).distinct()))
    rows = [{"letter": d, "code": d.reason.split(":", 1)[0].split(" ")[-1] if ":" in d.reason else ""}
            for d in page.object_list]
    return render(request, "sensing/dead_letters.html", {
        "page": page, "rows": rows, "source": source or "", "sources": sources, **_tabs(request, "dead_letters"),
    })


def _graded(value, classes) -> dict:
    """A rainfall cell: the value with its grade's name and colour (GB/T 28592 classes, rainfall.rain_classes)."""
    grade = None
    if value is not None:
        for c in classes:
            if value >= c["lo"]:
                grade = c
    return {"value": value, "name": grade["name"] if grade else "", "color": grade["color"] if grade else "",
            "dark": bool(grade) and classes.index(grade) >= 3}


def _rain_query(request) -> tuple[dict, list, dict]:
    """The rainfall pages' `at`, `town`, `window` and `sort` from the query string; a bad value is reported and
    its default used."""
    get = request.GET
    values = {"at": (get.get("at") or "").strip()[:40], "town": (get.get("town") or "").strip()[:12],
              "window": get.get("window") or "24", "sort": get.get("sort") or ""}
    parsed: dict = {"at": None, "town": None, "window": 24}
    errors = []
    try:
        parsed["at"] = parse_time("at", values["at"] or None)
    except ServiceError as exc:
        errors += exc.as_list()
    if values["town"]:
        if values["town"].isdigit() and len(values["town"]) == 9:
            parsed["town"] = values["town"]
        else:
            errors.append({"field": "town", "message": _("不是有效的选项")})
    try:
        parsed["window"] = parse_window(values["window"])
    except ServiceError as exc:
        errors += exc.as_list()
    return values, errors, parsed


def _rain_context(request, values, parsed) -> dict:
    keep = request.GET.copy()
    keep.pop("sort", None)
    return {"f": values, "towns": list(alarm_towns(request.user)), "windows": WINDOWS, "keep": keep.urlencode(),
            "classes": rain_classes(parsed["window"]), **_tabs(request, "rainfall")}


@login_required
@require_safe
def rainfall_page(request):
    """雨情: every visible gauge's 1/3/6/12/24 h and process rainfall at a chosen time, sortable, by town."""
    values, errors, parsed = _rain_query(request)
    sort = values["sort"] or "h24"
    try:
        at, rows = station_rainfall(request.user, parsed["at"], parsed["town"], sort)
    except ServiceError as exc:
        errors += exc.as_list()
        at, rows = station_rainfall(request.user, None, None, "h24")
        sort = "h24"
    columns = [(f"h{h}", _("%(h)s小时") % {"h": h}) for h in WINDOWS]
    grades = {h: rain_classes(h) for h in WINDOWS}
    table = [{"r": r, "cells": [_graded(r.totals.get(h), grades[h]) for h in WINDOWS]} for r in rows]
    return render(request, "sensing/rainfall.html", {
        "at": at, "rows": table, "sort": sort, "errors": errors, "columns": columns,
        "reporting": sum(r.reporting for r in rows), **_rain_context(request, values, parsed),
    }, status=400 if errors else 200)


@login_required
@require_safe
def rainfall_export(request):
    values, errors, parsed = _rain_query(request)
    try:
        if errors:
            raise ServiceError({e["field"]: [e["message"]] for e in errors})
        at, rows = station_rainfall(request.user, parsed["at"], parsed["town"], values["sort"] or "h24")
    except ServiceError as exc:
        for msg in exc.as_list():
            messages.error(request, str(msg["message"]))
        return redirect("sensing:rainfall")
    from django.http import HttpResponse
    from django.utils import timezone

    stamp = timezone.localtime(at).strftime("%Y%m%d-%H%M")
    response = HttpResponse(stations_xlsx(at, rows),
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''rainfall-{stamp}.xlsx"
    return response


AREAL_BY = ("town", "basin")
BASIN_IMPORT = "sensing.basins.import"
SHARES_SHOWN = 15  # the largest Thiessen shares listed open; the rest behind 其余 N 个雨量站


def _areal(request, values, parsed, by: str, sort: str) -> tuple[dict, str]:
    """The town or basin table; a bad sort is refused by the service, reported, and the default used."""
    compute = basin_rainfall if by == "basin" else areal_rainfall
    return compute(request.user, parsed["at"], parsed["window"], sort), sort


@login_required
@require_safe
def areal_page(request):
    """面雨量: every visible town's (按镇街) or river basin's (按流域, ?by=basin) areal rainfall (Thiessen
    polygons) over a window and for the process."""
    values, errors, parsed = _rain_query(request)
    by = request.GET.get("by") if request.GET.get("by") in AREAL_BY else "town"
    sort = values["sort"] or "value"
    try:
        if errors:
            raise ServiceError({})
        out, sort = _areal(request, values, parsed, by, sort)
    except ServiceError as exc:
        errors += exc.as_list()
        sort = "value"
        out = (basin_rainfall if by == "basin" else areal_rainfall)(request.user, None, parsed["window"], "value")
    classes = rain_classes(parsed["window"])
    rows = out["basins"] if by == "basin" else out["towns"]
    for row in rows:
        row["cell"] = _graded(row["value"], classes)
        if by == "basin":
            row["label"] = _basin_label(row)
            row["state_label"] = BASIN_STATES[row["state"]]
    keep_by = request.GET.copy()
    keep_by.pop("by", None)
    keep_by.pop("sort", None)
    return render(request, "sensing/areal.html", {
        "at": out["at"], "rows": rows, "gauges": out["gauges"], "sort": sort, "errors": errors, "by": by,
        "keep_by": keep_by.urlencode(), "can_import": can(request.user, BASIN_IMPORT),
        **_rain_context(request, values, parsed),
    }, status=400 if errors else 200)


def _basin_label(row: dict) -> str:
    """A basin's name in the page's language (its English name on English pages when it has one)."""
    english = (translation.get_language() or "").startswith("en")
    return row["name_en"] if english and row.get("name_en") else row["name"]


@login_required
@require_safe
def areal_export(request):
    """The town or basin areal rainfall table as .xlsx (text cells never formulas: core.sheets)."""
    values, errors, parsed = _rain_query(request)
    by = request.GET.get("by") if request.GET.get("by") in AREAL_BY else "town"
    try:
        if errors:
            raise ServiceError({e["field"]: [e["message"]] for e in errors})
        out, _sort = _areal(request, values, parsed, by, values["sort"] or "value")
    except ServiceError as exc:
        for msg in exc.as_list():
            messages.error(request, str(msg["message"]))
        return redirect(reverse("sensing:areal") + ("?by=basin" if by == "basin" else ""))
    stamp = timezone.localtime(out["at"]).strftime("%Y%m%d-%H%M")
    response = HttpResponse(areal_xlsx(out, by), content_type=XLSX)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''areal-{by}-{stamp}.xlsx"
    return response


@login_required
@require_safe
def basin_rain_page(request, code: str):
    """One basin's areal rainfall with its Thiessen weights: which gauges, their shares and totals."""
    values, errors, parsed = _rain_query(request)
    try:
        if errors:
            raise ServiceError({})
        out = basin_detail(request.user, code, parsed["at"], parsed["window"])
    except ServiceError as exc:
        errors += exc.as_list()
        out = basin_detail(request.user, code, None, parsed["window"])
    classes = rain_classes(parsed["window"])
    out["cell"] = _graded(out["value"], classes)
    for share in out["shares"]:
        share["percent"] = share["share"] * 100
    return render(request, "sensing/basin_rain.html", {
        "b": out, "basin": out["_basin"], "label": region_name(out["_basin"]), "at": out["at"], "errors": errors,
        "state_label": BASIN_STATES[out["state"]], "hidden_percent": out["hidden_share"] * 100,
        "top": out["shares"][:SHARES_SHOWN], "rest": out["shares"][SHARES_SHOWN:],
        **_rain_context(request, values, parsed),
    }, status=400 if errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def basin_import_page(request):
    """GeoJSON import of river basins. Step 1: upload → dry run listing every bad feature (nothing written).
    Step 2: confirm → every feature written, or none."""
    if not can(request.user, BASIN_IMPORT):
        raise ScopeError()
    context: dict = {"max_mb": f"{conf('SENSING_BASIN_MAX_BYTES') / 1024 / 1024:g}",
                     "max_vertices": conf("SENSING_BASIN_MAX_VERTICES")}
    if request.method == "POST":
        IMPORT_DIR.mkdir(parents=True, exist_ok=True)
        token = request.POST.get("token", "")
        if token:
            try:
                path = IMPORT_DIR / f"{uuid.UUID(token)}.geojson"
            except ValueError:  # not a token this page gave out
                path = None
            if path is None or not path.exists() or request.session.get(f"import:{token}") != "basins":
                messages.error(request, _("导入会话已过期,请重新上传"))
                return redirect("sensing:basin_import")
            report = import_basins(request.user, path.read_bytes(), dry_run=False)
            if report.ok:
                path.unlink(missing_ok=True)
                messages.success(request, _("导入完成:新增 %(c)s 条,修改 %(u)s 条,%(n)s 条无变化") % {
                    "c": report.created, "u": report.updated, "n": report.unchanged})
                return redirect("records:list", slug="basins")
            context["report"] = _labelled_basin(report)
        elif "file" in request.FILES:
            upload = request.FILES["file"]
            most = int(conf("SENSING_BASIN_MAX_BYTES"))
            data = upload.read(most + 1)
            # "Import at once if every feature passes" (dry_run=false): one step, as the API's import.
            direct = request.POST.get("dry_run") == "false"
            report = import_basins(request.user, data, dry_run=not direct)
            if direct and report.ok:
                messages.success(request, _("导入完成:新增 %(c)s 条,修改 %(u)s 条,%(n)s 条无变化") % {
                    "c": report.created, "u": report.updated, "n": report.unchanged})
                return redirect("records:list", slug="basins")
            token = ""
            if report.ok:
                token = str(uuid.uuid4())
                (IMPORT_DIR / f"{token}.geojson").write_bytes(data)
                request.session[f"import:{token}"] = "basins"
            context.update({"report": _labelled_basin(report), "token": token})
        else:
            messages.error(request, _("请选择要上传的 GeoJSON 文件"))
    return render(request, "sensing/basin_import.html", context)


def _labelled_basin(report):
    labels = {"geometry": _("边界"), "file": _("文件"), "feature": _("要素"), "region": _("区划代码"),
              "__all__": ""}
    kind = get_kind("basins")
    for err in report.errors:
        name = err.get("field") or ""
        if name in labels:
            err["field_label"] = labels[name]
        else:
            try:
                err["field_label"] = kind.label_of(name)
            except Exception:  # noqa: BLE001 -- a field the model does not have: show its name
                err["field_label"] = name
    return report


@login_required
@require_safe
def basin_export(request):
    """The basins the user may read as a GeoJSON FeatureCollection (the import's format)."""
    body = json.dumps(basins_geojson(visible_basins(request.user)), ensure_ascii=False)
    response = HttpResponse(body, content_type="application/geo+json; charset=utf-8")
    response["Content-Disposition"] = "attachment; filename*=UTF-8''basins.geojson"
    return response


def basin_panel(request, kind, obj) -> dict:
    """The basin detail page's panel: the outline on a map, its area, its sub-basins, links to its areal
    rainfall and Thiessen weights and to the GeoJSON import."""
    children = list(obj.children.order_by("code").values("pk", "code", "name"))
    return {"outline": outline_svg(obj.boundary), "area": obj.area_km2,
            "children": children, "can_import": can(request.user, BASIN_IMPORT)}


def basin_layer_config(request) -> dict:
    """The command map's river basin layer (sensing/basinmap.js): endpoint and texts. It follows the rainfall
    layer's window and time controls."""
    return {
        "url": reverse("api:api-root") + "map/basins",
        "detailUrl": "/sensing/rainfall/basins/{code}/",
        "labels": {"load_failed": _("流域加载失败"), "mm": _("毫米"), "no_gauge": _("无站:流域内及附近没有雨量站数据"),
                   "areal": _("面雨量"), "process": _("过程面雨量"), "details": _("站点权重")},
    }


def map_layer_config(request) -> dict:
    """The command map's monitoring overlays (sensing/map.js, declared on SensingConfig): endpoints, links and
    texts, translated on the server so the overlay follows the chosen language."""
    return {
        "mapApi": reverse("api:api-root") + "map/",
        "sensorUrl": "/sensing/sensors/{id}/",  # a sensor's chart page
        "alarmUrl": "/sensing/alarms/{id}/",  # an alarm's detail page
        "alarmsPage": reverse("sensing:alarms"),
        "eventsUrl": reverse("core:event_stream"),
        "labels": {
            "load_failed": _("加载失败,请刷新重试"),
            "sensor_chart": _("监测曲线"),
            "alarm_detail": _("告警详情"),
            "no_alarm": _("无告警"),
            "observed": _("观测"),
            "no_reading": _("暂无数据"),
            "threshold": _("阈值"),
            "acknowledged": _("已确认"),
            "cleared": _("条件已解除"),
            "no_alarms": _("当前没有未关闭的告警"),
            "more_alarms": _("另有 {n} 条,见告警列表"),
            "levels": {v: str(label) for v, label in Level.choices},
        },
    }


def rain_layer_config(request) -> dict:
    """The command map's rainfall distribution layer (sensing/rainmap.js): endpoint, windows and texts."""
    return {
        "url": reverse("api:api-root") + "map/rainfall",
        "tableUrl": reverse("sensing:rainfall"),
        "windows": list(WINDOWS),
        "labels": {
            "load_failed": _("雨量分布加载失败"),
            "window": _("{h} 小时"),
            "at_now": _("现在"),
            "no_data": _("24 小时无数据"),
            "mm": _("毫米"),
            "stats": _("{n} 站有数据,最大 {max} 毫米({name})"),
            "below": _("无雨(<0.1)"),
        },
    }
