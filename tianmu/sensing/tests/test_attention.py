"""Live attention (core/attention.py, sensing.views.attention): the counter of alarms new since the user last
opened the alarm list, and the alerts every page rings for — red always, orange when asked — in scope only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tianmu.conftest import OUTSIDE_MARK
from tianmu.core.attention import last_seen, mark_seen, sources_for
from tianmu.core.models import Event, SeenMark
from tianmu.sensing.models import Alarm

from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)
URL = "/sensing/attention/"


def poll(client, user, **params):
    client.force_login(user)
    res = client.get(URL, params)
    assert res.status_code == 200, res.content
    return res.json()


def cloudburst(sensor, t0, mm=6.0):
    send(sensor, *[(t0 + i * 5 * M, mm) for i in range(12)])


def test_first_poll_starts_at_the_newest_event_and_rings_for_nothing(client, world, net, t0):
    cloudburst(net["rain_a"], t0)
    first = poll(client, world["users"]["commander"])
    assert first["alerts"] == [] and first["cursor"] == Event.objects.latest("id").id
    assert first["count"] == Alarm.objects.filter(status__in=["open", "acknowledged"]).count() > 0


def test_a_new_red_alarm_rings_in_scope_only(client, world, net, t0):
    users = world["users"]
    cursors = {name: poll(client, users[name])["cursor"] for name in ("commander", "town_staff", "other_town_staff")}
    cloudburst(net["rain_b"], t0)  # town B's gauge: a red flash-flood alarm
    red = Alarm.objects.get(sensor=net["rain_b"], rule="flash_flood")
    assert red.level == "red"

    seen_by = poll(client, users["commander"], after=cursors["commander"])
    assert [a["id"] for a in seen_by["alerts"]] == [red.pk]
    alert = seen_by["alerts"][0]
    assert alert["level"] == "red" and "红色" in alert["title"] and alert["url"] == f"/sensing/alarms/{red.pk}/"  # the alarm explained
    assert OUTSIDE_MARK in alert["body"]  # the town's name
    assert seen_by["cursor"] > cursors["commander"]
    # The next poll from the new cursor does not ring again.
    assert poll(client, users["commander"], after=seen_by["cursor"])["alerts"] == []

    # Town A's staff never hear of town B's alarm; town B's do.
    other = poll(client, users["town_staff"], after=cursors["town_staff"])
    assert other["alerts"] == [] and OUTSIDE_MARK not in str(other)
    assert [a["id"] for a in poll(client, users["other_town_staff"], after=cursors["other_town_staff"])["alerts"]] == [red.pk]


def test_orange_rings_only_when_asked(client, world, net, t0):
    user = world["users"]["commander"]
    cursor = poll(client, user)["cursor"]
    cloudburst(net["rain_a"], t0, mm=3.0)  # 36 mm in an hour: an orange flash-flood alarm
    orange = Alarm.objects.get(sensor=net["rain_a"])
    assert orange.level == "orange"
    red_only = poll(client, user, after=cursor)
    both = poll(client, user, after=cursor, levels="red,orange")
    assert red_only["levels"] == ["red"] and red_only["alerts"] == []
    assert both["levels"] == ["red", "orange"] and [a["id"] for a in both["alerts"]] == [orange.pk]
    assert "橙色" in both["alerts"][0]["title"]
    # Unknown levels and a malformed cursor are ignored, never an error.
    odd = poll(client, user, after="12x", levels="purple,<b>")
    assert odd["levels"] == ["red"] and odd["alerts"] == []


def test_counter_counts_what_is_new_since_the_alarm_list_was_opened(client, world, net, t0):
    user = world["users"]["town_staff"]
    cloudburst(net["rain_a"], t0)
    before = poll(client, user)["count"]
    assert before >= 1 and last_seen(user, "sensing.alarms") is None
    client.force_login(user)
    assert client.get("/sensing/alarms/").status_code == 200
    assert SeenMark.objects.filter(user=user, key="sensing.alarms").exists()
    assert poll(client, user)["count"] == 0
    # A new alarm after that counts; so does an old one that changes level later.
    send(net["level_a"], (t0, 2.0), (t0 + 30 * M, 4.2))
    assert poll(client, user)["count"] == 1
    mark_seen(user, "sensing.alarms", timezone.now() - timedelta(days=1))
    assert poll(client, user)["count"] == before + 1


def test_attention_needs_a_login_and_is_declared_on_every_page(client, world):
    assert client.get(URL).status_code == 302
    user = world["users"]["village_responder"]
    sources = sources_for(user)
    assert [s["key"] for s in sources] == ["sensing.alarms"] and sources[0]["url"] == URL
    assert sources_for(None) == []
    client.force_login(user)
    html = client.get("/events/").content.decode()
    assert 'id="tm-attention"' in html and "core/attention.js" in html and 'data-attention="sensing.alarms"' in html
    assert 'id="attention-enable"' in html  # permission is asked by a button, never on load
