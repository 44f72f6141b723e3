"""Warning pages: the list (drafts waiting for review on top), the form (areas by town and village or drawn on a
map), the warning's page (timeline, CAP messages, buttons, the dissemination slot), CAP import; and the public
CAP files and feeds (Atom and JSON, no login, cacheable). Views only call queries and services."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Region
from tianmu.core.scope import can, region_prefix
from tianmu.core.views import transition_view

from . import services
from .choices import HazardType, Level, Origin, WarningState
from .conf import conf
from .lifecycles import WARNING
from .models import CapMessage, HazardWarning
from .queries import WarningFilter, current_public, dissemination, timeline, towns_for, visible, warnings

__all__ = ["list_page", "form_page", "detail_page", "act", "revise", "import_page", "cap_file", "feed_atom",
           "feed_json", "map_layer_config"]

PAGE_SIZE = 50
FORM_FIELDS = ("hazard_type", "level", "areas", "polygon", "onset", "expires", *services.TEXT_FIELDS)
# What each event of a warning says in its timeline.
TIMELINE_LABELS = {"drafted": _("起草"), "edited": _("修改草稿"), "merged": _("并入告警"), "submitted": _("提交审核"),
                   "rejected": _("退回修改"), "approved": _("审核通过"), "issued": _("签发"),
                   "updated": _("被新版本替代"), "cancelled": _("解除"), "expired": _("到期"),
                   "imported": _("导入")}
PAGE_TRANSITIONS = {"submit": _("已提交审核"), "reject": _("已退回修改"), "approve": _("已审核通过"),
                    "issue": _("预警已签发"), "cancel": _("预警已解除")}


def _choices(enum, exclude=()) -> list[tuple[str, str]]:
    return [(v, str(label)) for v, label in enum.choices if v not in exclude]


@login_required
@require_safe
def list_page(request):
    g = request.GET
    flt = WarningFilter(state=g.get("state") or None, level=g.get("level") or None,
                        hazard_type=g.get("hazard_type") or None, town=g.get("town") or None,
                        origin=g.get("origin") or None)
    errors = []
    try:
        qs = warnings(request.user, flt).prefetch_related("areas")
        total = qs.count()
    except ServiceError as exc:
        errors, qs, total = exc.as_list(), HazardWarning.objects.none(), 0
    try:
        page = max(1, min(int(g.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    rows = list(qs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE])
    return render(request, "warnings/list.html", {
        "rows": rows, "total": total, "page": page, "has_next": page * PAGE_SIZE < total, "f": flt,
        "errors": errors, "states": [("active", gettext("生效中")), *_choices(WarningState)], "levels": _choices(Level),
        "types": _choices(HazardType), "origins": _choices(Origin), "towns": towns_for(request.user),
        "can_draft": can(request.user, services.DRAFT_ACTION),
        "can_import": can(request.user, services.IMPORT_ACTION),
        "query": "&".join(f"{k}={v}" for k, v in (("state", flt.state), ("level", flt.level),
                                                   ("hazard_type", flt.hazard_type), ("town", flt.town),
                                                   ("origin", flt.origin)) if v),
    })


def _area_choices(actor) -> list[dict]:
    """Towns the actor may draft for, each with its villages (form choices are scoped like every read)."""
    prefix = region_prefix(actor) or ""
    if not can(actor, services.DRAFT_ACTION):
        return []
    regions = Region.light.filter(level__in=["town", "village"])
    if prefix:
        regions = regions.filter(code__startswith=prefix[:9])
    towns: dict[str, dict] = {}
    for r in regions.order_by("code").only("code", "name", "level"):
        if r.level == "town":
            towns[r.code] = {"code": r.code, "name": r.name, "villages": []}
        elif r.code[:9] in towns:
            towns[r.code[:9]]["villages"].append({"code": r.code, "name": r.name})
    return list(towns.values())


def _form_data(post) -> dict:
    data = {name: post.get(name, "") for name in FORM_FIELDS if name != "areas"}
    data["areas"] = post.getlist("areas")
    return data


def _local_input(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M") if dt else ""


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def form_page(request, pk: int | None = None):
    w = get_object_or_404(visible(request.user), pk=pk) if pk else None
    if not can(request.user, services.DRAFT_ACTION, w.region if w else None):
        raise PermissionDenied
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data = _form_data(request.POST)
        try:
            w = services.edit_warning(request.user, w, data) if w else services.draft_warning(request.user, data)
            messages.success(request, gettext("预警草稿已保存"))
            return redirect(w.get_absolute_url())
        except ServiceError as exc:
            for err in exc.as_list():
                errors.setdefault(err["field"], []).append(err["message"])
        except ScopeError as exc:
            errors.setdefault("areas", []).append(str(exc.message))
        errors["general"] = errors.pop("__all__", [])  # templates cannot name "__all__"
        values = {**data, "areas": data["areas"]}
    elif w is not None:
        values = {name: getattr(w, name) for name in FORM_FIELDS if name not in ("areas", "polygon", "onset", "expires")}
        values.update(areas=[r.code for r in w.areas.all()], polygon=json.dumps(w.polygon) if w.polygon else "",
                      onset=_local_input(w.onset), expires=_local_input(w.expires))
    else:
        now = timezone.now()
        values = {"onset": _local_input(now), "expires": _local_input(now + timezone.timedelta(
            hours=conf("WARNINGS_DEFAULT_VALIDITY_HOURS"))), "areas": [], "polygon": ""}
    district = Region.light.filter(level="district").order_by("code").first()
    return render(request, "warnings/form.html", {
        "w": w, "values": values, "errors": errors, "types": _choices(HazardType, exclude=(HazardType.OTHER,)),
        "levels": _choices(Level), "towns": _area_choices(request.user),
        "config": {"typeLevels": conf("WARNINGS_TYPE_LEVELS"),
                   "center": [district.lat, district.lon] if district else [30.2361, 119.7153],
                   "labels": {"clear": gettext("清除"), "hint": gettext("在地图上依次点击顶点,至少三个点;再次点击第一个点闭合")}},
    }, status=422 if errors else 200)


@login_required
@require_safe
def detail_page(request, pk: int):
    w = get_object_or_404(visible(request.user).select_related("region", "previous", "created_by", "submitted_by",
                                                                "approved_by", "issued_by", "ended_by"), pk=pk)
    progress = dissemination(w, request.user) if w.state != WarningState.DRAFT else None
    areas = list(w.areas.all())
    shapes = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g, "properties": {"name": n}}
        for n, g in Region.objects.filter(pk__in=[r.pk for r in areas]).values_list("name", "boundary") if g
    ] + ([{"type": "Feature", "geometry": w.polygon, "properties": {"name": ""}}] if w.polygon else [])}
    newer = getattr(w, "next_version", None) if hasattr(w, "next_version") else None
    return render(request, "warnings/detail.html", {
        "w": w, "areas": areas,
        "timeline": [(e, TIMELINE_LABELS.get(e.type.rsplit(".", 1)[-1], e.type)) for e in timeline(w)], "cap_messages": w.messages.order_by("sent", "id"),
        "transitions": [t for t in WARNING.available(request.user, w) if t.name in PAGE_TRANSITIONS],
        "can_edit": w.state == WarningState.DRAFT and not w.external
        and can(request.user, services.DRAFT_ACTION, w.region),
        "can_revise": w.state == WarningState.ISSUED and not w.external and newer is None
        and can(request.user, services.DRAFT_ACTION, w.region),
        "newer": newer, "progress": progress, "shapes": shapes,
        "state_label": WarningState(w.state).label, "level_label": Level(w.level).label,
        "type_label": HazardType(w.hazard_type).label,
    })


@login_required
@require_POST
def act(request, pk: int, name: str):
    """A lifecycle button of the warning's page (submit, reject, approve, issue, cancel)."""
    if name not in PAGE_TRANSITIONS:
        raise Http404(name)
    return transition_view(request, key=WARNING.key, pk=pk, name=name, done=PAGE_TRANSITIONS[name],
                           fallback=reverse("warnings:detail", args=[pk]))


