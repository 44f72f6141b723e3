from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins
from tianmu.core.choices import Role


class NoticesConfig(plugins.TianmuApp):
    """Notices (通知): a record kind without a point, declared in kinds.py; everything else comes from core."""

    name = "tianmu.core.tests.notices"
    label = "notices"
    verbose_name = _("通知")
    declarations = ("kinds",)
    urls = [("notices/", "tianmu.core.tests.notices.urls")]
    menu = [plugins.MenuItem(_("通知公告"), "notices:board", order=60, key="notices",
                             roles=frozenset({Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF}))]
    demo_steps = [plugins.DemoStep("notices.welcome", "tianmu.core.tests.notices.demo:welcome_notice",
                                   after=("demo.users",))]
