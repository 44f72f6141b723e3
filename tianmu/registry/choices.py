"""Choices of the base-data registries (应急基础数据)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["HazardType", "RiskLevel", "SiteType", "TeamType", "Readiness", "ExpertField", "Tier", "ShelterLevel",
           "ShelterType", "ShelterDuration", "ShelterStatus", "SHELTER_STATUS_COLORS", "EquipmentType", "EquipmentStatus"]


class HazardType(models.TextChoices):
    GEOLOGICAL = "geological", _("地质灾害风险区")
    FLASH_FLOOD = "flash_flood", _("山洪灾害危险区")
    RESERVOIR = "reservoir", _("病险水库/山塘")
    HAZCHEM = "hazchem", _("危险化学品")
    MINE = "mine", _("非煤矿山")
    GAS = "gas", _("燃气场站")
    FIREWORKS = "fireworks", _("烟花爆竹")
    FOREST_FIRE = "forest_fire", _("森林火灾高风险区")
    INDUSTRIAL = "industrial", _("工贸企业")
    OTHER = "other", _("其他")


class RiskLevel(models.TextChoices):
    """Four-colour grading: 重大/较大/一般/低 = 红/橙/黄/蓝 (geological zones: 极高/高/中/低)."""

    MAJOR = "major", _("重大(红)")
    HIGH = "high", _("较大(橙)")
    MEDIUM = "medium", _("一般(黄)")
    LOW = "low", _("低(蓝)")


class SiteType(models.TextChoices):
    SCHOOL = "school", _("学校")
    KINDERGARTEN = "kindergarten", _("幼儿园")
    HOSPITAL = "hospital", _("医院/卫生院")
    NURSING_HOME = "nursing_home", _("养老机构")
    RESERVOIR = "reservoir", _("水库")
    SCENIC = "scenic", _("旅游景区")
    MARKET = "market", _("商场/市场")
    GOVERNMENT = "government", _("党政机关")
    WATER_SUPPLY = "water_supply", _("供水设施")
    POWER = "power", _("电力设施")
    OTHER = "other", _("其他")


class TeamType(models.TextChoices):
    COMPREHENSIVE = "comprehensive", _("综合性救援队伍")
    PROFESSIONAL = "professional", _("专业救援队伍")
    SOCIAL = "social", _("社会救援力量")
    VOLUNTEER = "volunteer", _("志愿者队伍")


class Readiness(models.TextChoices):
    READY = "ready", _("随时待命")
    STANDBY = "standby", _("2小时内集结")
    DEPLOYED = "deployed", _("执行任务中")
    UNAVAILABLE = "unavailable", _("暂不可用")


class ExpertField(models.TextChoices):
    """The five fields of the district's expert pool."""

    NATURAL_DISASTER = "natural_disaster", _("自然灾害")
    WORK_SAFETY = "work_safety", _("安全生产")
    FIRE = "fire", _("消防救援")
    MEDICAL = "medical", _("医疗卫生")
    COMPREHENSIVE = "comprehensive", _("综合管理")


class Tier(models.TextChoices):
    DISTRICT = "district", _("区级")
    TOWN = "town", _("镇街级")
    VILLAGE = "village", _("村社级")


class ShelterLevel(models.TextChoices):
    """Zhejiang 避灾安置场所 tiers and their minimum capacities (省政府办公厅意见)."""

    DISTRICT = "district", _("县级避灾安置中心")
    TOWN = "town", _("乡镇(街道)避灾安置中心")
    VILLAGE = "village", _("村(社区)避灾安置点")


SHELTER_MIN_CAPACITY = {ShelterLevel.DISTRICT: 200, ShelterLevel.TOWN: 100, ShelterLevel.VILLAGE: 50}


class ShelterStatus(models.TextChoices):
    """Whether a shelter takes people now: closed (the usual state between events), open (taking people) or
    full (open but taking nobody more, whether every place is taken or the town says so)."""

    OPEN = "open", _("开放")
    FULL = "full", _("已满")
    CLOSED = "closed", _("关闭")


# The map's marker colours by state: green takes people, orange is full, grey is closed.
SHELTER_STATUS_COLORS = {ShelterStatus.OPEN: "#2e7d32", ShelterStatus.FULL: "#ef6c00", ShelterStatus.CLOSED: "#8a99a8"}


class ShelterType(models.TextChoices):
    SCHOOL = "school", _("学校")
    GYM = "gym", _("体育馆")
    AUDITORIUM = "auditorium", _("礼堂/文化礼堂")
    COMMUNITY = "community", _("村委会/社区服务中心")
    PARK = "park", _("公园/广场")
    PURPOSE_BUILT = "purpose_built", _("专用避灾场所")
    OTHER = "other", _("其他")


class ShelterDuration(models.TextChoices):
    """GB 51143-style classes: emergency, short, medium and long-term fixed shelters."""

    EMERGENCY = "emergency", _("紧急")
    SHORT = "short", _("短期")
    MEDIUM = "medium", _("中期")
    LONG = "long", _("长期")


class EquipmentType(models.TextChoices):
    PUMP = "pump", _("抽水泵")
    GENERATOR = "generator", _("发电机")
    BOAT = "boat", _("冲锋舟/橡皮艇")
    EXCAVATOR = "excavator", _("挖掘机")
    LOADER = "loader", _("装载机")
    VEHICLE = "vehicle", _("应急车辆")
    SATPHONE = "satphone", _("卫星电话")
    DRONE = "drone", _("无人机")
    LIGHTING = "lighting", _("照明设备")
    FIRE_PUMP = "fire_pump", _("森林消防水泵")
    BLOWER = "blower", _("风力灭火机")
    CHAINSAW = "chainsaw", _("油锯")
    RADIO = "radio", _("对讲机")
    OTHER = "other", _("其他")


class EquipmentStatus(models.TextChoices):
    GOOD = "good", _("完好")
    MAINTENANCE = "maintenance", _("维修保养中")
    DEPLOYED = "deployed", _("使用中")
    SCRAPPED = "scrapped", _("待报废")
