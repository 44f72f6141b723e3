"""Generic pages for every record kind: list (filters, search, statistics), detail (with history), create,
edit, delete, Excel import with a dry run, and Excel/GeoJSON export (GeoJSON and the detail page's map for
placed kinds only). No logic beyond calling services."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms.utils import ErrorDict
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from ..errors import ScopeError, ServiceError
from ..models import Region
from ..names import region_name
from ..plugins import record_panels, resolve
from ..scope import can, can_write_region, region_prefix, write_prefix
from .api import change_history
from .forms import build_form
from .io import XLSX_CONTENT_TYPE, export_geojson, export_xlsx, import_xlsx, template_xlsx
from .kinds import get_kind, mask
from .queries import (
    RecordFilter,
    apply_filter,
    by_distance,
    choice_label,
    is_radius_query,
    statistics,
    visible,
)
from .services import create_record, delete_record, update_record

PAGE_SIZE = 50
IMPORT_DIR = Path(settings.VAR_DIR) / "imports"


def _kind(slug):
    try:
        return get_kind(slug)
    except KeyError as exc:
        raise Http404 from exc


def _column(kind, obj, name):
    if name == "region":
        return region_name(obj.region)
    if name in kind.computed:
        return getattr(obj, name, None)
    value = getattr(obj, name)
    f = kind.field(name)
    if f.is_relation:
        return str(value) if value is not None else ""
    if f.choices:
        return choice_label(kind, name, value)
    if isinstance(value, bool):
        return _("是") if value else _("否")
    return value


def _distance_text(metres: float) -> str:
    if metres < 1000:
        return _("%(n)s 米") % {"n": round(metres)}
    return _("%(n)s 公里") % {"n": f"{metres / 1000:.1f}"}


def _field_label(kind, name):
    try:
        return kind.field(name).verbose_name
    except Exception:  # noqa: BLE001 - a field removed since the change was recorded
        return name


def _columns(kind):
    out = []
    for name in kind.list_columns:
        if name in kind.computed:
            out.append({"name": name, "label": kind.label_of(name), "numeric": True})
            continue
        f = kind.field(name)
        numeric = f.get_internal_type() in {"PositiveIntegerField", "IntegerField", "FloatField"}
        out.append({"name": name, "label": f.verbose_name, "numeric": numeric})
    return out


def _filter_choices(kind):
    out = []
    for name, (label, _q) in kind.flag_filters.items():
        out.append({"name": name, "label": label, "choices": [("true", _("是"))]})
    for name in kind.filter_fields:
        f = kind.field(name)
        if f.get_internal_type() == "BooleanField":
            choices = [("true", _("是")), ("false", _("否"))]
        else:
            choices = [(str(v), str(lbl)) for v, lbl in f.flatchoices]
        out.append({"name": name, "label": f.verbose_name, "choices": choices})
    return out


def _regions_for_filter(actor):
    prefix = region_prefix(actor)
    qs = Region.objects.exclude(level="district").order_by("code")
    if prefix:
        qs = qs.filter(code__startswith=prefix)
    elif prefix is None:
        qs = qs.none()
    return qs


@login_required
@require_safe
def record_list(request, slug):
    kind = _kind(slug)
    base = visible(request.user, kind)
    near = None
    try:
        flt = RecordFilter.from_params(kind, request.GET)
        qs = apply_filter(base, kind, flt).order_by("code")
        filter_errors = []
    except ServiceError as exc:
        qs, filter_errors = base.none(), exc.as_list()
    else:
        if is_radius_query(flt):  # "near this point": nearest first, with the distance, shown as a chip
            params = request.GET.copy()
            for name in ("lon", "lat", "radius", "page"):
                params.pop(name, None)
            near = {"lon": flt.lon, "lat": flt.lat, "radius_km": flt.radius / 1000,
                    "clear": urlencode(params, doseq=True),
                    "order": by_distance(qs, flt.lon, flt.lat, flt.radius)}
    if near is not None:
        page = Paginator(near["order"], PAGE_SIZE).get_page(request.GET.get("page"))
        objs = qs.in_bulk([pk for _d, pk in page.object_list])
        listed = [(objs[pk], dist) for dist, pk in page.object_list if pk in objs]
    else:
        page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
        listed = [(o, None) for o in page.object_list]
    columns = _columns(kind)
    hidden = kind.masked_fields(request.user)
    rows = [{"obj": o, "distance_m": dist, "distance_text": _distance_text(dist) if dist is not None else "",
             "cells": [{"value": mask(_column(kind, o, c["name"])) if c["name"] in hidden
                        else _column(kind, o, c["name"]), "numeric": c["numeric"]} for c in columns]}
            for o, dist in listed]
    stats = statistics(qs, kind)
    for town in stats["by_town"]:
        town["sum_values"] = [town[f] for f in kind.sum_fields]
    sums = [{"label": kind.field(f).verbose_name, "value": stats["sums"][f]} for f in kind.sum_fields]
    params = request.GET.copy()
    params.pop("page", None)
    return render(request, "core/records/list.html", {
        "kind": kind, "slug": slug, "page": page, "rows": rows, "columns": columns, "sums": sums,
        "filters": _filter_choices(kind), "regions": _regions_for_filter(request.user), "params": request.GET,
        "querystring": urlencode(params, doseq=True), "stats": stats, "filter_errors": filter_errors,
        "can_write": write_prefix(request.user) is not None, "near": near,
        "links": [{"label": label, "url": reverse(name) + query} for label, name, query, action in kind.list_links
                  if not action or can(request.user, action)],
    }, status=400 if filter_errors else 200)  # the page, with what is wrong with its filters


@login_required
@require_safe
def record_detail(request, slug, pk):
    kind = _kind(slug)
    obj = get_object_or_404(visible(request.user, kind), pk=pk)
    fields = []
    hidden = kind.masked_fields(request.user)
    for name in kind.editable_fields():
        f = kind.field(name)
        value = f"{region_name(obj.region)} ({obj.region.code})" if name == "region" else _column(kind, obj, name)
        if name in hidden:
            value = mask(value)
        fields.append({"label": f.verbose_name, "value": value})
    labels = {"created": _("新增"), "changed": _("修改"), "deleted": _("删除")}
    history = change_history(obj)
    for row in history:
        for name in hidden & set(row["changes"]):
            row["changes"][name] = [mask(v) for v in row["changes"][name]]
        row["action_label"] = labels.get(row["action"], row["action"])
        row["when_text"] = row["when"][:16].replace("T", " ")
        row["changes_labelled"] = [(_field_label(kind, f), old, new) for f, (old, new) in row["changes"].items()]
    point = (json.dumps({"lon": obj.lon, "lat": obj.lat, "name": obj.name, "color": kind.color})
             if kind.placed() else None)
    lifecycle = kind.lifecycle
    can_write = can_write_region(request.user, obj.region)
    panels = []
    for panel in record_panels(kind):
        context = resolve(panel.context)(request, kind, obj)
        if context is not None:
            panels.append({"key": panel.key, "template": panel.template, "context": context,
                           "scripts": panel.scripts, "styles": panel.styles})
    return render(request, "core/records/detail.html", {
        "kind": kind, "slug": slug, "obj": obj, "fields": fields, "history": history,
        "can_write": can_write, "point": point,
        # A writer reading a resource kept above their region (up the chain, core/scope.py): read-only, say why.
        "held_above": not can_write and write_prefix(request.user) is not None,
        "panels": panels,
        "state": lifecycle.state_label(getattr(obj, lifecycle.field)) if lifecycle else None,
        "transitions": lifecycle.available(request.user, obj) if lifecycle else [],
        "lifecycle_key": lifecycle.key if lifecycle else "",
    })


def _form_page(request, kind, slug, obj=None):
    if request.method == "POST":
        data = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        # Unchecked boxes are absent from a browser form: they mean False.
        for name in kind.editable_fields():
            if kind.field(name).get_internal_type() == "BooleanField" and name not in data:
                data[name] = False
        try:
            saved = create_record(request.user, kind, data) if obj is None else update_record(request.user, kind,
                                                                                             obj, data)
        except ServiceError as exc:
            form = build_form(kind, request.POST, instance=obj, actor=request.user)
            form.is_valid()
            # The service ran this same form: show its messages only (its scope-neutral one for a code in use
            # instead of the form's own).
            form._errors = ErrorDict()
            for field, msgs in exc.errors.items():
                for msg in msgs:
                    form.add_error(field if field in form.fields else None, str(msg))
        else:
            messages.success(request, _("已保存:%(name)s") % {"name": saved.name})
            return redirect("records:detail", slug=slug, pk=saved.pk)
    else:
        form = build_form(kind, instance=obj, actor=request.user)
        if obj is not None:
            form.initial["region"] = obj.region.code
            for name in kind.link_fields():
                form.initial[name] = getattr(getattr(obj, name), "code", None)
    return render(request, "core/records/form.html", {"kind": kind, "slug": slug, "obj": obj, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def record_create(request, slug):
    kind = _kind(slug)
    if write_prefix(request.user) is None:
        raise ScopeError()
    return _form_page(request, kind, slug)


@login_required
@require_http_methods(["GET", "POST"])
def record_edit(request, slug, pk):
    kind = _kind(slug)
    obj = get_object_or_404(visible(request.user, kind), pk=pk)
    if not can_write_region(request.user, obj.region):
        raise ScopeError()
    return _form_page(request, kind, slug, obj)


@login_required
@require_http_methods(["GET", "POST"])
def record_delete(request, slug, pk):
    kind = _kind(slug)
    obj = get_object_or_404(visible(request.user, kind), pk=pk)
    if not can_write_region(request.user, obj.region):
        raise ScopeError()
    if request.method == "POST":
        try:
            delete_record(request.user, kind, obj)
        except ServiceError as exc:
            for item in exc.as_list():
                messages.error(request, item["message"])
            return redirect("records:detail", slug=slug, pk=pk)
        messages.success(request, _("已删除:%(name)s") % {"name": obj.name})
        return redirect("records:list", slug=slug)
    return render(request, "core/records/delete.html", {"kind": kind, "slug": slug, "obj": obj})


def _filtered(request, kind):
    try:
        return apply_filter(visible(request.user, kind), kind, RecordFilter.from_params(kind, request.GET))
    except ServiceError as exc:
        return JsonResponse({"code": "validation_error", "errors": exc.as_list()}, status=422)


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
    return response


@login_required
@require_safe
def record_export_xlsx(request, slug):
    kind = _kind(slug)
    qs = _filtered(request, kind)
    if isinstance(qs, HttpResponse):
        return qs
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return _download(export_xlsx(qs.order_by("code"), kind, masked=kind.masked_fields(request.user)), XLSX_CONTENT_TYPE, f"{slug}-{stamp}.xlsx")


@login_required
@require_safe
def record_export_geojson(request, slug):
    kind = _kind(slug)
    if not kind.placed():
        raise Http404
    qs = _filtered(request, kind)
    if isinstance(qs, HttpResponse):
        return qs
    body = json.dumps(export_geojson(qs.order_by("code"), kind), ensure_ascii=False)
    return _download(body, "application/geo+json", f"{slug}.geojson")


@login_required
@require_safe
def record_template(request, slug):
    kind = _kind(slug)
    return _download(template_xlsx(kind), XLSX_CONTENT_TYPE, f"{slug}-template.xlsx")


def _labelled(kind, report):
    """The import report with each field's heading as the person sees it in the sheet."""
    for err in report.errors:
        name = err.get("field")
        err["field_label"] = _("区划代码") if name == "region" else (_field_label(kind, name) if name else "")
    return report


