from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins, scope
from tianmu.core.choices import Role

from .conf import DEFAULTS


class SensingConfig(plugins.TianmuApp):
    """The sensing network (监测感知): stations and sensors, readings over MQTT and HTTP, rules, alarms."""

    name = "tianmu.sensing"
    label = "sensing"
    verbose_name = _("监测感知")
    api = [("/sensing", "tianmu.sensing.api:router"), ("/map", "tianmu.sensing.api:map_router")]
    urls = [("sensing/", "tianmu.sensing.urls")]
    menu = [plugins.MenuItem(_("监测预警"), "sensing:alarms", order=40, key="sensing")]
    # Every page: a counter of alarms new since the user last opened the alarm list; red alarms ring and raise a
    # desktop notification, orange ones too if the user asks (core/attention.py, sensing.views.attention).
    attention = [plugins.Attention("sensing.alarms", "sensing:attention", "sensing:alarms", _("新告警"),
                                   levels=("red",), optional_levels=("orange",),
                                   optional_label=_("橙色告警也提醒"))]
    map_layers = [plugins.MapLayer("sensing", panel="sensing/map_panel.html", scripts=("sensing/map.js",),
                                   styles=("sensing/map.css",), config="tianmu.sensing.views:map_layer_config",
                                   order=10),
                  plugins.MapLayer("rainfall", panel="sensing/map_rain_panel.html", scripts=("sensing/rainmap.js",),
                                   styles=("sensing/map.css",), config="tianmu.sensing.views:rain_layer_config",
                                   order=11),
                  # River basins coloured by areal rainfall; reads the rainfall layer's window and time controls.
                  plugins.MapLayer("basins", panel="sensing/map_basin_panel.html", scripts=("sensing/basinmap.js",),
                                   styles=("sensing/map.css",), config="tianmu.sensing.views:basin_layer_config",
                                   order=12)]
    record_panels = [plugins.RecordPanel("basin-outline", "sensing/_basin_panel.html",
                                         "tianmu.sensing.views:basin_panel", kinds=("basins",),
                                         styles=("sensing/sensing.css",))]
    demo_steps = [
        plugins.DemoStep("sensing.network", "tianmu.sensing.demo.network:build_network_step",
                         after=("registry.records",)),
        plugins.DemoStep("sensing.basins", "tianmu.sensing.demo.basins:build_basins_step",
                         after=("sensing.network",)),
        plugins.DemoStep("sensing.storm", "tianmu.sensing.demo.simulate:demo_storm_step", after=("sensing.network",),
                         phase="replay"),
    ]
    workers = {"ingest": ["ingest"]}
    # Only `tianmu demo` runs these: the demo network's quiet-weather feed invents readings.
    demo_workers = {"demo-feed": ["demo_feed"]}
    matrix = "tianmu.sensing.tests.matrix:matrix_objects"
    # Rows of the permission table (core/scope.py), besides the alarm lifecycle's (lifecycles.py). Department
    # gateways (api_client) submit readings for the sensors in their region, and change nothing else.
    permissions = {
        "sensing.readings.submit": {role: scope.HOME for role in (*scope.WRITERS, Role.API_CLIENT)},
        "sensing.threshold.set": {role: scope.HOME for role in scope.WRITERS},
        "sensing.threshold.set_default": {role: scope.DISTRICT_ONLY for role in scope.WRITERS},
        # River basins from GeoJSON: each basin's region must be the importer's (district basins: district staff;
        # a town may keep its own small basins). Village responders do not draw basins.
        "sensing.basins.import": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
    }
    settings = DEFAULTS
