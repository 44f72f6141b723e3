"""A shelter's availability (开放状态, 在住人数, 空余床位): the rules, who may change it, and where it shows."""

from __future__ import annotations

import pytest

from tianmu.conftest import record_data
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Event
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.queries import visible
from tianmu.core.registry.services import create_record, update_record
from tianmu.registry.models import Shelter
from tianmu.registry.services import set_availability

CAPACITY = 80  # the kind's example


@pytest.fixture
def kind():
    return get_kind("shelters")


@pytest.fixture
def shelters(world, kind):
    admin = world["users"]["admin"]
    return {level: create_record(admin, kind, record_data(kind, world[level], f"av-{level}"))
            for level in ("district", "town_a", "village_a", "village_b")}


def post(client, shelter, **body):
    return client.post(f"/api/v1/shelters/{shelter.pk}/availability", body, content_type="application/json")


def test_open_with_occupancy_gives_free_places_everywhere(world, shelters, client):
    town = world["users"]["town_staff"]
    client.force_login(town)
    s = shelters["village_a"]
    r = post(client, s, status="open", occupancy=30, note="第一批转移群众入住")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["status"], body["occupancy"], body["free_places"]) == ("open", 30, CAPACITY - 30)
    assert body["status_changed_at"]
    row = next(x for x in client.get("/api/v1/shelters/").json()["results"] if x["id"] == s.pk)
    assert (row["status"], row["occupancy"], row["free_places"]) == ("open", 30, 50)
    # Recorded: the history (with the user) and the declared event, with before and after.
    history = s.history.first()
    assert history.history_user == town and history.history_change_reason.startswith("availability")
    event = Event.objects.filter(type="registry.shelter.availability_changed").get()
    assert event.payload["previous_status"] == "closed" and event.payload["free_places"] == 50
    assert event.payload["note"] == "第一批转移群众入住" and event.region_code == s.region.code
    # The map's row carries the state and free places; nearby's figures the free places.
    features = client.get("/api/v1/map/layers/shelters").json()["features"]
    assert next(f for f in features if f[0] == s.pk)[5:] == ["open", 50, 30, CAPACITY]
    near = client.get("/api/v1/map/nearby", {"lon": s.lon, "lat": s.lat, "kinds": "shelters"}).json()
    item = next(i for i in near["kinds"][0]["items"] if i["id"] == s.pk)
    assert item["figures"]["free_places"] == 50 and item["state"] == "open"


def test_occupancy_never_exceeds_capacity(world, shelters, client):
    client.force_login(world["users"]["town_staff"])
    s = shelters["village_a"]
    r = post(client, s, status="open", occupancy=CAPACITY + 1)
    assert r.status_code == 422
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert set(errors) == {"occupancy"}
    assert "80" in errors["occupancy"]["message"] and "capacity" in errors["occupancy"]["message_en"].lower()
    r = post(client, s, status="open", occupancy=-1)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "occupancy"
    r = post(client, s, status="opened", occupancy=1)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    s.refresh_from_db()
    assert (s.status, s.occupancy) == ("closed", 0)
    assert not Event.objects.filter(type="registry.shelter.availability_changed").exists()


def test_the_rules_of_the_states(world, shelters):
    town = world["users"]["town_staff"]
    s = shelters["village_a"]
    with pytest.raises(ServiceError) as exc:
        set_availability(town, s, status="closed", occupancy=3)
    assert set(exc.value.errors) == {"occupancy"}
    with pytest.raises(ServiceError) as exc:
        set_availability(town, s, status="open", occupancy="十")
    assert set(exc.value.errors) == {"occupancy"}
    full = set_availability(town, s, status="open", occupancy=CAPACITY)
    assert full.status == "full"  # every place taken
    assert visible(town, get_kind("shelters")).get(pk=s.pk).free_places == 0
    kept_full = set_availability(town, s, status="full", occupancy=60)  # the town may stop taking people
    assert visible(town, get_kind("shelters")).get(pk=kept_full.pk).free_places == 0
    # Nothing changed: no second history row, no event.
    events = Event.objects.count()
    set_availability(town, s, status="full", occupancy=60)
    assert Event.objects.count() == events
    # Capacity can no longer be lowered below the people inside.
    with pytest.raises(ServiceError) as exc:
        update_record(town, get_kind("shelters"), visible(town, get_kind("shelters")).get(pk=s.pk), {"capacity": 50})
    assert "capacity" in exc.value.errors


