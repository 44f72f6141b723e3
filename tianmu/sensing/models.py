"""Monitoring data (监测感知): stations and sensors (record kinds), readings and their hourly aggregates, the
latest value of every sensor, alarm thresholds and alarms.

Readings are written only by `storage.store_readings` (batched, idempotent on (sensor, ts)); on PostgreSQL
the table is partitioned by month (see migrations/0001_initial.py and storage.py).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.geo import haversine_m, locator
from tianmu.core.models import PlacedModel, RegionalModel

from .choices import (
    ACTIVE_STATUSES,
    DEFAULT_UNITS,
    AlarmKind,
    AlarmStatus,
    Level,
    Metric,
    Rule,
    SensorType,
    Soil,
    StationType,
)

__all__ = ["Station", "Sensor", "Basin", "Reading", "HourlyAggregate", "DailyAggregate", "SensorLatest", "Threshold", "Alarm",
           "SENSOR_STATION_TOLERANCE_M"]

# A sensor with a station sits at the station; typed coordinates may differ by survey error only.
SENSOR_STATION_TOLERANCE_M = 500


# Station and sensor codes are segments of MQTT topics (tianmu/v1/{station}/{sensor}/data): MQTT's wildcards and
# separator, and what NATS subjects cannot carry (its "." token separator, "*", ">" and whitespace: a NATS broker
# disconnects the publishing device), are refused where the code is entered.
WIRE_FORBIDDEN = re.compile(r"[./+#*>\s\x00-\x1f\x7f]")


def wire_code_errors(code: str | None) -> list:
    if code and WIRE_FORBIDDEN.search(code):
        return [_("编码会用作 MQTT 主题的一段,不能含有 . / + # * > 或空白字符(NATS 消息服务器会断开这样的设备)")]
    return []


class Station(PlacedModel):
    """A monitoring station (监测站): a rain gauge, a water-level gauge, a GNSS or crack meter on a slope, …"""

    station_type = models.CharField(_("站点类型"), max_length=24, choices=StationType.choices, db_index=True)
    hazard = models.ForeignKey("registry.HazardSource", verbose_name=_("关联危险源"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="stations",
                               help_text=_("该站监测的危险源(如地质灾害风险区、山洪危险区)的记录编号"))
    installed_on = models.DateField(_("安装日期"), null=True, blank=True)
    calibrated_on = models.DateField(_("最近校准日期"), null=True, blank=True)
    warning_level_m = models.FloatField(_("警戒水位(m)"), null=True, blank=True,
                                        help_text=_("水位站:超过即黄色告警(可用站点阈值覆盖)"))
    guaranteed_level_m = models.FloatField(_("保证水位(m)"), null=True, blank=True,
                                           help_text=_("水位站:超过即红色告警(可用站点阈值覆盖)"))
    operator = models.CharField(_("运维单位"), max_length=128, blank=True)

    class Meta(PlacedModel.Meta):
        verbose_name = _("监测站")
        verbose_name_plural = _("监测站")
        indexes = [models.Index(fields=["lon", "lat"])]

    def clean(self):
        errors: dict[str, list] = {}
        if (self.warning_level_m is not None and self.guaranteed_level_m is not None
                and self.guaranteed_level_m < self.warning_level_m):
            errors["guaranteed_level_m"] = [_("保证水位不应低于警戒水位")]
        if wire_code_errors(self.code):
            errors["code"] = wire_code_errors(self.code)
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        # Sensors sit at their station: keep their stored place in step when the station moves.
        self.sensors.exclude(lon=self.lon, lat=self.lat, region_id=self.region_id).update(
            lon=self.lon, lat=self.lat, region_id=self.region_id, updated_at=timezone.now())


class Sensor(PlacedModel):
    """A sensor (传感器): one measured quantity of a station. Its `code` is the device id on the wire.

    A sensor with a station takes the station's region and point; one without is a stand-alone device (e.g.
    a gas detector in an enterprise) placed by its own coordinates.
    """

    station = models.ForeignKey(Station, verbose_name=_("所属监测站"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="sensors",
                                help_text=_("监测站的记录编号;填写后位置与所属区域取自监测站,留空为独立安装的设备"))
    sensor_type = models.CharField(_("监测量"), max_length=24, choices=SensorType.choices, db_index=True)
    unit = models.CharField(_("单位"), max_length=16, blank=True, help_text=_("留空按监测量取默认单位"))
    valid_min = models.FloatField(_("量程下限"), null=True, blank=True,
                                  help_text=_("低于下限的读数视为设备异常,不入库"))
    valid_max = models.FloatField(_("量程上限"), null=True, blank=True,
                                  help_text=_("高于上限的读数视为设备异常,不入库"))
    interval_s = models.PositiveIntegerField(_("上报间隔(秒)"), default=300, blank=True,
                                             validators=[MinValueValidator(1)], help_text=_("默认 300 秒"))
    retired = models.BooleanField(_("已停用"), default=False, db_index=True,
                                  help_text=_("停用的传感器发来的数据不入库,记为死信"))

    class Meta(PlacedModel.Meta):
        verbose_name = _("传感器")
        verbose_name_plural = _("传感器")

    def clean(self):
        errors: dict[str, list] = {}
        if wire_code_errors(self.code):
            errors["code"] = wire_code_errors(self.code)
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            errors.setdefault("valid_max", []).append(_("量程上限不应小于下限"))
        if not self.unit and self.sensor_type:
            self.unit = DEFAULT_UNITS.get(self.sensor_type, "")
        if self.interval_s is None:
            self.interval_s = self._meta.get_field("interval_s").default
        if self.station_id:
            station = self.station
            if self.lon is not None and self.lat is not None:
                try:
                    far = haversine_m(float(self.lon), float(self.lat), station.lon, station.lat)
                except (TypeError, ValueError):
                    far = 0
                if far > SENSOR_STATION_TOLERANCE_M:
                    errors.setdefault("station", []).append(
                        _("传感器坐标与所属监测站相距超过 %(m)s 米,应填写监测站的坐标") % {"m": SENSOR_STATION_TOLERANCE_M})
            region = self.region if self.region_id else None
            if region is None and not errors and self.lon is not None and self.lat is not None:
                try:
                    region = locator.locate(float(self.lon), float(self.lat))
                except (TypeError, ValueError):
                    region = None
            if region is not None and region.pk != station.region_id:
                errors.setdefault("station", []).append(_("所属监测站不在该传感器所在的区域内"))
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        if self.station_id:
            station = self.station
            self.lon, self.lat, self.region_id = station.lon, station.lat, station.region_id
        if not self.unit and self.sensor_type:
            self.unit = DEFAULT_UNITS.get(self.sensor_type, "")
        super().save(*args, **kwargs)

    @property
    def active(self) -> bool:
        return not self.retired

    def in_range(self, value: float) -> bool:
        return ((self.valid_min is None or value >= self.valid_min)
                and (self.valid_max is None or value <= self.valid_max))


class Reading(models.Model):
    """One measurement: (sensor, ts) is the key, so storing the same reading twice is a no-op.

    Written only through storage.store_readings; partitioned by month on PostgreSQL.
    """

    pk = models.CompositePrimaryKey("sensor_id", "ts")
    sensor = models.ForeignKey(Sensor, on_delete=models.DO_NOTHING, related_name="+")
    ts = models.DateTimeField(_("观测时间"))
    value = models.FloatField(_("数值"))

    class Meta:
        db_table = "sensing_reading"
        verbose_name = _("监测数据")
        verbose_name_plural = _("监测数据")

    def __str__(self) -> str:
        return f"{self.sensor_id}@{self.ts.isoformat()}={self.value}"


class Aggregate(models.Model):
    """Count, sum, minimum and maximum of one sensor's readings in one time bucket, kept up to date by ingest
    (storage.py) from exactly the readings that were new."""

    readings = models.PositiveIntegerField(_("读数个数"))
    total = models.FloatField(_("合计"))
    minimum = models.FloatField(_("最小值"))
    maximum = models.FloatField(_("最大值"))

    class Meta:
        abstract = True

    @property
    def average(self) -> float:
        return self.total / self.readings if self.readings else 0.0


class HourlyAggregate(Aggregate):
    """One sensor's readings in one UTC hour (start, end], labelled by its end (hour_of)."""

    pk = models.CompositePrimaryKey("sensor_id", "hour")
    sensor = models.ForeignKey(Sensor, on_delete=models.DO_NOTHING, related_name="+", db_index=False)
    hour = models.DateTimeField(_("小时(止)"))

    class Meta:
        db_table = "sensing_hourly"
        verbose_name = _("小时统计")
        verbose_name_plural = _("小时统计")


