"""The activity feed (动态) reads as sentences: names of people, places and records, Beijing time, a link to the
subject; each event type may declare how it reads, with fallbacks; filters by app, region and level; scoped as
the stream; raw event codes for administrators only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.utils import translation

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core.events import emit
from tianmu.core.eventtypes import Sentence, describes
from tianmu.core.feed import feed_events, sentence
from tianmu.core.models import Event
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record, delete_record, update_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(world):
    """The people of the world with real names, family name first."""
    users = world["users"]
    for key, (last, first) in {"admin": ("许", "文斌"), "town_staff": ("李", "晓燕"), "commander": ("陈", "立明")}.items():
        users[key].last_name, users[key].first_name = last, first
        users[key].save(update_fields=["last_name", "first_name"])
    return users


def rows(client, user, **params):
    client.force_login(user)
    res = client.get("/events/", params)
    return res, res.content.decode()


def test_record_changes_read_as_sentences_with_links(client, world, named):
    kind = get_kind("shelters")
    shelter = create_record(named["town_staff"], kind, record_data(kind, world["village_a"], "feed"))
    update_record(named["town_staff"], kind, shelter, {"capacity": shelter.capacity + 5, "notes": "新增床位"})
    res, html = rows(client, named["town_staff"])
    assert res.status_code == 200
    name = shelter.name
    assert f"李晓燕 新建了避灾安置场所「{name}」" in html
    assert re.search(rf"李晓燕 修改了避灾安置场所「{re.escape(name)}」:[^<]*容纳人数", html)
    assert f'href="/r/shelters/{shelter.pk}/"' in html
    assert "甲镇 · 甲一村" in html  # the place: town and village by name
    assert "registry.shelter.created" not in html  # raw codes are for administrators
    delete_record(named["town_staff"], kind, shelter)
    _res, html = rows(client, named["town_staff"])
    assert f"李晓燕 删除了避灾安置场所「{name}」" in html


def test_times_are_beijing_time(client, world, named):
    with transaction.atomic():
        e = emit("registry.shelter.deleted", actor=named["admin"], region=world["village_a"], subject="shelter:1",
                 payload={"code": "X1", "name": "某安置点", "kind": "shelters"})
    Event.objects.filter(pk=e.pk).update(created_at=datetime(2026, 7, 1, 16, 30, 5, tzinfo=UTC))
    _res, html = rows(client, named["commander"])
    assert "07-02 00:30:05" in html and "许文斌 删除了避灾安置场所「某安置点」" in html


def test_a_declared_describe_hook_and_the_fallback(client, world, named, declare_types):
    declare_types({"core.probe.flooded": {"name": (str, ""), "level": (str, "")}, "core.probe.plain": {"name": (str, "")}})

    @describes("core.probe.flooded")
    def flooded(event):
        return Sentence(f"{event.payload['name']} 进水了", "/somewhere/", event.payload["level"])

    with transaction.atomic():
        emit("core.probe.flooded", actor=named["commander"], region=world["village_a"],
             payload={"name": "甲一村文化礼堂", "level": "orange"})
        emit("core.probe.plain", actor=named["commander"], region=world["village_a"], payload={"name": "<b>甲</b>"})
    _res, html = rows(client, named["commander"])
    assert '<a href="/somewhere/">甲一村文化礼堂 进水了</a>' in html and 'class="tag level-orange"' in html
    # Without a hook: the actor, the declared description and the payload's name, escaped.
    assert "陈立明:test type core.probe.plain「&lt;b&gt;甲&lt;/b&gt;」" in html and "<b>甲</b>" not in html

    @describes("core.probe.plain")
    def broken(event):
        raise ValueError("a bug in one describer")

    event = Event.objects.get(type="core.probe.plain")
    assert "test type core.probe.plain" in sentence(event).text  # falls back, never breaks the page


def test_filters_by_app_region_and_level(client, world, named, declare_types):
    declare_types({"core.probe.alarm": {"name": (str, ""), "level": (str, "")}})
    kind = get_kind("shelters")
    create_record(named["admin"], kind, record_data(kind, world["village_a"], "f1"))
    create_record(named["admin"], kind, record_data(kind, world["village_b"], "f2"))
    with transaction.atomic():
        emit("core.probe.alarm", region=world["village_a"], payload={"name": "红一", "level": "red"})
        emit("core.probe.alarm", region=world["village_b"], payload={"name": "橙二", "level": "orange"})
    leader = named["commander"]
    assert {e.type for e in feed_events(leader, app="core")} == {"core.probe.alarm"}
    assert {e.region_code for e in feed_events(leader, region=world["town_b"].code)} == {world["village_b"].code}
    assert [e.payload["name"] for e in feed_events(leader, levels=["red"])] == ["红一"]
    _res, html = rows(client, leader, app="registry", region=world["town_a"].code)
    assert "registry" in html and "红一" not in html and OUTSIDE_MARK not in html.split('id="event-table"')[1]
    _res, html = rows(client, leader, level=["red", "orange"])
    assert "红一" in html and "橙二" in html and "新建了" not in html.split('id="event-table"')[1]
    bad, _html = rows(client, leader, app="nope", region="x", level="purple")
    assert bad.status_code == 400


def test_scoped_and_codes_for_administrators_only(client, world, named):
    kind = get_kind("shelters")
    create_record(named["admin"], kind, record_data(kind, world["village_b"], "hidden"))
    _res, html = rows(client, named["town_staff"])
    assert OUTSIDE_MARK not in html
    # Asking for the other town's region shows nothing of it.
    _res, html = rows(client, named["town_staff"], region=world["town_b"].code)
    assert OUTSIDE_MARK not in html.split('id="event-table"')[1]
    _res, html = rows(client, named["admin"])  # a staff administrator
    assert "registry.shelter.created" in html and "事件代码" in html


def test_live_rows_fragment_and_english(client, world, named):
    kind = get_kind("shelters")
    first = create_record(named["admin"], kind, record_data(kind, world["village_a"], "l1"))
    newest = Event.objects.latest("id").id
    second = create_record(named["admin"], kind, record_data(kind, world["village_a"], "l2"))
    client.force_login(named["commander"])
    frag = client.get("/events/", {"fragment": "1", "after": newest}).content.decode()
    assert "<html" not in frag and second.name in frag and first.name not in frag
    with translation.override("en"):
        client.cookies["django_language"] = "en"
        html = client.get("/events/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "created" in html.lower()
