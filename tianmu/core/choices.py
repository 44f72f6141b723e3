"""Choices shared across the platform."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["RegionLevel", "Role", "WarningLevel", "WARNING_LEVELS_ASCENDING", "warning_level_rank", "Hazard"]


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


class WarningLevel(models.TextChoices):
    """The national four warning colours (突发事件应对法 Art. 63: 一级 red highest … 四级 blue), lowest first.
    Shared by every app that issues or carries a warning (warnings, comms)."""

    BLUE = "blue", _("蓝色")
    YELLOW = "yellow", _("黄色")
    ORANGE = "orange", _("橙色")
    RED = "red", _("红色")


WARNING_LEVELS_ASCENDING = [WarningLevel.BLUE, WarningLevel.YELLOW, WarningLevel.ORANGE, WarningLevel.RED]


def warning_level_rank(level: str | None) -> int:
    """0 for no level, 1 (blue) … 4 (red)."""
    return {lv.value: i + 1 for i, lv in enumerate(WARNING_LEVELS_ASCENDING)}.get(level or "", 0)


class Hazard(models.TextChoices):
    """Kinds of hazard a warning or an order is about (subscriptions filter by them). Lin'an's seasons: typhoons,
    rainstorms, flash floods, landslides; plus the other hazards a district bureau warns of."""

    TYPHOON = "typhoon", _("台风")
    RAINSTORM = "rainstorm", _("暴雨")
    FLOOD = "flood", _("洪水")
    FLASH_FLOOD = "flash_flood", _("山洪")
    GEOLOGICAL = "geological", _("地质灾害")
    FOREST_FIRE = "forest_fire", _("森林火灾")
    HIGH_TEMPERATURE = "high_temperature", _("高温")
    GALE = "gale", _("大风")
    COLD_WAVE = "cold_wave", _("寒潮/冰冻")
    ACCIDENT = "accident", _("生产安全事故")
    OTHER = "other", _("其他")
