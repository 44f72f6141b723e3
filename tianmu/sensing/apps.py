from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SensingConfig(AppConfig):
    name = "tianmu.sensing"
    label = "sensing"
    verbose_name = _("监测感知")

    def ready(self):
        from . import kinds  # noqa: F401 - registers the station and sensor record kinds
