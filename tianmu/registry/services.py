"""Changes to the base data beyond the generic record services (core/registry/services.py): a shelter's
availability. Validate → scope → transaction (the row locked) → history → event, like every service."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ServiceError, formatted
from tianmu.core.events import emit
from tianmu.core.scope import check

from .choices import ShelterStatus
from .kinds import ShelterKind
from .models import Shelter

__all__ = ["AVAILABILITY", "MAX_NOTE", "set_availability", "availability_problems"]

# The permission-table action (RegistryConfig.permissions): the shelter's town and the district.
AVAILABILITY = "registry.shelter.availability"
MAX_NOTE = 200
MAX_OCCUPANCY = 1_000_000


def _occupancy(value, errors: dict):
    if isinstance(value, bool):
        value = None
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors.setdefault("occupancy", []).append(_("在住人数必须是整数"))
        return None
    if isinstance(value, float) and value != number:
        errors.setdefault("occupancy", []).append(_("在住人数必须是整数"))
        return None
    if number < 0 or number > MAX_OCCUPANCY:
        errors.setdefault("occupancy", []).append(_("在住人数不能为负数"))
        return None
    return number


def availability_problems(capacity: int, status, occupancy) -> tuple[dict, str | None, int | None]:
    """Per-field errors of a state and occupancy for a shelter of `capacity`, and the normalised pair: an open
    shelter whose every place is taken is full."""
    errors: dict[str, list] = {}
    if status not in ShelterStatus.values:
        errors["status"] = [_("不是有效的选项")]
        status = None
    count = _occupancy(occupancy, errors)
    if count is not None and count > capacity:
        errors.setdefault("occupancy", []).append(
            formatted(_("在住人数不能超过容纳人数(%(capacity)s 人)"), {"capacity": capacity}))
    if status == ShelterStatus.CLOSED and count:
        errors.setdefault("occupancy", []).append(_("关闭的场所在住人数应为 0;请先转出人员或改为“已满”"))
    if status == ShelterStatus.OPEN and count is not None and count == capacity and not errors:
        status = ShelterStatus.FULL
    return errors, status, count


def set_availability(actor, shelter: Shelter, *, status: str, occupancy, note: str = "") -> Shelter:
    """Set a shelter's state (open / full / closed) and how many people are in it. The shelter's town and the
    district may (AVAILABILITY); occupancy stays within capacity, a closed shelter holds nobody, and an open one
    with every place taken becomes full. Recorded in the shelter's history and as the event
    registry.shelter.availability_changed (the evacuation app reacts to it)."""
    check(actor, AVAILABILITY, shelter.region)
    note = (note or "").strip()
    errors: dict[str, list] = {}
    if len(note) > MAX_NOTE:
        errors["note"] = [formatted(_("备注不能超过 %(n)s 个字"), {"n": MAX_NOTE})]
    with transaction.atomic():
        locked = Shelter.objects.select_for_update().select_related("region").get(pk=shelter.pk)
        problems, status, count = availability_problems(locked.capacity, status, occupancy)
        errors.update(problems)
        if errors:
            raise ServiceError(errors)
        before = (locked.status, locked.occupancy)
        if before == (status, count):
            return locked
        locked.status, locked.occupancy, locked.status_changed_at = status, count, timezone.now()
        locked._history_user = actor if getattr(actor, "pk", None) else None
        locked._change_reason = ("availability: " + note)[:100] if note else "availability"
        locked.save(update_fields=["status", "occupancy", "status_changed_at", "updated_at"])
        emit("registry.shelter.availability_changed", actor=actor, region=locked.region,
             subject=ShelterKind.subject(locked),
             payload={"code": locked.code, "name": locked.name, "status": status, "occupancy": count,
                      "capacity": locked.capacity, "free_places": locked.capacity - count
                      if status == ShelterStatus.OPEN else 0,
                      "previous_status": before[0], "previous_occupancy": before[1], "note": note})
    return locked
