"""Domain events: the outbox written with each change, and cursor-based consumers.

    emit("registry.shelter.created", actor=user, region=shelter.region, subject="shelter:12", payload={...})

must be called inside the service's transaction, so the event exists exactly when the change does, and only
with a type declared in an app's events.py and a payload that fits its schema (core/eventtypes.py).

Consumers read the outbox in (txid, id) order with a saved cursor (core.EventCursor):
`consume("name", handler)` hands each batch of new events to the handler and advances the cursor in the same
transaction as the handler's own writes, so a crash replays, never skips. The worker for declared handlers
(`tianmu handle_events`, core/consumers.py) builds on the same reads, one event at a time with retries.

Why (txid, id) and not id alone: on PostgreSQL ids are handed out when a row is inserted, not when its
transaction commits, so event 11 may be visible while event 10 is still being written by a slower
transaction; a cursor that moved past 11 would never see 10. Each event therefore records the id of its
transaction, and a consumer only reads events of transactions older than every transaction of this database
still running (READ_HORIZON). Every later event sorts after those, so the cursor never passes an event that is
yet to appear; the price is that a long transaction of this database holds the consumers back until it ends
(visible as lag on /ops/events/). On SQLite writers commit one at a time (BEGIN IMMEDIATE), so ids are in
commit order and txid is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .eventtypes import event_type
from .models import Event, EventCursor
from .scope import scope_q

__all__ = ["emit", "consume", "visible_events", "Position", "read_limit", "after", "pending", "head",
           "lock_cursor", "position_of"]

CURRENT_TXID = "pg_current_xact_id()::text::bigint"
# The oldest transaction of this database still running, or the first transaction id not yet handed out: every
# event with a smaller txid is committed (or rolled back) and visible to the statements that follow. Running
# transactions of other databases on the server are left out (they never write our events), so they do not hold
# the consumers back. A transaction id ≥ the snapshot's xmax counts as running by definition. pg_stat_activity
# shows every session's backend_xid to any database user; pg_current_xact_id() needs PostgreSQL 13 or later.
READ_HORIZON = """
SELECT COALESCE(
  (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
   WHERE x::text::bigint % 4294967296 IN (
     SELECT backend_xid::text::bigint FROM pg_stat_activity
     WHERE datname = current_database() AND backend_xid IS NOT NULL)),
  pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
"""


def emit(type: str, *, actor=None, region=None, subject: str = "", payload: dict | None = None) -> Event:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must run inside the service's transaction")
    payload = payload if payload is not None else {}
    event_type(type).check(payload)  # UndeclaredEventType / PayloadMismatch: a bug in the caller
    postgres = connection.vendor == "postgresql"
    event = Event.objects.create(
        type=type,
        actor=actor if getattr(actor, "pk", None) else None,
        region=region,
        region_code=getattr(region, "code", "") or "",
        subject=subject,
        payload=payload,
        created_at=timezone.now(),
        txid=RawSQL(CURRENT_TXID, ()) if postgres else 0,
    )
    if postgres:
        del event.__dict__["txid"]  # written by the database: deferred, read again only if asked for
    return event


# ---- reading in a consumer's order ---------------------------------------------------------------------------------

class Position(NamedTuple):
    txid: int
    id: int


def read_limit() -> Q:
    """The events a consumer may read in this transaction: those whose writing transaction ended before every
    transaction still running began. Must be the transaction's first statement (before it locks or writes,
    which gives it a transaction id of its own)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute(READ_HORIZON)
            return Q(txid__lt=c.fetchone()[0])
    last = Event.objects.order_by("-id").values_list("id", flat=True).first()
    return Q(id__lte=last or 0)


def after(position: Position) -> Q:
    return Q(txid__gt=position.txid) | Q(txid=position.txid, id__gt=position.id)


def pending(position: Position, limit: Q, *, types: Iterable[str] | None = None, batch: int = 500) -> list[Event]:
    qs = Event.objects.filter(after(position) & limit)
    if types is not None:
        qs = qs.filter(type__in=list(types))
    return list(qs.order_by("txid", "id")[:batch])


def head(limit: Q) -> Position | None:
    """The last readable event's position."""
    row = Event.objects.filter(limit).order_by("-txid", "-id").values_list("txid", "id").first()
    return Position(*row) if row else None


def lock_cursor(consumer: str, *, start: str = "beginning", limit: Q | None = None) -> EventCursor | None:
    """The consumer's cursor, locked for this transaction (created on first use: at the start of the outbox, or
    at its current head when start="now"); None if another worker holds it."""
    qs = EventCursor.objects.select_for_update(skip_locked=True)
    cursor = qs.filter(consumer=consumer).first()
    if cursor is not None:
        return cursor
    at = head(limit if limit is not None else Q()) if start == "now" else None
    EventCursor.objects.get_or_create(consumer=consumer, defaults={"txid": at.txid, "position": at.id} if at else {})
    return qs.filter(consumer=consumer).first()


def position_of(cursor: EventCursor) -> Position:
    return Position(cursor.txid, cursor.position)


def consume(consumer: str, handler: Callable[[list[Event]], None], *, types: Iterable[str] | None = None,
            batch: int = 500) -> int:
    """Process events after the consumer's cursor, one batch; returns how many were handed to the handler.

    The handler's writes and the cursor advance commit together: if the handler raises, nothing is kept and
    the same events come again. Runs its own transaction, so it may not be called inside one."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("consume() runs its own transaction: call it outside transaction.atomic()")
    types = None if types is None else list(types)
    with transaction.atomic():
        limit = read_limit()
        cursor = lock_cursor(consumer, limit=limit)
        if cursor is None:
            return 0
        events = pending(position_of(cursor), limit, types=types, batch=batch)
        if events:
            handler(events)
        # A full batch ends at its last event; a short one read everything readable, so the cursor moves to
        # the head, past events of other types too.
        end = Position(events[-1].txid, events[-1].id) if len(events) == batch else head(limit)
        if end is not None and end > position_of(cursor):
            cursor.txid, cursor.position = end
            cursor.save(update_fields=["txid", "position", "updated_at"])
        return len(events)


def visible_events(actor, after_id: int = 0, limit: int = 200):
    """Events after `after_id` that the actor may see (their region's subtree, or region-less events)."""
    from .scope import region_prefix

    if region_prefix(actor) is None:
        return Event.objects.none()
    qs = Event.objects.filter(id__gt=after_id).order_by("id")
    scope = scope_q(actor, "region_code")
    if scope:
        qs = qs.filter(scope | Q(region_code=""))
    return qs.select_related("actor")[:limit]
