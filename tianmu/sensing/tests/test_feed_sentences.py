"""Alarm events in the activity feed: sentences with the station's name, the level and the rule, a link to the
sensor's alarms; a page of them costs the same few queries however many alarms it shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tianmu.core.feed import sentence, sentences
from tianmu.core.models import Event

from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)


def test_alarm_sentences(world, net, t0):
    send(net["rain_a"], *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    opened = Event.objects.filter(type="sensing.alarm.opened").order_by("id")
    texts = [s.text for s in sentences(opened)]
    assert texts and all(t.startswith(net["stations"]["rain_a"].name + " ") for t in texts)
    flash = next(s for s in sentences(opened) if "山洪" in s.text)
    flash_event = next(e for e in opened if e.payload["rule"] == "flash_flood")
    assert flash.level in ("red", "orange") and flash.url == f"/sensing/alarms/{flash_event.payload['alarm']}/"
    station_name = net["stations"]["rain_a"].name
    assert station_name in flash.text and "告警" in flash.text
    one = sentence(opened.first())  # one by one reads the same as in a batch
    assert one == sentences([opened.first()])[0]


def test_a_page_of_alarm_events_costs_the_same_queries(client, world, net, t0):
    client.force_login(world["users"]["commander"])
    send(net["rain_a"], *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    with CaptureQueriesContext(connection) as few:
        assert client.get("/events/").status_code == 200
    send(net["rain_b"], *[(t0 + i * 5 * M, 6.0) for i in range(12)])
    send(net["level_a"], (t0, 2.0), (t0 + 30 * M, 4.2))
    assert Event.objects.filter(type__startswith="sensing.alarm.").count() > 4
    with CaptureQueriesContext(connection) as many:
        assert client.get("/events/").status_code == 200
    assert len(many.captured_queries) == len(few.captured_queries)