class DailyAggregate(Aggregate):
    """One sensor's readings in one observation day. The day runs from SENSING_DAY_START_HOUR local time
    (08:00 Beijing time by default, the hydrological day of daily rainfall) to the same hour the next day, and
    is named by the date it starts on."""

    pk = models.CompositePrimaryKey("sensor_id", "day")
    sensor = models.ForeignKey(Sensor, on_delete=models.DO_NOTHING, related_name="+", db_index=False)
    day = models.DateField(_("日期"))

    class Meta:
        db_table = "sensing_daily"
        verbose_name = _("日统计")
        verbose_name_plural = _("日统计")


class SensorLatest(models.Model):
    """The newest reading of a sensor and its current alarm level: "latest of every sensor" is one small
    query. Also caches the whole-hour parts of the antecedent precipitation indexes of rain gauges for the
    current hour."""

    sensor = models.OneToOneField(Sensor, verbose_name=_("传感器"), primary_key=True, on_delete=models.PROTECT,
                                  related_name="latest")
    ts = models.DateTimeField(_("观测时间"))
    value = models.FloatField(_("数值"))
    received_at = models.DateTimeField(_("最近接收时间"))
    alarm_level = models.CharField(_("告警等级"), max_length=8, choices=Level.choices, blank=True, default="")
    antecedent_index = models.FloatField(_("前期影响雨量(mm)"), null=True, blank=True)
    antecedent_hour = models.DateTimeField(null=True, blank=True)
    # Whole-hour parts of the antecedent indexes at t − 24 h (antecedent_index) and t − W (soil_index) for the
    # hour antecedent_hour (rules._rain_metrics): a cache, not the values shown.
    soil_index = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("最新数据")
        verbose_name_plural = _("最新数据")

    def __str__(self) -> str:
        return f"{self.sensor_id}: {self.value}"


