"""Declared event types and the handlers that consume them: declarations, emit() refusing what is not declared,
the worker's exactly-once processing, retries with backoff, dead letters, lag, and the catalogue and operations
pages.

Handler tests commit their events (transaction=True): consumers read only events of finished transactions.
"""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from tianmu.core.consumers import EventWorker, backoff, consumer_status, dead_letter_source, run_handler
from tianmu.core.events import emit
from tianmu.core.eventtypes import (
    NAME_PATTERN,
    PayloadMismatch,
    UndeclaredEventType,
    declare,
    event_type,
    event_types,
    handlers_of,
    is_declared,
    undeclare,
)
from tianmu.core.models import DeadLetter, Event, EventCursor
from tianmu.core.registry.events import VERBS
from tianmu.core.registry.kinds import kinds

TICK = "core.probe.ticked"
TOCK = "core.probe.tocked"
committed = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def probe_types(declare_types):
    declare_types({TICK: {"i": int, "poison": (bool, False)}, TOCK: {"i": int}})


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


def emit_ticks(n: int, *, poison: tuple[int, ...] = (), type_: str = TICK) -> list[Event]:
    """n events, each committed in its own transaction, as services write them."""
    out = []
    for i in range(n):
        with transaction.atomic():
            payload = {"i": i, "poison": True} if i in poison else {"i": i}
            out.append(emit(type_, subject=f"probe:{i}", payload=payload))
    return out


def mark(event) -> None:
    """The handler's own write: one row per event handled (DeadLetter is just a handy core table here)."""
    DeadLetter.objects.create(source="probe", key=str(event.payload["i"]), payload="", reason="handled")


def marks() -> list[int]:
    return sorted(int(k) for k in DeadLetter.objects.filter(source="probe").values_list("key", flat=True))


# ---- declarations ------------------------------------------------------------------------------------------------

def test_every_declared_type_follows_the_scheme_and_record_kinds_declare_theirs():
    names = {t.name for t in event_types()}
    assert all(NAME_PATTERN.match(n) for n in names)
    for kind in kinds():
        app = kind.model._meta.app_label
        for verb in VERBS:
            assert f"{app}.{kind.label()}.{verb}" in names, (kind.slug, verb)
    assert {"sensing.station.created", "sensing.sensor.imported", "registry.shelter.deleted"} <= names
    assert not any(n.startswith("registry.station.") or n.startswith("registry.sensor.") for n in names)
    for verb in ("opened", "escalated", "deescalated", "cleared", "acknowledged", "closed"):
        assert f"sensing.alarm.{verb}" in names
    assert {"sensing.readings.imported", "sensing.threshold.changed"} <= names
    assert str(event_type("sensing.alarm.opened").description)  # described
    assert all(t.declared_in for t in event_types())


@pytest.mark.parametrize("name", ["sensing.alarm_opened", "Sensing.alarm.opened", "nosuchapp.thing.done",
                                  "core.a.b.c", "core..done", "core.thing." + "x" * 60])
def test_declare_refuses_names_outside_the_scheme(name):
    with pytest.raises(ImproperlyConfigured):
        declare(name, {}, "x")
    assert not is_declared(name)


def test_a_type_cannot_be_declared_by_two_modules():
    with pytest.raises(ImproperlyConfigured, match="declared twice"):
        declare("sensing.alarm.opened", {}, "again", declared_in="somewhere.else")
    assert event_type("sensing.alarm.opened").declared_in == "tianmu.sensing.events"


def test_a_handler_must_name_declared_types(register_handler):
    with pytest.raises(ImproperlyConfigured, match="no app"):
        register_handler(lambda e: None, "core.probe.unknown")
    with pytest.raises(ImproperlyConfigured):
        register_handler(lambda e: None, TICK, name="x" * 65)


@pytest.mark.django_db
def test_emit_refuses_an_undeclared_type_or_a_payload_that_does_not_fit():
    with transaction.atomic():
        with pytest.raises(UndeclaredEventType, match="not declared"):
            emit("core.probe.unknown", payload={})
        with pytest.raises(UndeclaredEventType):
            emit("sensing.alarm_opened", payload={})  # the old name
        with pytest.raises(PayloadMismatch, match="i"):
            emit(TICK, payload={})  # missing
        with pytest.raises(PayloadMismatch, match="extra"):
            emit(TICK, payload={"i": 1, "extra": 2})
        with pytest.raises(PayloadMismatch):
            emit(TICK, payload={"i": "1"})  # no coercion: strict
        with pytest.raises(PayloadMismatch):
            emit(TICK, payload=[1])
        emit(TICK, payload={"i": 1})
    assert list(Event.objects.values_list("type", flat=True)) == [TICK]


