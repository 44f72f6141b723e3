from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins


class DemoConfig(plugins.TianmuApp):
    """The Lin'an demo (`tianmu demo`): its own steps make the regions and one login per role; every other
    app's data comes from the demo steps that app declares."""

    name = "tianmu.demo"
    label = "demo"
    verbose_name = _("演示数据")
    demo_steps = [
        plugins.DemoStep("demo.regions", "tianmu.demo.dataset:regions_step"),
        plugins.DemoStep("demo.users", "tianmu.demo.dataset:users_step", after=("demo.regions",)),
    ]
