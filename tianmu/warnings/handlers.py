"""Reactions to other apps' events. An orange or red alarm drafts a warning for a person to review
(services.draft_from_alarm: merged per town and type within a window; never issued without a person)."""

from __future__ import annotations

from tianmu.core.eventtypes import handles


@handles("sensing.alarm.opened", "sensing.alarm.escalated")
def draft_from_alarms(event) -> None:
    from tianmu.sensing.queries import alarm_evidence

    from .conf import conf
    from .services import draft_from_alarm

    if event.payload.get("level") not in conf("WARNINGS_ALARM_LEVELS") or event.payload.get("kind") != "threshold":
        return
    draft_from_alarm(alarm_evidence(event.payload["alarm"]), now=event.created_at)
