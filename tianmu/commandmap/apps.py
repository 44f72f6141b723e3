import os

from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins


class CommandmapConfig(plugins.TianmuApp):
    """The command map (一张图, the home page): every map kind's layer, statistics and search, plus the
    overlays other apps declare (core.plugins.MapLayer). It names no domain app."""

    name = "tianmu.commandmap"
    label = "commandmap"
    verbose_name = _("一张图")
    api = [("/map", "tianmu.commandmap.api:router")]
    urls = [("", "tianmu.commandmap.urls")]
    menu = [plugins.MenuItem(_("一张图"), "commandmap:index", order=10, key="map")]
    # 周边资源 on every placed record's page (views.nearby_record_panel); other pages use {% nearby_panel %}.
    record_panels = [plugins.RecordPanel("nearby", "commandmap/_nearby.html", "tianmu.commandmap.views:nearby_record_panel",
                                         placed_only=True, order=90)]
    settings = {
        # [U] The nearby panel's first radius; the user changes it on the panel.
        "MAP_NEARBY_RADIUS_M": 5000,
        # The nearby panel's layers, in its order: who to call first, where people can go, what to bring, and
        # then what is at risk. Slugs that are not map layers are left out.
        "MAP_NEARBY_KINDS": ["teams", "shelters", "warehouses", "experts", "equipment", "sites", "hazards"],
        # Optional base tiles (README "Configuration"); without them the map is boundaries only. 天地图 (Tianditu)
        # with the bureau's key (CGCS2000, drawn as WGS84), or TIANMU_TILE_URL (an offline tile package served
        # by the reverse proxy, or any {z}/{x}/{y} template). MAP_DEFAULT_BASE: "" (boundaries), "tdt_vec",
        # "tdt_img" or "custom" — what the map opens with until the user picks another.
        "MAP_TIANDITU_KEY": os.environ.get("TIANMU_TIANDITU_KEY", ""),
        "MAP_DEFAULT_BASE": os.environ.get("TIANMU_MAP_DEFAULT_BASE", ""),
    }
