from django.utils.translation import gettext_lazy as _

from . import plugins
from .sheets import LIMITS


class CoreConfig(plugins.TianmuApp):
    """The base layer: regions, users, scope, events, the record-kind framework (its pages at /r/ and one API
    router per declared kind) and the pages every app shares."""

    name = "tianmu.core"
    label = "core"
    verbose_name = _("基础")
    api = [("/", "tianmu.core.api:core_router"), "tianmu.core.registry.api:record_routers"]
    urls = [("r/", "tianmu.core.registry.urls"), ("", "tianmu.core.urls")]
    menu = [
        plugins.MenuItem(_("基础数据"), "", order=20, key="records"),
        plugins.MenuItem(_("动态"), "core:events", order=30),
        plugins.MenuItem(_("接口文档"), "api_docs", order=90),
        plugins.MenuItem(_("事件目录"), "core:event_catalogue", order=92),
        plugins.MenuItem(_("运行状态"), "core:ops_events", action="operations", order=94),
        plugins.MenuItem(_("管理后台"), "admin:index", staff=True, order=95),
    ]
    # Event handlers of every app run as durable consumers (core/consumers.py).
    workers = {"events": ["handle_events"]}
    # Import limits (core/sheets.py; docs/security.md "Limits").
    settings = LIMITS

    def ready(self):
        super().ready()
        from . import accounts  # noqa: F401  (declares the core.user.* and core.token.* event types)
        from .eventtypes import autodiscover

        # Every project app's declarations: record kinds, lifecycles, event types, handlers (core/eventtypes.py).
        autodiscover()
