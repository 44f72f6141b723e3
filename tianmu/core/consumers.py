"""Running the declared handlers (`@handles` in each app's handlers.py) as durable consumers, and their status.

Each handler is a consumer with its own cursor (core.EventCursor, named after the handler). One run of a
consumer, in one transaction:

  1. lock its cursor (a second worker skips a consumer another holds) and read the next events of its types
     (events.pending: in (txid, id) order, never past an event still being written);
  2. call the handler for each event in a savepoint; a batch handler (`batch=True`) gets them all at once and,
     if that fails, one at a time, so the events before a bad one are kept;
  3. move the cursor past the events handled, in the same transaction as the handler's writes, and commit.

So a handler's writes happen exactly once per event: a crash (the process dies, or anything that is not an
Exception) rolls back the handler's writes together with the cursor and the events come again. An event whose
handler raises stops its consumer there (the events after it wait, to keep their order) and is retried with
exponential backoff; after TIANMU_EVENT_MAX_ATTEMPTS failures it becomes a core.DeadLetter (source
"events:<consumer>", key "event:<id>", with the reason) and the consumer moves on. Other consumers never wait.

External effects (a text message, a call to another system) are not undone by a rollback: a handler should
schedule them with transaction.on_commit or a Huey task, which run only once the handler's transaction commits.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Count, Max
from django.utils import timezone

from .events import Position, after, head, lock_cursor, pending, position_of, read_limit
from .eventtypes import Handler, handlers
from .models import DeadLetter, Event, EventCursor

__all__ = ["DEFAULTS", "conf", "run_handler", "RunResult", "EventWorker", "ConsumerStatus", "consumer_status",
           "dead_letter_source", "recent_dead_letters", "backoff"]

logger = logging.getLogger("tianmu.events")

DEFAULTS = {
    "TIANMU_EVENT_MAX_ATTEMPTS": 5,  # failures of one event before it becomes a dead letter
    "TIANMU_EVENT_RETRY_SECONDS": 2.0,  # wait before the first retry; doubles with each failure …
    "TIANMU_EVENT_RETRY_MAX_SECONDS": 300.0,  # … up to this
    "TIANMU_EVENT_BATCH": 200,  # events read per consumer per transaction
    "TIANMU_EVENT_POLL_SECONDS": 1.0,  # the worker's pause when no consumer had anything to do
}
DEAD_LETTER_PREFIX = "events:"
LAG_CAP = 100_000  # lag is counted up to this many events


def conf(name: str):
    return getattr(settings, name, DEFAULTS[name])


def dead_letter_source(consumer: str) -> str:
    return DEAD_LETTER_PREFIX + consumer


def backoff(failures: int) -> timedelta:
    seconds = conf("TIANMU_EVENT_RETRY_SECONDS") * 2 ** max(failures - 1, 0)
    return timedelta(seconds=min(seconds, conf("TIANMU_EVENT_RETRY_MAX_SECONDS")))


@dataclass
class RunResult:
    handled: int = 0  # events the handler finished (committed with the cursor)
    failed: int = 0  # an event failed and will be retried
    dead: int = 0  # an event became a dead letter
    waiting: bool = False  # in backoff after a failure
    busy: bool = False  # another worker holds the cursor
    error: str = ""

    @property
    def progressed(self) -> bool:
        return bool(self.handled or self.dead)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def _event_record(event: Event) -> str:
    return json.dumps({"id": event.id, "type": event.type, "subject": event.subject, "region": event.region_code,
                       "actor": event.actor_id, "created_at": event.created_at.isoformat(),
                       "payload": event.payload}, ensure_ascii=False, default=str)


def _call(h: Handler, events: list[Event]) -> tuple[list[Event], tuple[Event, Exception, str] | None]:
    """Run the handler over `events` in savepoints; the events done, and the first failure (the event, the
    exception and its traceback) if any."""
    if not events:
        return [], None
    if h.batch and len(events) > 1:
        try:
            with transaction.atomic():
                h.func(list(events))
            return events, None
        except Exception as exc:  # retried one event at a time below, to find the one that fails
            logger.warning("events: %s failed on a batch of %d (%s); retrying one at a time", h.name, len(events),
                           _describe(exc))
    done: list[Event] = []
    for event in events:
        try:
            with transaction.atomic():
                h.func([event] if h.batch else event)
        except Exception as exc:
            return done, (event, exc, traceback.format_exc(limit=8))
        done.append(event)
    return done, None


def run_handler(h: Handler, *, now: datetime | None = None, batch: int | None = None) -> RunResult:
    """One transaction of one consumer (see the module docstring). Call outside any transaction."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("run_handler() runs its own transaction: call it outside transaction.atomic()")
    now = now or timezone.now()
    batch = batch or conf("TIANMU_EVENT_BATCH")
    result = RunResult()
    with transaction.atomic():
        limit = read_limit()  # first: before this transaction locks anything
        cursor = lock_cursor(h.name, start=h.start, limit=limit)
        if cursor is None:
            result.busy = True
            return result
        if cursor.retry_at is not None and cursor.retry_at > now:
            result.waiting = True
            return result
        start = position_of(cursor)
        events = pending(start, limit, types=h.types, batch=batch)
        done, failure = _call(h, events)
        changed = False
        if done:
            cursor.txid, cursor.position = done[-1].txid, done[-1].id
            cursor.processed += len(done)
            cursor.last_success_at = now
            cursor.failures, cursor.failing_event, cursor.retry_at = 0, None, None
            result.handled = len(done)
            changed = True
        if failure is not None:
            event, exc, trace = failure
            cursor.failures = (cursor.failures if cursor.failing_event == event.id else 0) + 1
            cursor.failing_event = event.id
            cursor.last_error, cursor.last_error_at = _describe(exc), now
            result.error = cursor.last_error
            if cursor.failures >= conf("TIANMU_EVENT_MAX_ATTEMPTS"):
                DeadLetter.objects.create(
                    source=dead_letter_source(h.name), key=f"event:{event.id}", payload=_event_record(event),
                    reason=f"{event.type} #{event.id}: failed {cursor.failures} times; last: "
                           f"{trace}"[:8000])
                logger.error("events: %s gave up on event %s (%s) after %d failures: %s", h.name, event.id,
                             event.type, cursor.failures, cursor.last_error)
                cursor.txid, cursor.position = event.txid, event.id
                cursor.failures, cursor.failing_event, cursor.retry_at = 0, None, None
                result.dead = 1
            else:
                cursor.retry_at = now + backoff(cursor.failures)
                logger.warning("events: %s failed on event %s (%s), attempt %d, retry at %s: %s", h.name, event.id,
                               event.type, cursor.failures, cursor.retry_at.isoformat(), cursor.last_error)
                result.failed = 1
            changed = True
        elif len(events) < batch:
            # Everything readable was read: move past events of other types too, so position shows the head.
            end = head(limit)
            if end is not None and end > position_of(cursor):
                cursor.txid, cursor.position = end
                changed = True
        if changed:
            cursor.save()
    return result


