"""Choices of monitoring and alarms (监测感知): station and sensor types, alarm rules, levels and states."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["StationType", "SensorType", "DEFAULT_UNITS", "Level", "LEVEL_RANK", "LEVELS_ASCENDING", "AlarmKind",
           "AlarmStatus", "ACTIVE_STATUSES", "Rule", "Metric", "Soil", "Fault", "level_rank", "max_level"]


class StationType(models.TextChoices):
    RAIN = "rain", _("雨量站")
    WATER_LEVEL = "water_level", _("水位站")
    RIVER = "river", _("河道站")
    RESERVOIR = "reservoir", _("水库站")
    DISPLACEMENT = "displacement", _("位移监测站(GNSS/裂缝计)")
    SOIL_MOISTURE = "soil_moisture", _("土壤墒情站")
    WIND = "wind", _("风速站")
    FIRE_CAMERA = "fire_camera", _("森林防火视频监控")
    GAS = "gas", _("可燃气体监测点")


class SensorType(models.TextChoices):
    """The quantity a sensor measures; each has a canonical unit."""

    RAINFALL = "rainfall", _("降雨量")
    WATER_LEVEL = "water_level", _("水位")
    DISPLACEMENT = "displacement", _("位移")
    GAS = "gas", _("可燃气体浓度")
    SOIL_MOISTURE = "soil_moisture", _("土壤含水率")
    WIND = "wind", _("风速")


DEFAULT_UNITS = {
    SensorType.RAINFALL: "mm",
    SensorType.WATER_LEVEL: "m",
    SensorType.DISPLACEMENT: "mm",
    SensorType.GAS: "%LEL",
    SensorType.SOIL_MOISTURE: "%",
    SensorType.WIND: "m/s",
}


class Level(models.TextChoices):
    """The four warning colours, lowest first."""

    BLUE = "blue", _("蓝色")
    YELLOW = "yellow", _("黄色")
    ORANGE = "orange", _("橙色")
    RED = "red", _("红色")


LEVELS_ASCENDING = [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED]
LEVEL_RANK = {level.value: i + 1 for i, level in enumerate(LEVELS_ASCENDING)}


def level_rank(level: str | None) -> int:
    """0 for no level, 1 (blue) … 4 (red)."""
    return LEVEL_RANK.get(level or "", 0)


def max_level(*levels: str | None) -> str | None:
    best = None
    for level in levels:
        if level_rank(level) > level_rank(best):
            best = level
    return best


class AlarmKind(models.TextChoices):
    THRESHOLD = "threshold", _("超阈值")
    DEVICE_FAULT = "device_fault", _("设备故障")


class AlarmStatus(models.TextChoices):
    OPEN = "open", _("未确认")
    ACKNOWLEDGED = "acknowledged", _("已确认")
    CLOSED = "closed", _("已关闭")


ACTIVE_STATUSES = (AlarmStatus.OPEN, AlarmStatus.ACKNOWLEDGED)


class Rule(models.TextChoices):
    """An alarm rule: one alarm at most is active per sensor and rule."""

    RAINSTORM = "rainstorm", _("暴雨(气象预警信号标准)")
    FLASH_FLOOD = "flash_flood", _("山洪(临界雨量)")
    GEOHAZARD = "geohazard", _("地质灾害(有效降雨量)")
    WATER_LEVEL = "water_level", _("水位超警")
    RISE_RATE = "rise_rate", _("水位涨率")
    DISPLACEMENT = "displacement", _("位移速率")
    GAS = "gas", _("可燃气体浓度")
    WIND = "wind", _("大风")
    # Device faults.
    NO_DATA = "no_data", _("数据中断")
    STUCK = "stuck", _("数值不变")
    OUT_OF_RANGE = "out_of_range", _("数值超出量程")


class Fault:
    """The rules that describe a broken device rather than a hazard."""

    RULES = (Rule.NO_DATA, Rule.STUCK, Rule.OUT_OF_RANGE)


class Metric(models.TextChoices):
    """A measured quantity a threshold compares with (a rainfall window, a level, a rate)."""

    RAIN_1H = "rain_1h", _("1小时降雨量(mm)")
    RAIN_3H = "rain_3h", _("3小时降雨量(mm)")
    RAIN_6H = "rain_6h", _("6小时降雨量(mm)")
    RAIN_12H = "rain_12h", _("12小时降雨量(mm)")
    RAIN_24H = "rain_24h", _("24小时降雨量(mm)")
    RAIN_EFFECTIVE = "rain_effective", _("有效降雨量(mm)")
    WATER_LEVEL = "water_level", _("水位(m)")
    RISE_RATE_1H = "rise_rate_1h", _("1小时水位涨幅(m)")
    DISPLACEMENT_RATE_24H = "displacement_rate_24h", _("24小时位移量(mm)")
    GAS = "gas", _("可燃气体浓度(%LEL)")
    WIND_SPEED = "wind_speed", _("风速(m/s)")
    # Device faults.
    NO_DATA = "no_data", _("中断时长(秒)")
    STUCK = "stuck", _("连续相同读数(个)")
    OUT_OF_RANGE = "out_of_range", _("超量程读数")


class Soil(models.TextChoices):
    """Antecedent soil moisture, derived from the antecedent precipitation index (前期影响雨量)."""

    ANY = "any", _("不区分")
    DRY = "dry", _("干燥")
    NORMAL = "normal", _("一般")
    WET = "wet", _("湿润")
