from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    name = "tianmu.registry"
    label = "registry"
    verbose_name = _("应急基础数据")

    def ready(self):
        from . import kinds  # noqa: F401 - registers the record kinds
