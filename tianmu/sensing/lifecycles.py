"""The alarm's lifecycle (core/workflow.py): a person acknowledges an open alarm and closes it with a note.

Opening, escalating (which re-opens an acknowledged alarm), de-escalating and clearing are the rules' doing,
in services/alarms.py; these are the people's transitions, with who may make them. From this declaration
come the permission-table rows "sensing.alarm.acknowledge" and "sensing.alarm.close", the service
(`ALARM.perform`), the API routes, the page buttons' checks and the events "sensing.alarm.acknowledged" and
"sensing.alarm.closed"."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from tianmu.core.scope import HOME, WRITERS
from tianmu.core.workflow import REQUIRED, Lifecycle, Transition

from .choices import AlarmStatus
from .events import AlarmPayload
from .models import Alarm

__all__ = ["ALARM"]


def _acknowledged(alarm: Alarm, step) -> None:
    alarm.acknowledged_by, alarm.acknowledged_at, alarm.acknowledged_note = step.actor, step.at, step.note


def _closed(alarm: Alarm, step) -> None:
    alarm.closed_by, alarm.closed_at, alarm.closed_note = step.actor, step.at, step.note


def _after_close(alarm: Alarm, step) -> None:
    """The sensor's colour on the map follows its remaining active alarms."""
    from .services.alarms import refresh_sensor_level

    refresh_sensor_level(alarm.sensor_id)


def _payload(alarm: Alarm) -> dict:
    from .services.alarms import _payload as alarm_payload

    return alarm_payload(alarm)


def _visible(actor):
    from .queries import alarms

    return alarms(actor)


writers = {role: HOME for role in WRITERS}

ALARM = Lifecycle(
    "sensing.alarm", Alarm,
    states=dict(AlarmStatus.choices),
    transitions=[
        Transition("acknowledge", [AlarmStatus.OPEN], AlarmStatus.ACKNOWLEDGED, _("确认"), event="acknowledged",
                   grants=writers, apply=_acknowledged, state_error=_("只有未确认的告警可以确认"),
                   description=_("人员确认了告警(逐条或按站一次确认)"),
                   payload_fields={"together": (int | None, None)}),  # how many a station acknowledgement took
        Transition("close", [AlarmStatus.OPEN, AlarmStatus.ACKNOWLEDGED], AlarmStatus.CLOSED, _("关闭"),
                   event="closed", grants=writers, note=REQUIRED, apply=_closed, after=_after_close,
                   state_error=_("告警已关闭"), note_error=_("关闭告警须填写处置说明"), style="danger",
                   description=_("人员填写处置说明后关闭了告警")),
    ],
    payload=_payload, payload_schema=AlarmPayload, subject=Alarm.subject, visible=_visible, related=("sensor", "station", "region"),
)
