"""The event types sensing emits (services/). Stations and sensors are record kinds: their
`sensing.station.*` and `sensing.sensor.*` types are declared with the kinds (core/registry/events.py); the
people's alarm transitions (`sensing.alarm.acknowledged`, `sensing.alarm.closed`) by the alarm's lifecycle
(lifecycles.py), on top of AlarmPayload."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from tianmu.core.eventtypes import Sentence, declare, describes


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


# ---- how these events read in the activity feed (core/feed.py) -------------------------------------------------

def _label(choices, value) -> str:
    return str(dict(choices.choices).get(value, value or ""))


def _alarm_places(payloads) -> dict[int, tuple[str, str]]:
    """alarm id → (station or sensor name, unit), for many alarm events in one query."""
    from .models import Alarm

    ids = {p.get("alarm") for p in payloads if isinstance(p.get("alarm"), int)}
    rows = Alarm.objects.filter(pk__in=ids).values_list("pk", "station__name", "sensor__name", "sensor__unit")
    return {pk: (station or sensor or "", unit or "") for pk, station, sensor, unit in rows}


def describe_alarms(events):
    """Many alarm events at once (the feed's batch hook): one query for their stations' names."""
    places = _alarm_places([e.payload or {} for e in events])
    return [_alarm_sentence(e, places) for e in events]


@describes("sensing.alarm.")
def describe_alarm(event):
    """"昌化溪青溪社区水位站 红色告警:水位超警 221.9 m(阈值 221.9)", with a link to the sensor's alarms."""
    return _alarm_sentence(event, _alarm_places([event.payload or {}]))


describe_alarm.many = describe_alarms


def _alarm_sentence(event, places):
    from django.urls import reverse
    from django.utils.translation import gettext

    from tianmu.core.feed import actor_name

    from .choices import Level, Rule

    p = event.payload or {}
    station, unit = places.get(p.get("alarm"), (p.get("sensor", ""), ""))
    params = {"place": station, "level": _label(Level, p.get("level")), "rule": _label(Rule, p.get("rule")),
              "from": _label(Level, p.get("from_level")), "actor": actor_name(event), "unit": unit,
              "value": "" if p.get("value") is None else f"{p['value']:g}",
              "threshold": "" if p.get("threshold") is None else f"{p['threshold']:g}", "note": p.get("note", "")}
    verb = event.type.rsplit(".", 1)[1]
    if verb == "opened":
        text = gettext("%(place)s %(level)s告警:%(rule)s %(value)s %(unit)s(阈值 %(threshold)s)") % params
    elif verb == "escalated":
        text = gettext("%(place)s 告警由%(from)s升级为%(level)s:%(rule)s %(value)s %(unit)s") % params
    elif verb == "deescalated":
        text = gettext("%(place)s 告警由%(from)s降为%(level)s:%(rule)s") % params
    elif verb == "cleared":
        text = gettext("%(place)s %(rule)s 告警条件已解除,待人员关闭") % params
    elif verb == "acknowledged":
        text = gettext("%(actor)s 确认了 %(place)s 的%(level)s告警(%(rule)s)") % params
    elif verb == "closed":
        text = gettext("%(actor)s 关闭了 %(place)s 的%(level)s告警(%(rule)s)") % params
    else:
        return None
    if verb in ("acknowledged", "closed") and params["note"]:
        text += gettext(":%(note)s") % params
    # The alarm's own page (why, history, the data around it, its zones); events without the id, the sensor's alarms.
    url = reverse("sensing:alarm", args=[p["alarm"]]) if isinstance(p.get("alarm"), int) else (
        reverse("sensing:alarms") + f"?sensor={p.get('sensor', '')}&status=all&sort=time")
    return Sentence(text, url, p.get("level", "") if p.get("level") in ("red", "orange", "yellow", "blue") else "")


@describes("sensing.readings.imported")
def describe_import(event):
    from django.utils.translation import gettext

    from tianmu.core.feed import actor_name

    p = event.payload or {}
    return Sentence(gettext("%(actor)s 从 CSV 导入了历史读数:%(stored)d 条入库,%(skipped)d 条已有") % {
        "actor": actor_name(event), "stored": p.get("stored", 0), "skipped": p.get("skipped", 0)})


@describes("sensing.threshold.changed")
def describe_threshold(event):
    from django.utils.translation import gettext

    from tianmu.core.feed import actor_name

    from .choices import Rule

    p = event.payload or {}
    where = p.get("station") or gettext("类型默认值")
    return Sentence(gettext("%(actor)s 修改了%(rule)s阈值(%(where)s)") % {
        "actor": actor_name(event), "rule": _label(Rule, p.get("rule")), "where": where})
