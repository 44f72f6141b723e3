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
