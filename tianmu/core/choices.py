"""Choices shared across the platform."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["RegionLevel", "Role"]


class RegionLevel(models.TextChoices):
    DISTRICT = "district", _("区县")
    TOWN = "town", _("镇街")
    VILLAGE = "village", _("村社")


class Role(models.TextChoices):
    COMMANDER = "commander", _("区指挥长/值班员")
    ADMIN = "admin", _("区管理员")
    TOWN_STAFF = "town_staff", _("镇街工作人员")
    VILLAGE_RESPONDER = "village_responder", _("村社应急员")
    LEADER = "leader", _("领导(只读)")
    API_CLIENT = "api_client", _("部门接口")