# ---- the worker ----------------------------------------------------------------------------------------------------

@committed
def test_each_event_is_handled_once_with_the_handlers_writes(register_handler):
    h = register_handler(mark, TICK, name="probe.once")
    emit_ticks(5)
    worker = EventWorker([h.name], batch=2)
    assert worker.drain()["handled"] == 5
    assert marks() == [0, 1, 2, 3, 4]
    assert worker.drain()["handled"] == 5  # nothing new: the totals stay
    assert marks() == [0, 1, 2, 3, 4]
    emit_ticks(1)
    worker.drain()
    assert marks() == [0, 0, 1, 2, 3, 4]  # the new event (its i is 0 again), once
    cursor = EventCursor.objects.get(consumer=h.name)
    assert cursor.processed == 6 and cursor.position == Event.objects.latest("id").id and cursor.failures == 0


class Crash(BaseException):
    """The worker process dying mid-batch (not an Exception: no retry bookkeeping, nothing committed)."""


@committed
def test_a_crash_mid_batch_replays_the_batch_without_duplicate_writes(register_handler):
    crashed = []

    def handle(event):
        mark(event)
        if event.payload["i"] == 2 and not crashed:
            crashed.append(event.id)
            raise Crash()

    h = register_handler(handle, TICK, name="probe.crash")
    emit_ticks(5)
    with pytest.raises(Crash):
        run_handler(h, batch=10)
    assert marks() == []  # events 0 and 1 were handled, but their writes went with the crash …
    assert EventCursor.objects.filter(consumer=h.name, position__gt=0).count() == 0  # … and so did the cursor
    assert run_handler(h, batch=10).handled == 5
    assert marks() == [0, 1, 2, 3, 4]


@committed
def test_a_failing_event_is_retried_with_backoff_then_dead_lettered_and_the_consumer_moves_on(
        register_handler, settings):
    settings.TIANMU_EVENT_MAX_ATTEMPTS = 3
    settings.TIANMU_EVENT_RETRY_SECONDS = 2

    def handle(event):
        mark(event)  # rolled back with the failure
        if event.payload.get("poison"):
            raise ValueError(f"cannot handle probe {event.payload['i']}")

    h = register_handler(handle, TICK, name="probe.poison")
    events = emit_ticks(5, poison=(2,))
    clock = Clock()
    worker = EventWorker([h.name], clock=clock)

    first = worker.step()[h.name]
    assert (first.handled, first.failed) == (2, 1) and "cannot handle probe 2" in first.error
    cursor = EventCursor.objects.get(consumer=h.name)
    assert cursor.position == events[1].id and cursor.failures == 1 and cursor.failing_event == events[2].id
    assert cursor.retry_at == clock.now + timedelta(seconds=2)
    assert worker.step()[h.name].waiting  # not before its time
    clock.advance(2)
    assert worker.step()[h.name].failed == 1
    cursor.refresh_from_db()
    assert cursor.failures == 2 and cursor.retry_at == clock.now + timedelta(seconds=4)
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert status.state == "failing" and status.lag == 3 and status.failing_event == events[2].id
    clock.advance(4)
    assert worker.step()[h.name].dead == 1  # the third failure: a dead letter
    letter = DeadLetter.objects.get(source=dead_letter_source(h.name))
    assert letter.key == f"event:{events[2].id}" and "cannot handle probe 2" in letter.reason
    assert f'"id": {events[2].id}' in letter.payload and not letter.resolved
    worker.drain()
    assert marks() == [0, 1, 3, 4]  # each good event once; the poison event's write rolled back
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert (status.lag, status.failures, status.dead_letters, status.processed) == (0, 0, 1, 4)
    assert status.state == "ok" and "cannot handle" in status.last_error


def test_backoff_doubles_up_to_its_ceiling(settings):
    settings.TIANMU_EVENT_RETRY_SECONDS = 2
    settings.TIANMU_EVENT_RETRY_MAX_SECONDS = 10
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


