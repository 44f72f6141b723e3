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

from tianmu.core.plugins import map_layers, resolve, setting
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
        "nearby_here": _("周边资源"),
        "point": _("位置"),
        "show_failed": _("找不到该记录,或您无权查看"),
        "home": _("本辖区"),
    }


TIANDITU = "https://t{s}.tianditu.gov.cn/DataServer?T={layer}_w&x={x}&y={y}&l={z}&tk={key}"


def base_tiles() -> list[dict]:
    """The optional base maps: 天地图 vector and imagery (each with its label layer) when a key is set, and the
    configured tile URL (an offline package or another server). The boundary-only map is always there too."""
    out = []
    key = setting("MAP_TIANDITU_KEY")
    if key:
        attribution = _("天地图 © 国家地理信息公共服务平台")
        for name, layer, labels in (("tdt_vec", "vec", "cva"), ("tdt_img", "img", "cia")):
            out.append({"key": name, "name": _("天地图矢量") if layer == "vec" else _("天地图影像"),
                        "url": TIANDITU.replace("{layer}", layer).replace("{key}", key),
                        "labels": TIANDITU.replace("{layer}", labels).replace("{key}", key),
                        "subdomains": "01234567", "attribution": str(attribution), "maxZoom": 18})
    if settings.TILE_URL:
        out.append({"key": "custom", "name": _("离线/自定义底图"), "url": settings.TILE_URL, "labels": "",
                    "subdomains": "abc", "attribution": getattr(settings, "TILE_ATTRIBUTION", "") or "", "maxZoom": 18})
    return out


def home_frame(user) -> dict | None:
    """A town's or a village's user: their region (code, level, name, bbox), which the map frames and outlines."""
    from tianmu.core.models import Region
    from tianmu.core.scope import region_prefix

    prefix = region_prefix(user)
    if not prefix:
        return None
    region = Region.light.filter(code=prefix).exclude(level="district").first()
    if region is None:
        return None
    return {"code": region.code, "level": region.level, "name": region.name,
            "bbox": [round(v, 6) for v in (region.min_lon, region.min_lat, region.max_lon, region.max_lat)]}


@login_required
@require_safe
def index(request):
    lat, lon = settings.TIANMU["MAP_CENTER"]
    root = api_root()
    tiles = base_tiles()
    default_base = setting("MAP_DEFAULT_BASE")
    config = {
        "center": [lat, lon],
        "zoom": DEFAULT_ZOOM,
        "bbox": list(settings.TIANMU.get("DISTRICT_BBOX") or []),
        "mapApi": root + "map/",
        "boundariesApi": root + "regions/boundaries",
        "recordUrl": RECORD_URL,
        "eventsUrl": reverse("core:event_stream"),
        "defaultLayers": [k.slug for k in kinds() if k.on_map and k.placed() and k.map_default],
        "labels": map_labels(),
        "apiRoot": root,
        "home": home_frame(request.user),
        "baseTiles": tiles,
        "defaultBase": default_base if any(t["key"] == default_base for t in tiles) else "",
        "nearby": nearby_config(lon, lat),
    }
    layers = [{"key": layer.key, "panel": layer.panel, "scripts": layer.scripts, "styles": layer.styles,
               "config": resolve(layer.config)(request) if layer.config else {}, "config_id": f"map-layer-{layer.key}"}
              for layer in map_layers()]
    return render(request, "commandmap/index.html", {"map_config": config, "layers": layers, "base_tiles": tiles,
                                                     "nearby": config["nearby"]})


# ---- the nearby panel (周边资源) -------------------------------------------------------------------------------

NEARBY_RADII_M = (1000, 3000, 5000, 10000, 20000, 50000)


def nearby_labels() -> dict[str, str]:
    return {
        "title": _("周边资源"),
        "radius": _("半径"),
        "km": _("公里"),
        "m": _("米"),
        "none": _("该范围内没有"),
        "more": _("范围内共 %(n)s 处,显示最近的 %(shown)s 处"),
        "loading": _("加载中…"),
        "load_failed": _("加载失败,请重试"),
        "on_map": _("在地图上查看"),
        "list_near": _("列表"),
        "list_near_title": _("在列表中查看此点附近的全部记录"),
        "contact": _("负责人"),
        "phone": _("电话"),
        "point": _("位置"),
        "close": _("关闭"),
    }


def nearby_config(lon: float, lat: float, *, title: str = "", exclude: str = "") -> dict:
    """What the nearby panel's script needs: the point, the radius choices, the API and page URLs, its texts."""
    from .api import map_kinds

    default = int(setting("MAP_NEARBY_RADIUS_M"))
    radii = sorted(set(NEARBY_RADII_M) | {default})
    on_map = [k.slug for k in map_kinds()]
    wanted = [slug for slug in setting("MAP_NEARBY_KINDS") if slug in on_map] or on_map
    return {
        "lon": round(lon, 6), "lat": round(lat, 6), "title": str(title or ""), "exclude": str(exclude or ""),
        "radius": default, "radii": radii, "kinds": wanted, "api": api_root() + "map/nearby", "recordUrl": RECORD_URL,
        "mapUrl": reverse("commandmap:index"), "listUrl": "/r/{slug}/", "labels": nearby_labels(),
    }


def nearby_record_panel(request, kind, obj):
    """RecordPanel context (CommandmapConfig.record_panels): the panel at a placed record's point."""
    if obj.lon is None or obj.lat is None:
        return None
    return nearby_config(obj.lon, obj.lat, title=obj.name, exclude=f"{kind.slug}:{obj.pk}")


@login_required
@require_safe
def nearby_page(request):
    """周边资源 at a typed coordinate ("30.21,119.10", "119.10 30.21") or a place (a town, a village, an address
    or a record by name): the panel, full page, for a phone or a link from an alarm."""
    from .places import parse_point, search_places

    q = (request.GET.get("q") or "").strip()[:64]
    point, title, error, choices = None, "", "", []
    lon, lat = request.GET.get("lon"), request.GET.get("lat")
    if lon and lat:
        point = parse_point(f"{lat},{lon}")
        title = (request.GET.get("title") or "")[:64]
        if point is None:
            error = _("坐标无效:纬度 -90 到 90,经度 -180 到 180")
    elif q:
        point = parse_point(q)
        if point is not None:
            title = q
        else:
            choices = search_places(request.user, q, limit=8)
            if choices:
                first = choices[0]
                point, title = (first["lon"], first["lat"]), first["name"]
            else:
                error = _("没有找到这个地点;可输入坐标,如 30.21,119.10")
    panel = nearby_config(point[0], point[1], title=title) if point else None
    return render(request, "commandmap/nearby.html", {"q": q, "panel": panel, "error": error,
                                                      "choices": choices[1:]}, status=400 if error else 200)