class EventWorker:
    """Runs every registered handler (or the named ones) until stopped: `tianmu handle_events`.

    `clock` gives the time used for backoff (tests pass their own)."""

    def __init__(self, names: Iterable[str] | None = None, *, clock: Callable[[], datetime] = timezone.now,
                 batch: int | None = None, poll: float | None = None):
        chosen = handlers()
        if names:
            wanted = set(names)
            unknown = wanted - {h.name for h in chosen}
            if unknown:
                raise LookupError(f"no handler named {', '.join(sorted(unknown))}")
            chosen = [h for h in chosen if h.name in wanted]
        self.handlers = chosen
        self.clock = clock
        self.batch = batch
        self.poll = conf("TIANMU_EVENT_POLL_SECONDS") if poll is None else poll
        self.totals = {"handled": 0, "failed": 0, "dead": 0, "errors": 0}

    def step(self) -> dict[str, RunResult]:
        """Give every consumer one transaction."""
        results = {}
        for h in self.handlers:
            try:
                result = run_handler(h, now=self.clock(), batch=self.batch)
            except Exception as exc:  # the database, not the handler: try again next round
                logger.exception("events: %s could not run", h.name)
                result = RunResult(error=_describe(exc))
                self.totals["errors"] += 1
            for key in ("handled", "failed", "dead"):
                self.totals[key] += getattr(result, key)
            results[h.name] = result
        return results

    def drain(self) -> dict[str, int]:
        """Run until no consumer has anything due now (consumers waiting to retry are left waiting)."""
        progressed = True
        while progressed:
            progressed = any(r.progressed for r in self.step().values())
        return dict(self.totals)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            progressed = any(r.progressed for r in self.step().values())
            close_old_connections()
            if not progressed:
                stop.wait(self.poll)


