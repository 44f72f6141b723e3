from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "tianmu.core"
    label = "core"
    verbose_name = _("基础")

    def ready(self):
        from .eventtypes import autodiscover

        # Every project app's record kinds, event types and handlers (core/eventtypes.py).
        autodiscover()
