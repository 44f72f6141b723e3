"""Domain events: the outbox written with each change, and cursor-based consumers.

    emit("registry.shelter.created", actor=user, region=shelter.region, subject="shelter:12", payload={...})

must be called inside the service's transaction, so the event exists exactly when the change does.
Consumers call `consume("name", handler)`: it hands each batch of new events to the handler and advances the
saved cursor in the same transaction as the handler's own writes, so a crash replays, never skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction
from django.utils import timezone

from .models import Event, EventCursor
from .scope import scope_q

__all__ = ["emit", "consume", "visible_events"]


def emit(type: str, *, actor=None, region=None, subject: str = "", payload: dict | None = None) -> Event:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must run inside the service's transaction")
    return Event.objects.create(
        type=type,
        actor=actor if getattr(actor, "pk", None) else None,
        region=region,
        region_code=getattr(region, "code", "") or "",
        subject=subject,
        payload=payload or {},
        created_at=timezone.now(),
    )


def consume(consumer: str, handler: Callable[[list[Event]], None], *, types: Iterable[str] | None = None,
            batch: int = 500) -> int:
    """Process events after the consumer's cursor; returns how many were handled."""
    with transaction.atomic():
        cursor, _ = EventCursor.objects.select_for_update().get_or_create(consumer=consumer)
        qs = Event.objects.filter(id__gt=cursor.position).order_by("id")
        events = list(qs[:batch])
        if not events:
            return 0
        wanted = [e for e in events if types is None or e.type in set(types)]
        if wanted:
            handler(wanted)
        cursor.position = events[-1].id
        cursor.save(update_fields=["position", "updated_at"])
        return len(wanted)


def visible_events(actor, after_id: int = 0, limit: int = 200):
    """Events after `after_id` that the actor may see (their region's subtree, or region-less events)."""
    from django.db.models import Q

    from .scope import region_prefix

    if region_prefix(actor) is None:
        return Event.objects.none()
    qs = Event.objects.filter(id__gt=after_id).order_by("id")
    scope = scope_q(actor, "region_code")
    if scope:
        qs = qs.filter(scope | Q(region_code=""))
    return qs.select_related("actor")[:limit]
