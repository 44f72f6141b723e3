"""The command map page (首页/一张图). Everything on it is drawn in the browser from the API."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from tianmu.sensing.choices import Level

# Layers switched on when the page opens; the rest are one click away.
DEFAULT_LAYERS = ["shelters", "teams", "warehouses", "hazards"]
# The record detail page; `{slug}` and `{id}` are filled in by the map script.
RECORD_URL = "/r/{slug}/{id}/"
SENSOR_URL = "/sensing/sensors/{id}/"  # a sensor's chart page
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
        # 监测预警 layers (commandmap/sensing.js)
        "sensor_chart": _("监测曲线"),
        "no_alarm": _("无告警"),
        "observed": _("观测"),
        "no_reading": _("暂无数据"),
        "threshold": _("阈值"),
        "acknowledged": _("已确认"),
        "cleared": _("条件已解除"),
        "no_alarms": _("当前没有未关闭的告警"),
        "more_alarms": _("另有 {n} 条,见告警列表"),
        "levels": {v: str(label) for v, label in Level.choices},
    }


@login_required
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
        "sensorUrl": SENSOR_URL,
        "alarmsPage": reverse("sensing:alarms"),
        "eventsUrl": reverse("core:event_stream"),
        "defaultLayers": DEFAULT_LAYERS,
        "labels": map_labels(),
    }
    return render(request, "commandmap/index.html", {"map_config": config})