@committed
def test_a_batch_handler_that_fails_is_retried_one_event_at_a_time(register_handler, settings):
    settings.TIANMU_EVENT_MAX_ATTEMPTS = 1
    calls = []

    def handle(events):
        calls.append(len(events))
        for event in events:
            mark(event)
            if event.payload.get("poison"):
                raise RuntimeError("poison")

    h = register_handler(handle, TICK, name="probe.batch", batch=True)
    emit_ticks(5, poison=(2,))
    totals = EventWorker([h.name]).drain()
    assert calls[0] == 5 and calls[1:] == [1, 1, 1, 2]  # the batch, then one by one to the poison, then the rest
    assert (totals["handled"], totals["dead"]) == (4, 1)
    assert marks() == [0, 1, 3, 4]


@committed
def test_lag_counts_the_consumers_own_types_and_position_follows_the_head(register_handler):
    h = register_handler(mark, TICK, name="probe.lag")
    emit_ticks(3)
    emit_ticks(2, type_=TOCK)
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert (status.state, status.lag, status.position, status.started) == ("behind", 3, 0, False)
    assert status.oldest_pending_at is not None and status.head == Event.objects.latest("id").id
    run_handler(h, batch=2)
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert status.lag == 1 and status.last_success_at is not None
    run_handler(h, batch=2)
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert (status.lag, status.state) == (0, "ok")
    assert status.position == status.head  # moved past the other type's events too
    assert handlers_of(TICK) == [h] and handlers_of(TOCK) == []


@committed
def test_a_handler_starting_now_ignores_the_outbox_before_it(register_handler):
    emit_ticks(2)
    h = register_handler(mark, TICK, name="probe.now", start="now")
    [status] = [s for s in consumer_status() if s.name == h.name]
    assert status.lag == 0
    assert run_handler(h).handled == 0
    emit_ticks(1)
    assert run_handler(h).handled == 1 and marks() == [0]


@committed
def test_a_handler_may_emit_declared_events_for_the_next_handler(register_handler):
    def relay(event):
        emit(TOCK, subject=event.subject, payload={"i": event.payload["i"] * 10})

    first = register_handler(relay, TICK, name="probe.relay")
    second = register_handler(mark, TOCK, name="probe.after-relay")
    emit_ticks(2)
    EventWorker([first.name, second.name]).drain()
    assert marks() == [0, 10]


@committed
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite writers commit one at a time")
def test_an_event_whose_transaction_commits_late_is_not_skipped(register_handler):
    """Event ids are handed out at insert: a slow transaction's event can have a lower id than one already
    committed. The consumer must neither skip it nor handle the later one first."""
    h = register_handler(mark, TICK, name="probe.late")
    written, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow_service():
        from django.db import connection as own

        try:
            with transaction.atomic():
                emit(TICK, payload={"i": 1})
                written.set()
                release.wait(30)
        finally:
            own.close()
            done.set()

    thread = threading.Thread(target=slow_service)
    thread.start()
    assert written.wait(30)
    with transaction.atomic():
        late_id = emit(TICK, payload={"i": 2}).id
    assert run_handler(h).handled == 0  # event 2 waits for the transaction still writing event 1
    release.set()
    thread.join(30)
    assert done.is_set()
    seen = []
    h2 = register_handler(lambda e: seen.append(e.payload["i"]), TICK, name="probe.late-order")
    assert run_handler(h).handled == 2 and marks() == [1, 2]
    run_handler(h2)
    assert seen == [1, 2] and Event.objects.filter(payload__i=1).get().id < late_id


# ---- commands -------------------------------------------------------------------------------------------------------

@committed
def test_handle_events_once_and_status_commands(register_handler, settings):
    settings.TIANMU_EVENT_MAX_ATTEMPTS = 1

    def handle(event):
        if event.payload.get("poison"):
            raise ValueError("bad probe")
        mark(event)

    h = register_handler(handle, TICK, name="probe.cmd")
    emit_ticks(3, poison=(1,))
    out = StringIO()
    call_command("handle_events", "--once", "--consumer", h.name, stdout=out)
    assert "2 handled" in out.getvalue() and "1 dead letters" in out.getvalue()
    out = StringIO()
    call_command("status", stdout=out)
    line = next(row for row in out.getvalue().splitlines() if row.startswith(h.name))
    assert line.split()[1:5] == ["ok", str(Event.objects.latest("id").id), str(Event.objects.latest("id").id), "0"]
    assert line.split()[-1] == "1"  # one dead letter
    with pytest.raises(Exception, match="no handler named"):
        call_command("handle_events", "--once", "--consumer", "probe.nobody")


