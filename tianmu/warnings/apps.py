from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins, scope
from tianmu.core.choices import Role

from .conf import DEFAULTS


class WarningsConfig(plugins.TianmuApp):
    """Warnings (预警): drafted by people or from alarms, reviewed (four eyes for orange and red), issued as
    CAP 1.2, updated by new versions, cancelled or expired; other authorities' CAP alerts imported read-only."""

    name = "tianmu.warnings"
    label = "warnings"
    verbose_name = _("预警发布")
    api = [("/warnings", "tianmu.warnings.api:router")]
    urls = [("warnings/", "tianmu.warnings.urls")]
    menu = [plugins.MenuItem(_("预警发布"), "warnings:list", order=45, key="warnings")]
    map_layers = [plugins.MapLayer("warnings", panel="warnings/map_panel.html", scripts=("warnings/map.js",),
                                   styles=("warnings/warnings.css",), config="tianmu.warnings.views:map_layer_config", order=5)]
    demo_steps = [plugins.DemoStep("warnings.decisions", "tianmu.warnings.demo:decisions_step",
                                   after=("sensing.storm",), phase="replay")]
    matrix = "tianmu.warnings.tests.matrix:matrix_objects"
    # Besides the lifecycle's rows (lifecycles.py): drafting and editing (also new versions), and importing
    # other authorities' CAP alerts (district level).
    permissions = {
        "warnings.warning.draft": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
        "warnings.external.import": {role: scope.DISTRICT_ONLY for role in (Role.COMMANDER, Role.ADMIN)},
    }
    settings = DEFAULTS
