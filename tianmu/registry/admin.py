"""The registries' admin pages come from their kind declarations (tianmu.core.registry.admin)."""

from tianmu.core.registry.admin import register_record_admins

from . import kinds  # noqa: F401 - make sure every kind is registered before building its admin

register_record_admins()
