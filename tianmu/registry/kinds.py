"""Registration of the base-data registries: each declaration gives the kind its pages, API, import/export,
history, scope checks, map layer and tests."""

from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tianmu.core.registry.kinds import RecordKind, register

from .choices import SHELTER_STATUS_COLORS
from .models import Equipment, Expert, HazardSource, ProtectedSite, RescueTeam, Shelter, Warehouse

__all__ = ["HazardSourceKind", "ProtectedSiteKind", "RescueTeamKind", "ExpertKind", "WarehouseKind", "ShelterKind",
           "EquipmentKind"]


@register
class HazardSourceKind(RecordKind):
    plural = pgettext_lazy("plural", "危险源")
    model = HazardSource
    slug = "hazards"
    type_field = "hazard_type"
    filter_fields = ["hazard_type", "risk_level", "monitored"]
    list_columns = ["code", "name", "region", "hazard_type", "risk_level", "threatened_people"]
    sum_fields = ["threatened_people"]
    example = {"hazard_type": "geological", "risk_level": "high", "threatened_people": 25, "threatened_households": 8, "monitored": True, "responsible_unit": "龙岗镇人民政府"}
    color = "#c62828"
    map_default = True


@register
class ProtectedSiteKind(RecordKind):
    plural = pgettext_lazy("plural", "防护目标")
    model = ProtectedSite
    slug = "sites"
    type_field = "site_type"
    filter_fields = ["site_type", "vulnerable"]
    list_columns = ["code", "name", "region", "site_type", "occupants"]
    sum_fields = ["occupants"]
    example = {"site_type": "school", "occupants": 640, "vulnerable": True}
    color = "#6a1b9a"


@register
class RescueTeamKind(RecordKind):
    plural = pgettext_lazy("plural", "救援队伍")
    model = RescueTeam
    slug = "teams"
    serves_below = True
    type_field = "team_type"
    filter_fields = ["team_type", "tier", "readiness"]
    search_fields = ["code", "name", "address", "specialties"]
    list_columns = ["code", "name", "region", "team_type", "headcount", "readiness"]
    sum_fields = ["headcount"]
    example = {"team_type": "volunteer", "tier": "village", "headcount": 12, "specialties": "巡查、转移", "readiness": "ready"}
    color = "#ef6c00"
    map_default = True


@register
class ExpertKind(RecordKind):
    plural = pgettext_lazy("plural", "应急专家")
    model = Expert
    slug = "experts"
    serves_below = True
    type_field = "field"
    filter_fields = ["field", "available"]
    search_fields = ["code", "name", "specialty", "employer"]
    list_columns = ["code", "name", "region", "field", "specialty", "employer", "phone"]
    example = {"field": "natural_disaster", "specialty": "地质灾害", "employer": "区自然资源和规划分局", "title": "高级工程师", "available": True}
    color = "#00838f"
    cluster = False


@register
class WarehouseKind(RecordKind):
    plural = pgettext_lazy("plural", "物资仓库")
    model = Warehouse
    slug = "warehouses"
    serves_below = True
    type_field = "tier"
    filter_fields = ["tier"]
    list_columns = ["code", "name", "region", "tier", "floor_area_m2", "keeper"]
    sum_fields = ["floor_area_m2"]
    example = {"tier": "village", "floor_area_m2": 40, "keeper": "王伟"}
    color = "#5d4037"
    map_default = True


@register
class ShelterKind(RecordKind):
    plural = pgettext_lazy("plural", "避灾安置场所")
    model = Shelter
    slug = "shelters"
    serves_below = True
    type_field = "level"
    filter_fields = ["status", "level", "shelter_type", "duration", "standardised"]
    list_columns = ["code", "name", "region", "level", "shelter_type", "status", "capacity", "occupancy",
                    "free_places", "standardised"]
    # Availability (services.set_availability): the state, who is in, and the places a family can be sent to now.
    state_fields = ["status", "occupancy", "status_changed_at"]
    computed = {"free_places": (_("空余床位"), Shelter.free_places_expression)}
    flag_filters = {"has_free_places": (_("有空余床位"), lambda: Q(free_places__gt=0))}
    map_fields = ["status", "free_places", "occupancy", "capacity"]
    state_colors = SHELTER_STATUS_COLORS
    sum_fields = ["capacity", "floor_area_m2"]
    example = {"level": "village", "shelter_type": "auditorium", "duration": "short", "capacity": 80, "floor_area_m2": 240, "standardised": True}
    color = "#2e7d32"
    map_default = True


@register
class EquipmentKind(RecordKind):
    plural = pgettext_lazy("plural", "应急装备")
    model = Equipment
    slug = "equipment"
    serves_below = True
    type_field = "equipment_type"
    filter_fields = ["equipment_type", "status"]
    search_fields = ["code", "name", "model_spec", "owner_unit"]
    list_columns = ["code", "name", "region", "equipment_type", "quantity", "status", "owner_unit"]
    sum_fields = ["quantity"]
    example = {"equipment_type": "pump", "model_spec": "大功率", "quantity": 2, "status": "good", "owner_unit": "村应急小分队"}
    color = "#455a64"