@login_required
@require_POST
def revise(request, pk: int):
    w = get_object_or_404(visible(request.user), pk=pk)
    try:
        new = services.revise_warning(request.user, w)
    except ServiceError as exc:
        for err in exc.as_list():
            messages.error(request, err["message"])
        return redirect(w.get_absolute_url())
    except ScopeError as exc:
        messages.error(request, str(exc.message))
        return redirect(w.get_absolute_url())
    messages.success(request, gettext("已起草新版本,修改后提交审核;签发后替代当前版本"))
    return redirect(reverse("warnings:edit", args=[new.pk]))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def import_page(request):
    if not can(request.user, services.IMPORT_ACTION):
        raise PermissionDenied
    errors = []
    if request.method == "POST":
        upload = request.FILES.get("file")
        limit = conf("WARNINGS_CAP_MAX_BYTES")
        try:
            if upload is None:
                raise ServiceError({"file": [_("请选择 CAP 文件")]})
            if upload.size > limit:
                raise ServiceError({"file": [_("CAP 文件太大")]})
            w = services.import_cap(request.user, upload.read(limit + 1))
            messages.success(request, gettext("外部预警已导入"))
            return redirect(w.get_absolute_url())
        except ServiceError as exc:
            errors = exc.as_list()
    return render(request, "warnings/import.html", {"errors": errors}, status=422 if errors else 200)


