from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins, scope
from tianmu.core.choices import Role


class RegistryConfig(plugins.TianmuApp):
    """Base data of the command platform (应急基础数据): seven record kinds declared in kinds.py; the framework
    in core gives them pages, API, import/export, history, the map layers and the menu."""

    name = "tianmu.registry"
    label = "registry"
    verbose_name = _("应急基础数据")
    demo_steps = [plugins.DemoStep("registry.records", "tianmu.registry.demo:build_records", after=("demo.users",)),
                  plugins.DemoStep("registry.shelters_opened", "tianmu.registry.demo:open_demo_shelters",
                                   after=("registry.records",))]
    api = [("/shelters", "tianmu.registry.api:router")]
    urls = [("registry/", "tianmu.registry.urls")]
    record_panels = [plugins.RecordPanel("shelter-availability", "registry/_availability.html",
                                         "tianmu.registry.views:availability_panel", kinds=("shelters",), order=10)]
    # A shelter's availability (services.set_availability): the shelter's town and the district. Village
    # responders read it; the evacuation app will update it through the same service.
    permissions = {
        "registry.shelter.availability": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
    }
    matrix = "tianmu.registry.tests.matrix:matrix_objects"
