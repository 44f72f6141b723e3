"""The command platform's base data (应急基础数据): every hazard source, protected site, rescue team, expert,
warehouse, shelter and piece of equipment, each placed at a point inside a region."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, IntegerField, When
from django.utils.translation import gettext_lazy as _

from tianmu.core.models import PlacedModel

from .choices import (
    SHELTER_MIN_CAPACITY,
    EquipmentStatus,
    EquipmentType,
    ExpertField,
    HazardType,
    Readiness,
    RiskLevel,
    ShelterDuration,
    ShelterLevel,
    ShelterStatus,
    ShelterType,
    SiteType,
    TeamType,
    Tier,
)

__all__ = ["HazardSource", "ProtectedSite", "RescueTeam", "Expert", "Warehouse", "Shelter", "Equipment"]


class HazardSource(PlacedModel):
    """A hazard source (危险源): geological-hazard risk zone, flash-flood zone, hazardous enterprise, …"""

    hazard_type = models.CharField(_("危险源类型"), max_length=24, choices=HazardType.choices, db_index=True)
    risk_level = models.CharField(_("风险等级"), max_length=12, choices=RiskLevel.choices, db_index=True)
    threatened_people = models.PositiveIntegerField(_("威胁人数"), default=0)
    threatened_households = models.PositiveIntegerField(_("威胁户数"), default=0)
    monitored = models.BooleanField(_("已布设监测"), default=False)
    responsible_unit = models.CharField(_("责任单位"), max_length=128, blank=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("危险源")
        verbose_name_plural = _("危险源")
        indexes = [models.Index(fields=["lon", "lat"])]


class ProtectedSite(PlacedModel):
    """A protection target (防护目标): a place whose people or function must be protected first."""

    site_type = models.CharField(_("目标类型"), max_length=24, choices=SiteType.choices, db_index=True)
    occupants = models.PositiveIntegerField(_("常驻/容纳人数"), default=0)
    vulnerable = models.BooleanField(_("含老幼病残等脆弱人群"), default=False)

    class Meta(PlacedModel.Meta):
        verbose_name = _("防护目标")
        verbose_name_plural = _("防护目标")
        indexes = [models.Index(fields=["lon", "lat"])]


class RescueTeam(PlacedModel):
    """A rescue team (救援队伍) with its headcount, specialties, equipment and readiness."""

    team_type = models.CharField(_("队伍类型"), max_length=24, choices=TeamType.choices, db_index=True)
    tier = models.CharField(_("隶属层级"), max_length=12, choices=Tier.choices, default=Tier.TOWN)
    headcount = models.PositiveIntegerField(_("人数"), validators=[MinValueValidator(1)])
    specialties = models.CharField(_("专长"), max_length=200, blank=True, help_text=_("多个专长用顿号或逗号分隔"))
    equipment_summary = models.CharField(_("主要装备"), max_length=300, blank=True)
    readiness = models.CharField(_("战备状态"), max_length=16, choices=Readiness.choices, default=Readiness.READY,
                                 db_index=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("救援队伍")
        verbose_name_plural = _("救援队伍")
        indexes = [models.Index(fields=["lon", "lat"])]


class Expert(PlacedModel):
    """An expert (应急专家) in one of the five fields, placed at their work unit."""

    field = models.CharField(_("专业领域"), max_length=24, choices=ExpertField.choices, db_index=True)
    specialty = models.CharField(_("专长"), max_length=128, blank=True)
    employer = models.CharField(_("工作单位"), max_length=128, blank=True)
    title = models.CharField(_("职称"), max_length=64, blank=True)
    available = models.BooleanField(_("可随时响应"), default=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("应急专家")
        verbose_name_plural = _("应急专家")


class Warehouse(PlacedModel):
    """An emergency-supplies warehouse (物资仓库) at district, town or village tier."""

    tier = models.CharField(_("层级"), max_length=12, choices=Tier.choices, db_index=True)
    floor_area_m2 = models.FloatField(_("库房面积(m²)"), default=0, validators=[MinValueValidator(0)])
    keeper = models.CharField(_("保管员"), max_length=64, blank=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("物资仓库")
        verbose_name_plural = _("物资仓库")


class Shelter(PlacedModel):
    """A shelter (避灾安置场所) with its tier, type, capacity, area, facilities and standardisation status."""

    level = models.CharField(_("场所级别"), max_length=12, choices=ShelterLevel.choices, db_index=True)
    shelter_type = models.CharField(_("场所类型"), max_length=24, choices=ShelterType.choices, db_index=True)
    duration = models.CharField(_("避难时长类别"), max_length=12, choices=ShelterDuration.choices,
                                default=ShelterDuration.SHORT)
    capacity = models.PositiveIntegerField(_("容纳人数"), validators=[MinValueValidator(1)])
    floor_area_m2 = models.FloatField(_("有效面积(m²)"), validators=[MinValueValidator(1)])
    has_water = models.BooleanField(_("供水"), default=True)
    has_power = models.BooleanField(_("供电/备用电源"), default=True)
    has_toilets = models.BooleanField(_("卫生间"), default=True)
    has_kitchen = models.BooleanField(_("厨房/供餐"), default=False)
    has_medical = models.BooleanField(_("医疗点"), default=False)
    accessible = models.BooleanField(_("无障碍设施"), default=False)
    standardised = models.BooleanField(_("已规范化建设"), default=False, db_index=True,
                                       help_text=_("按 DB33/T 2158-2021 验收"))
    # Availability (开放状态, 在住人数): operational state, changed only by services.set_availability (the town,
    # and later the evacuation app), never by the record form or an import.
    status = models.CharField(_("开放状态"), max_length=8, choices=ShelterStatus.choices, default=ShelterStatus.CLOSED,
                              db_index=True, editable=False)
    occupancy = models.PositiveIntegerField(_("在住人数"), default=0, editable=False)
    status_changed_at = models.DateTimeField(_("状态更新时间"), null=True, blank=True, editable=False)

    class Meta(PlacedModel.Meta):
        verbose_name = _("避灾安置场所")
        verbose_name_plural = _("避灾安置场所")

    # Living area per person should exceed 1.5 m² (GB 21734-2008 §5.4).
    MIN_AREA_PER_PERSON_M2 = 1.5

    @property
    def area_per_person(self) -> float:
        return self.floor_area_m2 / self.capacity if self.capacity else 0.0

    @property
    def meets_tier_minimum(self) -> bool:
        return self.capacity >= SHELTER_MIN_CAPACITY.get(self.level, 0)

    @staticmethod
    def free_places_expression():
        """Places a family can be sent to now (only an open shelter has any), computed in the database: every read
        of shelters (`visible()`) carries it as `free_places` (ShelterKind.computed)."""
        return Case(When(status=ShelterStatus.OPEN, then=F("capacity") - F("occupancy")), default=0,
                    output_field=IntegerField())

    def clean(self):
        errors = {}
        if self.capacity and self.floor_area_m2 and self.area_per_person < self.MIN_AREA_PER_PERSON_M2:
            errors["capacity"] = [_("人均有效面积不足 1.5 m²(GB 21734),请核对容纳人数或面积")]
        if self.capacity and self.occupancy > self.capacity:
            errors.setdefault("capacity", []).append(ValidationError(
                _("容纳人数不能少于当前在住人数(%(occupancy)s 人)"), params={"occupancy": self.occupancy}))
        if errors:
            raise ValidationError(errors)


class Equipment(PlacedModel):
    """A piece of rescue equipment (应急装备) held by a team or warehouse."""

    equipment_type = models.CharField(_("装备类型"), max_length=24, choices=EquipmentType.choices, db_index=True)
    model_spec = models.CharField(_("规格型号"), max_length=128, blank=True)
    quantity = models.PositiveIntegerField(_("数量"), default=1, validators=[MinValueValidator(1),
                                                                            MaxValueValidator(100000)])
    status = models.CharField(_("状态"), max_length=16, choices=EquipmentStatus.choices, default=EquipmentStatus.GOOD,
                              db_index=True)
    owner_unit = models.CharField(_("所属单位"), max_length=128, blank=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("应急装备")
        verbose_name_plural = _("应急装备")
        indexes = [models.Index(fields=["lon", "lat"])]