# ---- public: CAP files and feeds -------------------------------------------------------------------------------

def _public(response, seconds: int | None = None):
    patch_cache_control(response, public=True, max_age=seconds if seconds is not None
                        else conf("WARNINGS_FEED_CACHE_SECONDS"))
    return response


@require_safe
def cap_file(request, pk: int):
    """A published CAP message (ours: public; an imported one: only for those who may see its warning)."""
    m = get_object_or_404(CapMessage.objects.select_related("warning"), pk=pk)
    if m.received and not (request.user.is_authenticated and visible(request.user).filter(pk=m.warning_id).exists()):
        raise Http404
    response = HttpResponse(m.xml, content_type="application/cap+xml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{m.identifier}.xml"'
    return _public(response, 3600) if not m.received else response


def _feed_rows():
    rows = []
    for w in current_public(conf("WARNINGS_FEED_MAX")):
        if w.external:
            continue
        msgs = sorted(w.messages.all(), key=lambda m: (m.sent, m.pk))
        if msgs:
            rows.append((w, msgs[-1]))
    return rows


@require_safe
def feed_json(request):
    """Current warnings as JSON: one entry per warning with its latest CAP message."""
    items = [{"id": w.pk, "identifier": m.identifier, "msg_type": m.msg_type, "sent": m.sent.isoformat(),
              "hazard_type": w.hazard_type, "level": w.level, "headline": w.headline,
              "areas": [{"code": r.code, "name": r.name} for r in w.areas.all()],
              "onset": w.onset.isoformat(), "expires": w.expires.isoformat(),
              "cap": request.build_absolute_uri(reverse("warnings:cap", args=[m.pk]))} for w, m in _feed_rows()]
    return _public(JsonResponse({"sender": conf("WARNINGS_CAP_SENDER"), "updated": timezone.now().isoformat(),
                                 "alerts": items}, json_dumps_params={"ensure_ascii": False}))


@require_safe
def feed_atom(request):
    """Current warnings as an Atom feed linking each CAP file (the OASIS CAP feed convention)."""
    from xml.sax.saxutils import escape as xml_escape

    from .cap import xml_text

    def escape(value) -> str:
        return xml_escape(xml_text(value))

    self_url = request.build_absolute_uri(reverse("warnings:feed_atom"))
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
             f"<id>{escape(self_url)}</id>", f"<title>{escape(conf('WARNINGS_CAP_SENDER_NAME'))} 预警</title>",
             f"<updated>{timezone.now().isoformat()}</updated>",
             f'<link rel="self" href="{escape(self_url)}"/>',
             f"<author><name>{escape(conf('WARNINGS_CAP_SENDER_NAME'))}</name></author>"]
    for w, m in _feed_rows():
        cap = request.build_absolute_uri(reverse("warnings:cap", args=[m.pk]))
        parts += ["<entry>", f"<id>urn:cap:{escape(m.sender)}:{escape(m.identifier)}</id>",
                  f"<title>{escape(w.headline)}</title>", f"<updated>{m.sent.isoformat()}</updated>",
                  f'<link rel="alternate" type="application/cap+xml" href="{escape(cap)}"/>',
                  f"<summary>{escape(str(Level(w.level).label))} · {escape(', '.join(r.name for r in w.areas.all()))}"
                  f"</summary>", "</entry>"]
    parts.append("</feed>")
    return _public(HttpResponse("\n".join(parts), content_type="application/atom+xml; charset=utf-8"))


def map_layer_config(request) -> dict:
    """The command map's warning overlay (warnings/map.js): endpoint, filters and texts, translated here."""
    return {
        "url": reverse("api:api-root") + "warnings/map",
        "eventsUrl": reverse("core:event_stream"),
        "types": _choices(HazardType),
        "levels": _choices(Level),
        "labels": {"load_failed": gettext("加载失败,请刷新重试"), "none": gettext("当前没有生效的预警"),
                   "external": gettext("外部预警"), "expires": gettext("失效"), "open": gettext("查看预警"),
                   "all": gettext("全部")},
    }
