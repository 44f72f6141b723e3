"""Validation with per-field messages in Chinese and English (services and API 422), and scope: town staff draft
and see their own town's warnings; several towns or the district are district work."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tianmu.conftest import OUTSIDE_MARK
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.warnings import services
from tianmu.warnings.queries import visible

from .helpers import draft_data, make_warning

pytestmark = pytest.mark.django_db


def square(lon, lat, half):
    return {"type": "Polygon", "coordinates": [[[lon - half, lat - half], [lon + half, lat - half],
                                                 [lon + half, lat + half], [lon - half, lat + half],
                                                 [lon - half, lat - half]]]}


def errors_of(actor, data) -> dict:
    with pytest.raises(ServiceError) as err:
        services.draft_warning(actor, data)
    return {e["field"]: e for e in err.value.as_list()}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"areas": [], "polygon": None}, "areas"),
    ({"areas": ["330112009"]}, "areas"),
    ({"expires": timezone.now() - timedelta(minutes=5)}, "expires"),
    ({"onset": timezone.now() + timedelta(hours=8)}, "expires"),
    ({"level": "purple"}, "level"),
    ({"hazard_type": "flash_flood", "level": "blue"}, "level"),
    ({"hazard_type": "forest_fire", "level": "blue"}, "level"),
    ({"hazard_type": "volcano"}, "hazard_type"),
    ({"headline": ""}, "headline"),
    ({"headline": "长" * 121}, "headline"),
    ({"description": ""}, "description"),
    ({"areas": [], "polygon": square(121.0, 31.0, 0.05)}, "polygon"),  # outside the district
    ({"areas": [], "polygon": {"type": "Polygon", "coordinates": [[[119.25, 30.10], [119.35, 30.20],
                                                                   [119.35, 30.10], [119.25, 30.20],
                                                                   [119.25, 30.10]]]}}, "polygon"),  # a bow tie
    ({"areas": [], "polygon": {"type": "Point", "coordinates": [119.3, 30.1]}}, "polygon"),
    ({"areas": [], "polygon": "{not json"}, "polygon"),
])
def test_each_problem_is_reported_on_its_field_in_both_languages(world, users, overrides, field):
    errs = errors_of(users["commander"], draft_data(world["town_a"], **overrides))
    assert field in errs, errs
    assert errs[field]["message"] and errs[field]["message_en"]
    assert errs[field]["message"] != errs[field]["message_en"]


def test_every_problem_at_once(world, users):
    errs = errors_of(users["commander"], {"hazard_type": "rainstorm", "level": "red", "areas": [],
                                          "expires": timezone.now() - timedelta(hours=1), "headline": "",
                                          "description": ""})
    assert {"areas", "expires", "headline", "description"} <= set(errs)


def test_a_polygon_inside_one_town_belongs_to_that_town(world, users):
    w = services.draft_warning(users["town_staff"], draft_data(world["town_a"], areas=[],
                                                               polygon=square(119.30, 30.15, 0.02)))
    assert w.region == world["town_a"] and w.polygon["coordinates"][0][0] == w.polygon["coordinates"][0][-1]


def test_api_answers_422_with_fields(world, users):
    client = Client()
    client.force_login(users["commander"])
    body = {"hazard_type": "flash_flood", "level": "blue", "areas": [], "expires": "2000-01-01T00:00:00+08:00",
            "headline": "x", "description": "y"}
    r = client.post("/api/v1/warnings/", json.dumps(body), content_type="application/json")
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"level", "areas", "expires"} <= fields
    r = client.post("/api/v1/warnings/", "{bad", content_type="application/json")
    assert r.status_code in (400, 422)


# ---- scope ---------------------------------------------------------------------------------------------------

def test_town_staff_draft_for_their_own_town_only(world, users):
    staff = users["town_staff"]
    assert make_warning(staff, world["village_a"]).region == world["town_a"]
    with pytest.raises(ScopeError):
        services.draft_warning(staff, draft_data(world["village_b"]))
    with pytest.raises(ScopeError):  # two towns: district work
        services.draft_warning(staff, draft_data(world["town_a"], areas=[world["town_a"].code, world["town_b"].code]))
    w = services.draft_warning(users["commander"], draft_data(world["town_a"], areas=[world["town_a"].code,
                                                                                    world["town_b"].code]))
    assert w.region == world["district"]
    for role in ("village_responder", "leader", "api_client"):
        with pytest.raises(ScopeError):
            services.draft_warning(users[role], draft_data(world["village_a"]))


def test_town_staff_see_their_town_and_published_district_warnings_never_another_town(world, users):
    commander = users["commander"]
    mine = make_warning(commander, world["town_a"])
    theirs = make_warning(commander, world["town_b"], "issued", headline=f"{OUTSIDE_MARK}镇预警")
    both = [world["district"].code]  # the whole district
    district_draft = make_warning(commander, world["town_a"], areas=both, headline="全区草稿")
    district_issued = make_warning(commander, world["town_a"], "issued", areas=both, headline="全区预警")
    seen = set(visible(users["town_staff"]).values_list("pk", flat=True))
    assert mine.pk in seen and district_issued.pk in seen
    assert theirs.pk not in seen and district_draft.pk not in seen
    assert set(visible(users["leader"]).values_list("pk", flat=True)) >= {mine.pk, theirs.pk, district_draft.pk}
    client = Client()
    client.force_login(users["town_staff"])
    for url in ("/warnings/", "/api/v1/warnings/", "/api/v1/warnings/map"):
        assert OUTSIDE_MARK not in client.get(url).content.decode(), url
    assert client.get(f"/warnings/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/v1/warnings/{theirs.pk}").status_code == 404


def test_town_staff_cannot_move_a_draft_out_of_their_town(world, users):
    w = make_warning(users["town_staff"], world["village_a"])
    with pytest.raises(ScopeError):
        services.edit_warning(users["town_staff"], w, {"areas": [world["village_b"].code]})


def test_town_staff_cannot_act_on_another_towns_warning(world, users):
    w = make_warning(users["commander"], world["town_b"], "submitted")
    with pytest.raises(ScopeError):
        services.approve(users["town_staff"], w)
