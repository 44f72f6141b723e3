"""From alarms to drafts, through the real path: readings → sensing's ingest service and rules → alarm events in
the outbox → the handler run by the event consumer (as `tianmu handle_events` runs it) → a draft for a person.
Several alarms in one town within the window merge into one draft; an escalation raises its level; nothing is
issued without a person."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tianmu.core.consumers import run_handler
from tianmu.core.eventtypes import handler
from tianmu.core.models import Event
from tianmu.sensing.services import ingest_messages
from tianmu.sensing.tests.conftest import base_time, make_sensor, make_station
from tianmu.warnings import services
from tianmu.warnings.choices import Origin, WarningState
from tianmu.warnings.models import HazardWarning

# Transactional: the consumer runs its own transactions.
pytestmark = pytest.mark.django_db(transaction=True)
M = timedelta(minutes=1)
HANDLER = "tianmu.warnings.handlers.draft_from_alarms"


def send(sensor, *readings):
    station = sensor.station.code if sensor.station_id else "-"
    body = {"readings": [{"ts": ts.isoformat(), "value": v} for ts, v in readings]}
    return ingest_messages([(f"tianmu/v1/{station}/{sensor.code}/data", json.dumps(body).encode())])


def rainstorm(**filters):
    return HazardWarning.objects.filter(hazard_type="rainstorm", **filters)


def consume() -> int:
    result = run_handler(handler(HANDLER))
    assert not result.error, result.error
    return result.handled


@pytest.fixture(autouse=True)
def default_thresholds(db):
    """The default thresholds sensing's migration seeds, which the flush after a transactional test removes."""
    seed_default_thresholds()


def seed_default_thresholds() -> None:
    from importlib import import_module

    from django.apps import apps

    import_module("tianmu.sensing.migrations.0002_default_thresholds").seed(apps, None)


@pytest.fixture
def gauges(world):
    """Two rain gauges in village A1 and one in village B1."""
    admin = world["users"]["admin"]
    out = {}
    for key, region in (("a1", world["village_a"]), ("a2", world["village_a"]), ("b", world["village_b"])):
        station = make_station(admin, region, f"ST-{key}")
        out[key] = make_sensor(admin, station, f"RG-{key}", valid_min=0, valid_max=300)
    return out


def test_an_orange_alarm_drafts_a_warning_citing_its_readings_and_rule(world, gauges):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # 70 mm in 2 h: orange rainstorm
    assert Event.objects.filter(type="sensing.alarm.opened", payload__level="orange").exists()
    assert not HazardWarning.objects.exists()  # nothing until the consumer runs
    assert consume() >= 1
    # 70 mm in 2 h is an orange rainstorm signal and above the flash-flood critical rainfall (red): one draft each.
    assert sorted(HazardWarning.objects.values_list("hazard_type", "level")) == [("flash_flood", "red"),
                                                                                 ("rainstorm", "orange")]
    w = rainstorm().get()
    assert w.origin == Origin.ALARM and w.state == WarningState.DRAFT and w.created_by is None
    assert (w.hazard_type, w.level, w.region) == ("rainstorm", "orange", world["town_a"])
    assert list(w.areas.all()) == [world["village_a"]]
    assert len(w.citations) == 1
    text = w.citations[0]["text"]
    assert "RG-a1" in text and "暴雨" in text and "50mm" in text and "橙色" in text and "10," in text
    assert w.alarm_ids == [w.citations[0]["alarm"]]
    assert Event.objects.filter(type="warnings.warning.drafted", subject=w.subject()).exists()
    assert not w.messages.exists()  # never issued without a person


def test_alarms_of_one_town_merge_and_an_escalation_raises_the_level(world, gauges):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # orange
    send(gauges["a2"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # orange, same town
    consume()
    assert HazardWarning.objects.count() == 2  # one rainstorm and one flash-flood draft for the town
    w = rainstorm().get()
    assert len(w.citations) == 2 and w.level == "orange"
    assert any("RG-a2" in c["text"] for c in HazardWarning.objects.get(hazard_type="flash_flood").citations)
    send(gauges["a1"], (t0 + 140 * M, 40.0))  # 110 mm within 3 h: red
    assert Event.objects.filter(type="sensing.alarm.escalated", payload__level="red").exists()
    consume()
    w.refresh_from_db()
    assert rainstorm().count() == 1
    assert w.level == "red" and "红色" in w.headline and len(w.citations) == 3
    merged = Event.objects.filter(type="warnings.warning.merged", subject=w.subject()).order_by("id")
    assert [e.payload["raised_from"] for e in merged] == [None, "orange"]


def test_another_town_gets_its_own_draft_and_a_later_window_a_new_one(world, gauges, settings):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])
    send(gauges["b"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])
    consume()
    assert set(rainstorm().values_list("region__code", flat=True)) == {"330112001", "330112002"}
    settings.WARNINGS_MERGE_WINDOW_MINUTES = 0  # the window has passed
    send(gauges["a2"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])
    consume()
    assert rainstorm(region__code="330112001").count() == 2


def test_yellow_alarms_and_device_faults_draft_nothing(world, gauges):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 60 * M, 9.0) for i in range(7)])  # 54 mm in 6 h: a yellow rainstorm signal
    assert Event.objects.filter(type="sensing.alarm.opened", payload__level="yellow").exists()
    consume()
    assert not rainstorm().exists()


def test_an_issued_warning_at_that_level_already_covers_it(world, gauges, users):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])
    consume()
    w = rainstorm().get()
    services.submit(users["town_staff"], w)
    services.approve(users["town_staff_2"], w)
    services.issue(users["town_staff"], w)
    send(gauges["a2"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # orange again, same village
    consume()
    assert rainstorm().count() == 1


def test_the_handler_is_exactly_once_per_event(world, gauges):
    t0 = base_time()
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])
    consume()
    citations = sorted(len(w.citations) for w in HazardWarning.objects.all())
    orange_or_red = Event.objects.filter(type__in=["sensing.alarm.opened", "sensing.alarm.escalated"],
                                         payload__level__in=["orange", "red"]).count()
    assert sum(citations) == orange_or_red  # one citation per orange or red alarm event
    assert consume() == 0
    assert sorted(len(w.citations) for w in HazardWarning.objects.all()) == citations


def test_a_higher_alarm_under_an_issued_warning_drafts_its_next_version_keeping_its_areas(world, gauges, users):
    from tianmu.core.models import Region

    t0 = base_time()
    other_village = Region.objects.create(code="330112001002", name="甲二村", level="village", parent=world["town_a"],
                                          lon=119.35, lat=30.2, boundary=None)
    issued = services.draft_warning(users["commander"], {
        "hazard_type": "rainstorm", "level": "yellow", "areas": [other_village.code, world["village_a"].code],
        "expires": t0 + timedelta(days=5), "headline": "甲镇暴雨黄色预警", "description": "降雨"})
    for step in ("submit", "approve", "issue"):
        issued = getattr(services, step)(users["commander"], issued)
    send(gauges["a1"], *[(t0 + i * 20 * M, 10.0) for i in range(7)])  # orange
    consume()
    draft = rainstorm(state="draft").get()
    assert draft.previous == issued and draft.version == 2 and draft.level == "orange"
    assert set(draft.areas.all()) == {other_village, world["village_a"]}