def test_who_may_change_availability(world, shelters, client):
    users = world["users"]
    # The shelter's town and the district: yes.
    assert set_availability(users["town_staff"], shelters["town_a"], status="open", occupancy=1).status == "open"
    assert set_availability(users["commander"], shelters["village_b"], status="open", occupancy=1).status == "open"
    # A village responder reads their own village's shelter and the town's, but changes neither (the town does).
    for level in ("village_a", "town_a"):
        with pytest.raises(ScopeError):
            set_availability(users["village_responder"], shelters[level], status="open", occupancy=2)
    # Town staff read the district's shelter (up the chain) and may not change it; town B's they do not even see.
    client.force_login(users["town_staff"])
    assert post(client, shelters["district"], status="open", occupancy=2).status_code == 403
    assert post(client, shelters["village_b"], status="open", occupancy=2).status_code == 404
    for role in ("leader", "api_client"):
        with pytest.raises(ScopeError):
            set_availability(users[role], shelters["village_a"], status="open", occupancy=2)
    assert Shelter.objects.get(pk=shelters["district"].pk).occupancy == 0


def test_lists_filter_by_state_and_free_places(world, shelters, client):
    commander = world["users"]["commander"]
    set_availability(commander, shelters["village_a"], status="open", occupancy=10)
    set_availability(commander, shelters["town_a"], status="open", occupancy=CAPACITY)  # full
    client.force_login(commander)

    def ids(**params):
        return {r["id"] for r in client.get("/api/v1/shelters/", params).json()["results"]}

    assert ids(has_free_places="true") == {shelters["village_a"].pk}
    assert ids(status="full") == {shelters["town_a"].pk}
    assert ids(status="closed") == {shelters["district"].pk, shelters["village_b"].pk}
    assert client.get("/api/v1/shelters/", {"has_free_places": "maybe"}).status_code == 422
    page = client.get("/r/shelters/", {"has_free_places": "true"}).content.decode()
    assert shelters["village_a"].code in page and shelters["town_a"].code not in page
    assert "空余床位" in page


def test_the_detail_page_form(world, shelters, client):
    s = shelters["village_a"]
    client.force_login(world["users"]["village_responder"])
    page = client.get(f"/r/shelters/{s.pk}/").content.decode()
    assert 'id="availability"' in page and "availability-form" not in page  # read, not changed
    client.force_login(world["users"]["town_staff"])
    page = client.get(f"/r/shelters/{s.pk}/").content.decode()
    assert "availability-form" in page
    url = f"/registry/shelters/{s.pk}/availability/"
    r = client.post(url, {"status": "open", "occupancy": "500", "note": ""})
    assert r.status_code == 400
    text = r.content.decode()
    assert 'id="av-occupancy-err"' in text and 'value="500"' in text
    r = client.post(url, {"status": "open", "occupancy": "12", "note": "夜间转移"})
    assert r.status_code == 302 and r["Location"] == f"/r/shelters/{s.pk}/"
    page = client.get(r["Location"]).content.decode()
    assert "68" in page  # free places
    s.refresh_from_db()
    assert (s.status, s.occupancy) == ("open", 12)


def test_the_system_checks_pass_with_computed_columns():
    """A computed list column (free_places) is no model field: the admin's list_display leaves it out."""
    from django.core.management import call_command

    call_command("check", fail_level="ERROR")
