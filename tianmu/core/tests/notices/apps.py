from django.utils.translation import gettext_lazy as _

from tianmu.core import plugins, scope
from tianmu.core.choices import Role


class NoticesConfig(plugins.TianmuApp):
    """Notices (通知): a record kind without a point, declared in kinds.py; everything else comes from core."""

    name = "tianmu.core.tests.notices"
    label = "notices"
    verbose_name = _("通知")
    urls = [("notices/", "tianmu.core.tests.notices.urls")]
    menu = [plugins.MenuItem(_("通知公告"), "notices:board", order=60, key="notices", action="notices.board.view")]
    permissions = {"notices.board.view": {role: scope.HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)}}
    map_layers = [plugins.MapLayer("notices", panel="notices/map_panel.html", config="tianmu.core.tests.notices.views:map_config")]
    demo_steps = [plugins.DemoStep("notices.welcome", "tianmu.core.tests.notices.demo:welcome_notice",
                                   after=("demo.users",))]