@login_required
@require_http_methods(["GET", "POST"])
def record_import(request, slug):
    """Step 1: upload → dry run listing every problem. Step 2: confirm → write all rows or none."""
    kind = _kind(slug)
    if write_prefix(request.user) is None:
        raise ScopeError()
    context = {"kind": kind, "slug": slug}
    if request.method == "POST":
        IMPORT_DIR.mkdir(parents=True, exist_ok=True)
        update_existing = request.POST.get("update_existing") == "on"
        token = request.POST.get("token", "")
        if token:
            try:
                path = IMPORT_DIR / f"{uuid.UUID(token)}.xlsx"
            except ValueError:  # not a token this page gave out
                path = None
            if path is None or not path.exists() or request.session.get(f"import:{token}") != slug:
                messages.error(request, _("导入会话已过期,请重新上传"))
                return redirect("records:import", slug=slug)
            with path.open("rb") as fh:
                report = import_xlsx(request.user, kind, fh, dry_run=False, update_existing=update_existing)
            if report.ok:
                path.unlink(missing_ok=True)
                messages.success(request, _("导入完成:新增 %(c)s 条,修改 %(u)s 条,%(n)s 条无变化") % {
                    "c": report.created, "u": report.updated, "n": report.unchanged})
                return redirect("records:list", slug=slug)
            context["report"] = _labelled(kind, report)
        elif "file" in request.FILES:
            # The dry run reads the upload itself (refused before parsing when over the limits); only a file
            # that passes is kept for the confirmation step.
            upload = request.FILES["file"]
            report = import_xlsx(request.user, kind, upload, dry_run=True, update_existing=update_existing)
            token = ""
            if report.ok:
                token = str(uuid.uuid4())
                upload.seek(0)
                with (IMPORT_DIR / f"{token}.xlsx").open("wb") as fh:
                    for chunk in upload.chunks():
                        fh.write(chunk)
                request.session[f"import:{token}"] = slug
            context.update({"report": _labelled(kind, report), "token": token, "update_existing": update_existing})
        else:
            messages.error(request, _("请选择要上传的 Excel 文件"))
    return render(request, "core/records/import.html", context)

