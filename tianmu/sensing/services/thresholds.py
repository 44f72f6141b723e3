"""Changing alarm thresholds (`set_threshold`), with its `sensing.threshold_changed` event."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.events import emit
from tianmu.core.scope import can, check

from ..models import Threshold

__all__ = ["set_threshold"]


def set_threshold(actor, *, rule: str, metric: str, sensor_type: str, station=None, soil: str = "any",
                  levels: dict | None = None, enabled: bool = True, source: str = "") -> Threshold:
    """Create or change a threshold: district writers change type defaults, a station's writers its overrides."""
    if station is not None:
        check(actor, "sensing.threshold.set", station.region)
    elif not can(actor, "sensing.threshold.set_default"):
        raise ScopeError(_("只有区级用户可以修改默认阈值"))
    errors: dict[str, list] = {}
    for name, value in (("rule", rule), ("metric", metric), ("sensor_type", sensor_type), ("soil", soil)):
        if value not in {v for v, _label in Threshold._meta.get_field(name).flatchoices}:
            errors.setdefault(name, []).append(_("不是有效的选项"))
    levels = {k: levels.get(k) for k in ("blue", "yellow", "orange", "red")} if levels else {}
    previous = None
    for name in ("blue", "yellow", "orange", "red"):
        value = levels.get(name)
        if value is None:
            continue
        if previous is not None and value < previous:
            errors.setdefault(name, []).append(_("高等级的阈值不应低于低等级的阈值"))
        previous = value
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        obj, created = Threshold.objects.select_for_update().get_or_create(
            rule=rule, metric=metric, sensor_type=sensor_type, soil=soil, station=station,
            defaults={**levels, "enabled": enabled, "source": source})
        if not created:
            for name, value in levels.items():
                setattr(obj, name, value)
            obj.enabled = enabled
            obj.source = source or obj.source
            obj.save()
        emit("sensing.threshold.changed", actor=actor, region=station.region if station else None,
             subject=f"threshold:{obj.pk}",
             payload={"rule": rule, "metric": metric, "sensor_type": sensor_type, "soil": soil,
                      "station": station.code if station else None, **obj.values(), "enabled": obj.enabled})
    return obj
