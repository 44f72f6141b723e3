"""The command map page (首页/一张图). Everything on it is drawn in the browser from the API: the record kinds'
layers by map.js, and the overlays installed apps declare (core.plugins.MapLayer) by their own scripts, each
reading its config from a JSON block `map-layer-<key>`."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from tianmu.core.plugins import map_layers, resolve
from tianmu.core.registry.kinds import kinds

# The record detail page; `{slug}` and `{id}` are filled in by the map script.
RECORD_URL = "/r/{slug}/{id}/"
DEFAULT_ZOOM = 10


def api_root() -> str:
    try:
        return reverse("api:api-root")
    except NoReverseMatch:
        return "/api/v1/"


def map_labels() -> dict[str, str]:
    """Texts the map script shows, translated on the server so the page follows the chosen language."""
    return {
        "detail": _("详情"),
        "loading": _("加载中…"),
        "load_failed": _("加载失败,请刷新重试"),
        "no_results": _("未找到匹配的记录"),
        "searching": _("搜索中…"),
        "no_data": _("暂无数据"),
        "count": _("数量"),
        "total": _("合计"),
        "by_type": _("按类型统计"),
        "by_town": _("按镇街统计"),
        "shelter_capacity": _("避灾安置场所容纳人数(按镇街)"),
        "capacity": _("容纳人数"),
        "people": _("人"),
        "items": _("处"),
        "town": _("镇街"),
        "village": _("村社"),
    }


@login_required
@require_safe
def index(request):
    lat, lon = settings.TIANMU["MAP_CENTER"]
    root = api_root()
    config = {
        "center": [lat, lon],
        "zoom": DEFAULT_ZOOM,
        "bbox": list(settings.TIANMU.get("DISTRICT_BBOX") or []),
        "tileUrl": settings.TILE_URL or "",
        "tileAttribution": getattr(settings, "TILE_ATTRIBUTION", "") or "",
        "mapApi": root + "map/",
        "boundariesApi": root + "regions/boundaries",
        "recordUrl": RECORD_URL,
        "eventsUrl": reverse("core:event_stream"),
        "defaultLayers": [k.slug for k in kinds() if k.on_map and k.placed() and k.map_default],
        "labels": map_labels(),
    }
    layers = [{"key": layer.key, "panel": layer.panel, "scripts": layer.scripts, "styles": layer.styles,
               "config": resolve(layer.config)(request) if layer.config else {}, "config_id": f"map-layer-{layer.key}"}
              for layer in map_layers()]
    return render(request, "commandmap/index.html", {"map_config": config, "layers": layers})
