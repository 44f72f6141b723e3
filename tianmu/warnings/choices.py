"""Choices of warnings (预警): hazard types, the four colours, states, where a warning came from, and how each
maps onto CAP 1.2."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from tianmu.sensing.choices import LEVEL_RANK, LEVELS_ASCENDING, Level, level_rank

__all__ = ["HazardType", "Level", "LEVEL_RANK", "LEVELS_ASCENDING", "level_rank", "WarningState", "Origin",
           "PUBLISHED", "ACTIVE", "EDITABLE", "CAP_CATEGORY", "CAP_SEVERITY", "SEVERITY_LEVEL", "LEVEL_GRADE",
           "RULE_TYPES"]


class HazardType(models.TextChoices):
    """What a warning warns of. Which colours each type has is a setting (WARNINGS_TYPE_LEVELS, conf.py)."""

    RAINSTORM = "rainstorm", _("暴雨")
    TYPHOON = "typhoon", _("台风")
    GEOHAZARD = "geohazard", _("地质灾害")
    FLASH_FLOOD = "flash_flood", _("山洪")
    FOREST_FIRE = "forest_fire", _("森林火险")
    HIGH_TEMPERATURE = "high_temperature", _("高温")
    GALE = "gale", _("大风")
    OTHER = "other", _("其他(外部预警)")


class WarningState(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("待审核")
    APPROVED = "approved", _("已审核")
    ISSUED = "issued", _("已发布")
    UPDATED = "updated", _("已更新(被新版本替代)")
    CANCELLED = "cancelled", _("已解除")
    EXPIRED = "expired", _("已过期")


class Origin(models.TextChoices):
    MANUAL = "manual", _("人工起草")
    ALARM = "alarm", _("监测告警起草")
    EXTERNAL = "external", _("外部预警(导入)")


# States in which a warning has been published (it has CAP messages and appears in the public record).
PUBLISHED = (WarningState.ISSUED, WarningState.UPDATED, WarningState.CANCELLED, WarningState.EXPIRED)
ACTIVE = (WarningState.ISSUED,)
EDITABLE = (WarningState.DRAFT,)

# CAP 1.2 mappings. Category per type; severity per colour (red highest, 一级 = red, facts.md §2).
CAP_CATEGORY = {
    HazardType.RAINSTORM: "Met", HazardType.TYPHOON: "Met", HazardType.GEOHAZARD: "Geo",
    HazardType.FLASH_FLOOD: "Met", HazardType.FOREST_FIRE: "Fire", HazardType.HIGH_TEMPERATURE: "Met",
    HazardType.GALE: "Met", HazardType.OTHER: "Other",
}
CAP_SEVERITY = {Level.RED: "Extreme", Level.ORANGE: "Severe", Level.YELLOW: "Moderate", Level.BLUE: "Minor"}
SEVERITY_LEVEL = {v: k for k, v in CAP_SEVERITY.items()}
# 突发事件应对法 Art. 63: 一级 red … 四级 blue.
LEVEL_GRADE = {Level.RED: _("一级"), Level.ORANGE: _("二级"), Level.YELLOW: _("三级"), Level.BLUE: _("四级")}

# Which warning an alarm rule (sensing) suggests; rules not listed (gas, device faults) draft nothing [U].
RULE_TYPES = {
    "rainstorm": HazardType.RAINSTORM,
    "flash_flood": HazardType.FLASH_FLOOD,
    "geohazard": HazardType.GEOHAZARD,
    "displacement": HazardType.GEOHAZARD,
    "water_level": HazardType.FLASH_FLOOD,
    "rise_rate": HazardType.FLASH_FLOOD,
    "wind": HazardType.GALE,
}
