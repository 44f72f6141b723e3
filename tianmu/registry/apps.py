from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins


class RegistryConfig(plugins.TianmuApp):
    """Base data of the command platform (应急基础数据): seven record kinds declared in kinds.py; the framework
    in core gives them pages, API, import/export, history, the map layers and the menu."""

    name = "tianmu.registry"
    label = "registry"
    verbose_name = _("应急基础数据")
    demo_steps = [plugins.DemoStep("registry.records", "tianmu.registry.demo:build_records", after=("demo.users",))]