class Threshold(models.Model):
    """Thresholds of one alarm rule for a metric: a default per sensor type, or an override for one station.

    A level left empty is not used by the rule. Values marked [U] in `source` are unverified defaults.
    """

    rule = models.CharField(_("告警规则"), max_length=24, choices=Rule.choices, db_index=True)
    metric = models.CharField(_("监测指标"), max_length=32, choices=Metric.choices)
    sensor_type = models.CharField(_("监测量"), max_length=24, choices=SensorType.choices)
    station = models.ForeignKey(Station, verbose_name=_("监测站"), null=True, blank=True, on_delete=models.CASCADE,
                                related_name="thresholds", help_text=_("留空为该监测量的默认阈值"))
    soil = models.CharField(_("土壤状态"), max_length=8, choices=Soil.choices, default=Soil.ANY,
                            help_text=_("山洪临界雨量随前期土壤含水状态不同"))
    blue = models.FloatField(_("蓝色"), null=True, blank=True)
    yellow = models.FloatField(_("黄色"), null=True, blank=True)
    orange = models.FloatField(_("橙色"), null=True, blank=True)
    red = models.FloatField(_("红色"), null=True, blank=True)
    enabled = models.BooleanField(_("启用"), default=True)
    source = models.CharField(_("依据"), max_length=300, blank=True,
                              help_text=_("标注[U]的为未经核实的可配置默认值,须由主管部门核定"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("告警阈值")
        verbose_name_plural = _("告警阈值")
        ordering = ["rule", "metric", "sensor_type", "soil"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "metric", "sensor_type", "soil"], condition=Q(station=None),
                                    name="sensing_threshold_default_unique"),
            models.UniqueConstraint(fields=["rule", "metric", "sensor_type", "soil", "station"],
                                    condition=Q(station__isnull=False), name="sensing_threshold_station_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rule}/{self.metric}"

    def values(self) -> dict[str, float | None]:
        return {"blue": self.blue, "yellow": self.yellow, "orange": self.orange, "red": self.red}


class Alarm(models.Model):
    """An alarm: one at most active (open or acknowledged) per sensor and rule. It escalates at once,
    de-escalates only with hysteresis, and only a person acknowledges or closes it (services/alarms.py)."""

    kind = models.CharField(_("类别"), max_length=16, choices=AlarmKind.choices, default=AlarmKind.THRESHOLD)
    rule = models.CharField(_("告警规则"), max_length=24, choices=Rule.choices, db_index=True)
    metric = models.CharField(_("监测指标"), max_length=32, choices=Metric.choices)
    sensor = models.ForeignKey(Sensor, verbose_name=_("传感器"), on_delete=models.PROTECT, related_name="alarms")
    station = models.ForeignKey(Station, verbose_name=_("监测站"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="alarms")
    region = models.ForeignKey("core.Region", verbose_name=_("所属区域"), on_delete=models.PROTECT, related_name="+")
    level = models.CharField(_("等级"), max_length=8, choices=Level.choices, db_index=True)
    peak_level = models.CharField(_("最高等级"), max_length=8, choices=Level.choices)
    value = models.FloatField(_("当前值"), null=True, blank=True)
    threshold = models.FloatField(_("阈值"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=AlarmStatus.choices, default=AlarmStatus.OPEN,
                              db_index=True)
    opened_at = models.DateTimeField(_("告警时间"), default=timezone.now, db_index=True)
    observed_at = models.DateTimeField(_("数据时间"), null=True, blank=True)
    last_level_change = models.DateTimeField(_("最近等级变化"), default=timezone.now)
    calm_evaluations = models.PositiveIntegerField(default=0, help_text=_("连续低于降级条件的评估次数"))
    cleared_at = models.DateTimeField(_("条件解除时间"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("确认人"), null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    acknowledged_note = models.TextField(_("确认说明"), blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("关闭人"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+")
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    closed_note = models.TextField(_("关闭说明"), blank=True)

    class Meta:
        verbose_name = _("告警")
        verbose_name_plural = _("告警")
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["sensor", "rule"], condition=Q(status__in=ACTIVE_STATUSES),
                                    name="sensing_alarm_one_active_per_rule"),
        ]
        indexes = [models.Index(fields=["status", "level"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.rule} {self.level}"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def subject(self) -> str:
        return f"alarm:{self.pk}"


class Basin(RegionalModel):
    """A river basin or sub-basin (流域 / 小流域): a polygon drawn by the flood office or received from the water
    department, for areal rainfall (面雨量) per basin. A record kind without a point (kinds.BasinKind): code,
    name, river and river system, an optional parent basin; its outline comes only from a GeoJSON import
    (services/basins.py checks it: valid, inside the district, size limits) and its area is computed from it.
    A basin crossing towns belongs to the district; district basins are read by the towns below (serves_below).
    """

    name_en = models.CharField(_("英文名称"), max_length=128, blank=True, help_text=_("英文界面显示的名称,可留空"))
    river = models.CharField(_("河流"), max_length=64, blank=True, help_text=_("如 昌化溪、南苕溪"))
    system = models.CharField(_("水系"), max_length=64, blank=True, help_text=_("如 分水江水系、苕溪水系"))
    parent = models.ForeignKey("self", verbose_name=_("上级流域"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children", help_text=_("上级流域的编码;留空为一级流域"))
    # Only the GeoJSON import (services/basins.py) writes these: never typed in a form or a sheet.
    boundary = models.JSONField(_("边界(GeoJSON)"), null=True, blank=True, editable=False)
    area_km2 = models.FloatField(_("面积(km²)"), null=True, blank=True, editable=False)

    class Meta(RegionalModel.Meta):
        verbose_name = _("流域")
        verbose_name_plural = _("流域")

    def clean(self):
        errors: dict[str, list] = {}
        if self.parent_id is not None:
            seen, node = {self.pk}, self.parent
            while node is not None:
                if node.pk in seen:
                    errors.setdefault("parent", []).append(_("上级流域不能是本流域或其下级流域"))
                    break
                seen.add(node.pk)
                node = node.parent
        if errors:
            raise ValidationError(errors)
