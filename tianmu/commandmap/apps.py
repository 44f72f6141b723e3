from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommandmapConfig(AppConfig):
    name = "tianmu.commandmap"
    label = "commandmap"
    verbose_name = _("一张图")