# ---- status -----------------------------------------------------------------------------------------------------

@dataclass
class ConsumerStatus:
    name: str
    types: tuple[str, ...] | None  # None: a consume() caller reading every type
    registered: bool
    started: bool  # has a cursor
    position: int
    head: int
    lag: int  # events of its types not yet handled (up to LAG_CAP)
    lag_capped: bool
    oldest_pending_at: datetime | None
    processed: int
    last_success_at: datetime | None
    failures: int
    failing_event: int | None
    retry_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    dead_letters: int  # unresolved
    handler: Handler | None = field(default=None, repr=False)

    @property
    def state(self) -> str:
        """ok · behind (has pending events) · failing (retrying an event) · idle (never ran)."""
        if self.failures:
            return "failing"
        if self.lag:
            return "behind"
        return "ok" if self.started else "idle"


def consumer_status() -> list[ConsumerStatus]:
    """Every registered handler and every other cursor, with position, lag, last success, failures and dead
    letters."""
    cursors = {c.consumer: c for c in EventCursor.objects.all()}
    registered = {h.name: h for h in handlers()}
    letters = dict(DeadLetter.objects.filter(source__startswith=DEAD_LETTER_PREFIX, resolved=False)
                   .values_list("source").annotate(n=Count("id")).values_list("source", "n"))
    newest = Event.objects.aggregate(m=Max("id"))["m"] or 0
    out = []
    for name in sorted(set(cursors) | set(registered)):
        h, c = registered.get(name), cursors.get(name)
        types = h.types if h else None
        lag, oldest = 0, None
        if c is not None or h.start == "beginning":  # a new consumer starting "now" has nothing pending
            qs = Event.objects.filter(after(position_of(c) if c else Position(0, 0)))
            if types is not None:
                qs = qs.filter(type__in=types)
            lag = qs.order_by()[:LAG_CAP].count()
            oldest = qs.order_by("txid", "id").values_list("created_at", flat=True).first() if lag else None
        out.append(ConsumerStatus(
            name=name, types=types, registered=h is not None, started=c is not None,
            position=c.position if c else 0, head=newest, lag=lag, lag_capped=lag >= LAG_CAP,
            oldest_pending_at=oldest, processed=c.processed if c else 0,
            last_success_at=c.last_success_at if c else None, failures=c.failures if c else 0,
            failing_event=c.failing_event if c else None, retry_at=c.retry_at if c else None,
            last_error=c.last_error if c else "", last_error_at=c.last_error_at if c else None,
            dead_letters=letters.get(dead_letter_source(name), 0), handler=h))
    return out


def recent_dead_letters(limit: int = 20):
    return DeadLetter.objects.filter(source__startswith=DEAD_LETTER_PREFIX).order_by("-id")[:limit]
