"""Reactions to events. An orange or red alarm drafts a warning for a person to review
(services.draft_from_alarm: merged per town and type within a window; never issued without a person). An issued,
updated or cancelled warning goes to everyone responsible for its areas through the command-communications
network (comms.services.dispatch, with call-and-respond for orange and red); a version that no longer holds
(replaced, cancelled, expired) stops its pending sends and escalations."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from tianmu.core.eventtypes import handles


@handles("sensing.alarm.opened", "sensing.alarm.escalated")
def draft_from_alarms(event) -> None:
    from tianmu.sensing.queries import alarm_evidence

    from .conf import conf
    from .services import draft_from_alarm

    if event.payload.get("level") not in conf("WARNINGS_ALARM_LEVELS") or event.payload.get("kind") != "threshold":
        return
    draft_from_alarm(alarm_evidence(event.payload["alarm"]), now=event.created_at)


@handles("warnings.warning.issued", "warnings.warning.cancelled")
def disseminate(event) -> None:
    """Send the issued version (an Alert or an Update) or its cancellation to the persons responsible for its
    areas, as the person who issued or cancelled it. Runs once per event, in the consumer's transaction, so
    the deliveries and the cursor commit together; a refusal (the actor may no longer send there) dead-letters
    the event with its reason for an operator to see on /ops/events/."""
    from tianmu.comms.services import dispatch, stop

    from .services import dispatch_arguments

    payload = event.payload
    if payload.get("origin") == "external":  # another authority's warning: theirs to disseminate
        return
    if payload["state"] == "cancelled":
        stop("warnings.warning", payload["warning"], reason=str(_("预警已解除")))
    if payload.get("previous"):
        stop("warnings.warning", payload["previous"], reason=str(_("预警已更新为新版本")))
    dispatch(event.actor, **dispatch_arguments(payload))


@handles("warnings.warning.expired")
def stop_expired(event) -> None:
    """An expired warning asks nobody to confirm any more: its pending sends and escalations stop."""
    from tianmu.comms.services import stop

    stop("warnings.warning", event.payload["warning"], reason=str(_("预警已失效")))
