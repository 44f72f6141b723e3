"""The event types sensing emits (services/). Stations and sensors are record kinds: their
`sensing.station.*` and `sensing.sensor.*` types are declared with the kinds (core/registry/events.py); the
people's alarm transitions (`sensing.alarm.acknowledged`, `sensing.alarm.closed`) by the alarm's lifecycle
(lifecycles.py), on top of AlarmPayload."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from tianmu.core.eventtypes import declare


class AlarmPayload(BaseModel):
    """What every alarm event carries: the alarm as it is after the change (subject `alarm:{id}`)."""

    alarm: int = Field(description=_("告警编号"))
    kind: str = Field(description=_("类别:threshold(阈值)或 device_fault(设备故障)"))
    rule: str = Field(description=_("告警规则"))
    metric: str = Field(description=_("监测指标"))
    level: str = Field(description=_("等级:blue / yellow / orange / red"))
    value: float | None = Field(description=_("当前值"))
    threshold: float | None = Field(description=_("阈值"))
    status: str = Field(description=_("状态:open / acknowledged / closed"))
    sensor: str = Field(description=_("传感器编码"))
    station: str | None = Field(description=_("监测站编码(独立设备为空)"))
    observed_at: str | None = Field(description=_("数据时间(ISO 8601)"))


class LevelChanged(AlarmPayload):
    from_level: str = Field(description=_("变化前的等级"))


class AutoClosed(AlarmPayload):
    reason: str = Field(description=_("关闭原因:cleared(条件解除已满设定时长)"))
    calm_hours: float = Field(description=_("条件解除后经过的数据时间(小时)"))


class ReadingsImported(BaseModel):
    rows: int = Field(description=_("CSV 数据行数"))
    stored: int = Field(description=_("新入库的读数"))
    skipped: int = Field(description=_("已有而跳过的读数"))


class ThresholdChanged(BaseModel):
    rule: str
    metric: str
    sensor_type: str
    soil: str
    station: str | None = Field(description=_("监测站编码;为空时是该类型的默认阈值"))
    blue: float | None
    yellow: float | None
    orange: float | None
    red: float | None
    enabled: bool


RULES = "sensing.services.evaluate_sensors / check_no_data"

declare("sensing.alarm.opened", AlarmPayload, _("规则或设备故障检查新开了一条告警"), emitted_by=RULES)
declare("sensing.alarm.escalated", LevelChanged, _("告警升级到更高等级(已确认的告警重新待确认)"),
        emitted_by="sensing.services.evaluate_sensors")
declare("sensing.alarm.deescalated", LevelChanged, _("告警在连续多次低于降级条件后降级"),
        emitted_by="sensing.services.evaluate_sensors")
declare("sensing.alarm.cleared", AlarmPayload, _("告警条件已解除(告警仍待人员关闭)"), emitted_by=RULES)
declare("sensing.alarm.autoclosed", AutoClosed,
        _("条件解除已满设定时长(SENSING_AUTO_CLOSE_AFTER_HOURS),未曾达到红色的告警由系统自动关闭"),
        emitted_by="sensing.services.evaluate_sensors")
declare("sensing.readings.imported", ReadingsImported, _("从 CSV 导入了历史读数"),
        emitted_by="sensing.services.import_readings_csv")
declare("sensing.threshold.changed", ThresholdChanged, _("阈值被新建或修改(类型默认值或站点专用值)"),
        emitted_by="sensing.services.set_threshold")