# ---- pages and API ---------------------------------------------------------------------------------------------------

def test_the_catalogue_lists_every_type_in_the_readers_language(world, client, register_handler):
    h = register_handler(mark, "sensing.alarm.opened", name="probe.catalogue")
    client.force_login(world["users"]["village_responder"])
    page = client.get("/events/catalogue/")
    assert page.status_code == 200
    for t in event_types():
        assert t.name in page.text
    assert "规则或设备故障检查新开了一条告警" in page.text and h.name in page.text and "observed_at" in page.text
    client.cookies["django_language"] = "en"
    page = client.get("/events/catalogue/")
    assert "An alarm was opened by a rule or a device-fault check" in page.text
    data = client.get("/api/v1/events/types").json()
    opened = next(t for t in data if t["name"] == "sensing.alarm.opened")
    # The probe among the handlers apps declare (warnings drafts from alarms).
    assert opened["app"] == "sensing" and h.name in opened["handlers"]
    assert sorted(opened["handlers"]) == sorted(x.name for x in handlers_of("sensing.alarm.opened"))
    assert opened["description"] == "规则或设备故障检查新开了一条告警"
    assert opened["description_en"] == "An alarm was opened by a rule or a device-fault check"
    assert {"name": "alarm", "type": "int", "required": True} .items() <= next(
        f for f in opened["fields"] if f["name"] == "alarm").items()
    shelter = next(t for t in data if t["name"] == "registry.shelter.created")
    assert shelter["description"] == "新建了一条避灾安置场所记录"


def test_the_catalogue_needs_a_login(client):
    assert client.get("/events/catalogue/").status_code == 302
    assert client.get("/api/v1/events/types").status_code == 401


@pytest.mark.parametrize("role,allowed", [("commander", True), ("admin", True), ("leader", False),
                                          ("town_staff", False), ("village_responder", False),
                                          ("api_client", False)])
def test_the_operations_page_is_for_district_writers(role, allowed, world, client):
    client.force_login(world["users"][role])
    assert client.get("/ops/events/").status_code == (200 if allowed else 403)


def test_the_operations_page_shows_lag_failures_and_dead_letters_as_text(world, client, register_handler):
    h = register_handler(mark, TICK, name="probe.ops")
    with transaction.atomic():
        emit(TICK, payload={"i": 1})
        emit(TICK, payload={"i": 2})
    EventCursor.objects.create(consumer=h.name, failures=2, failing_event=1, retry_at=timezone.now(),
                               last_error="ValueError: <script>alert(1)</script>", last_error_at=timezone.now())
    DeadLetter.objects.create(source=dead_letter_source(h.name), key="event:1", payload="{}",
                              reason="<b>bad</b> probe")
    client.force_login(world["users"]["commander"])
    page = client.get("/ops/events/")
    assert page.status_code == 200 and h.name in page.text and "重试中" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<b>bad</b>" not in page.text and "&lt;b&gt;bad&lt;/b&gt; probe" in page.text
    row = page.text.split(f'<span class="mono name">{h.name}</span>', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-label="积压">2' in row


# ---- the renaming migration ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_migration_renames_stored_events_to_the_declared_names():
    from django.apps import apps

    migration = importlib.import_module("tianmu.sensing.migrations.0004_rename_event_types")
    old = ["sensing.alarm_opened", "sensing.alarm_acknowledged", "sensing.readings_imported",
           "sensing.threshold_changed", "registry.station.generated", "registry.sensor.updated",
           "registry.shelter.created"]
    Event.objects.bulk_create([Event(type=t) for t in old])
    migration.forwards(apps, None)
    renamed = list(Event.objects.order_by("id").values_list("type", flat=True))
    assert renamed == ["sensing.alarm.opened", "sensing.alarm.acknowledged", "sensing.readings.imported",
                       "sensing.threshold.changed", "sensing.station.generated", "sensing.sensor.updated",
                       "registry.shelter.created"]
    assert all(is_declared(t) for t in renamed)
    migration.backwards(apps, None)
    assert list(Event.objects.order_by("id").values_list("type", flat=True)) == old


def test_undeclare_forgets_only_what_a_test_declared():
    declare("core.probe.temporary", {}, "x", declared_in=__name__)
    undeclare("core.probe.temporary")
    assert not is_declared("core.probe.temporary") and is_declared("sensing.alarm.opened")
