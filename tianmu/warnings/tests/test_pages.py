"""The pages as a person uses them: the list (waiting drafts first, filters), the form (errors per field, areas
and a drawn polygon), the warning's page (timeline, CAP link, buttons, the dissemination slot), the buttons'
four-eyes refusal as a message, new versions, and the warning layer on the command map."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from tianmu.warnings.choices import WarningState
from tianmu.warnings.models import HazardWarning

from .helpers import make_warning

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_the_list_puts_warnings_waiting_for_review_first_and_filters(world, users):
    c = users["commander"]
    issued = make_warning(c, world["town_a"], "issued", headline="已发布的")
    waiting = make_warning(c, world["town_a"], "submitted", headline="等审核的")
    page = login(c).get("/warnings/").content.decode()
    assert page.index("等审核的") < page.index("已发布的")
    only = login(c).get("/warnings/?state=issued").content.decode()
    assert "已发布的" in only and "等审核的" not in only
    assert login(c).get("/warnings/?level=purple").status_code == 200  # a bad filter is a message, not a 500
    assert waiting.pk and issued.pk


def test_the_form_shows_each_error_on_its_field_and_keeps_the_input(world, users):
    client = login(users["town_staff"])
    assert client.get("/warnings/new/").status_code == 200
    r = client.post("/warnings/new/", {"hazard_type": "flash_flood", "level": "blue", "headline": "保留我",
                                       "description": "", "expires": "2001-01-01T08:00"})
    assert r.status_code == 422
    html = r.content.decode()
    for field in ("level", "areas", "expires", "description"):
        assert f'data-field="{field}"' in html, field
    assert 'value="保留我"' in html


def test_the_form_drafts_with_villages_and_a_polygon_in_beijing_time(world, users):
    client = login(users["town_staff"])
    poly = {"type": "Polygon", "coordinates": [[[119.28, 30.13], [119.32, 30.13], [119.32, 30.17], [119.28, 30.13]]]}
    r = client.post("/warnings/new/", {"hazard_type": "geohazard", "level": "orange", "areas": [world["village_a"].code],
                                       "polygon": json.dumps(poly), "onset": "", "expires": "2099-07-30T20:00",
                                       "headline": "甲一村地质灾害橙色预警", "description": "山体有滑动迹象"})
    assert r.status_code == 302, r.content.decode()[:2000]
    w = HazardWarning.objects.get()
    assert timezone.localtime(w.expires).hour == 20 and w.expires.utcoffset().total_seconds() == 0
    assert w.polygon and list(w.areas.all()) == [world["village_a"]]
    assert login(users["other_town_staff"]).get(r["Location"]).status_code == 404


def test_the_warning_page_shows_timeline_cap_link_and_the_dissemination_slot(world, users):
    w = make_warning(users["commander"], world["town_a"], "issued", headline="甲镇<script>预警")
    html = login(users["town_staff"]).get(f"/warnings/{w.pk}/").content.decode()
    assert "<script>预警" not in html and "&lt;script&gt;预警" in html  # data never reaches the page as HTML
    assert html.count('<li data-type="warnings.warning.') == 4 and "签发" in html
    assert f"/warnings/cap/{w.messages.get().pk}.xml" in html
    assert 'id="wn-dissemination"' in html


def test_buttons_make_transitions_and_refuse_the_author_as_approver_with_a_message(world, users):
    author = users["town_staff"]
    w = make_warning(author, world["town_a"], "draft", level="red")
    client = login(author)
    client.post(f"/warnings/{w.pk}/act/submit/")
    w.refresh_from_db()
    assert w.state == WarningState.SUBMITTED
    r = client.post(f"/warnings/{w.pk}/act/approve/", follow=True)
    w.refresh_from_db()
    assert w.state == WarningState.SUBMITTED
    assert "另一人审核" in r.content.decode()
    other = login(users["town_staff_2"])
    other.post(f"/warnings/{w.pk}/act/approve/")
    other.post(f"/warnings/{w.pk}/act/issue/")
    w.refresh_from_db()
    assert w.state == WarningState.ISSUED and w.issued_by == users["town_staff_2"]
    assert other.post(f"/warnings/{w.pk}/act/update/").status_code == 404  # not a person's transition
    r = other.post(f"/warnings/{w.pk}/revise/")
    new = HazardWarning.objects.get(previous=w)
    assert r["Location"] == f"/warnings/{new.pk}/edit/"
    edit = other.get(r["Location"])
    assert edit.status_code == 200 and "(v2)" in edit.content.decode()


def test_the_command_map_carries_the_warning_layer(world, users):
    make_warning(users["commander"], world["town_a"], "issued", level="orange", approver=users["commander_2"])
    client = login(users["town_staff"])
    html = client.get("/").content.decode()
    assert 'id="map-layer-warnings"' in html and "warnings/map.js" in html
    fc = client.get("/api/v1/warnings/map?level=orange").json()
    assert fc["warnings"] == 1 and fc["features"][0]["properties"]["level"] == "orange"
    assert client.get("/api/v1/warnings/map?level=red").json()["warnings"] == 0
    assert client.get("/api/v1/warnings/map?level=purple").status_code == 422
