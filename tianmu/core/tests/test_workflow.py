"""Lifecycles (core/workflow.py), through the test notices app's two-step lifecycle (draft → submitted →
published; publishing needs a note and a second person who confirms with their password) and the alarms'."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Event
from tianmu.core.scope import permission_table
from tianmu.core.tests.notices.lifecycles import NOTICE
from tianmu.core.workflow import Lifecycle, Transition, get_lifecycle

pytestmark = pytest.mark.django_db
PASSWORD = "a-second-pair-of-eyes"


@pytest.fixture
def notice(records):
    return records["notices"]["a"]  # in town A's village, a draft


@pytest.fixture
def approver(world):
    user = world["users"]["admin"]
    user.set_password(PASSWORD)
    user.save()
    return user


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(type=f"notices.notice.{kind}").order_by("id"))


def test_the_declaration_gives_permission_rows_and_event_types():
    from tianmu.core.eventtypes import is_declared

    table = permission_table()
    assert set(table["notices.notice.submit"]) == {"commander", "admin", "town_staff", "village_responder"}
    assert set(table["notices.notice.publish"]) == {"commander", "admin"}
    assert set(table["sensing.alarm.acknowledge"]) == set(table["sensing.alarm.close"])
    assert is_declared("notices.notice.submitted") and is_declared("notices.notice.published")
    assert get_lifecycle("sensing.alarm").transitions["close"].note == "required"


def test_a_transition_changes_state_with_history_and_event(world, notice):
    staff = world["users"]["town_staff"]
    assert [t.name for t in NOTICE.available(staff, notice)] == ["submit"]
    done = NOTICE.perform(staff, notice, "submit", note="请审核")
    assert done.status == "submitted"
    (event,) = events("submitted")
    assert event.actor == staff and event.region_code == notice.region.code and event.subject == f"notice:{notice.pk}"
    assert event.payload == {"id": notice.pk, "code": notice.code, "from_state": "draft", "to_state": "submitted",
                             "note": "请审核"}  # an approver only when the transition has one
    latest = done.history.latest()
    assert latest.history_change_reason == "submit" and latest.history_user == staff
    # The same transition again: the state no longer allows it, nothing changes.
    with pytest.raises(ServiceError) as err:
        NOTICE.perform(staff, notice, "submit")
    assert "status" in err.value.errors and len(events("submitted")) == 1


def test_who_may_is_the_permission_table_in_the_rows_region(world, records, notice):
    staff = world["users"]["town_staff"]
    NOTICE.perform(staff, notice, "submit")
    with pytest.raises(ScopeError):  # town staff may submit but not publish
        NOTICE.perform(staff, notice, "publish", note="发布")
    with pytest.raises(ScopeError):  # another town's notice
        NOTICE.perform(staff, records["notices"]["b"], "submit")
    notice.refresh_from_db()
    assert NOTICE.available(world["users"]["leader"], notice) == []
    assert [t.name for t in NOTICE.available(world["users"]["commander"], notice)] == ["publish"]


def test_publishing_needs_a_note_and_a_second_person_with_their_password(world, notice, approver):
    commander = world["users"]["commander"]
    NOTICE.perform(world["users"]["town_staff"], notice, "submit")

    def refused(field, **kwargs):
        with pytest.raises(ServiceError) as err:
            NOTICE.perform(commander, notice, "publish", **kwargs)
        assert field in err.value.errors, err.value.errors

    refused("note", note="  ", approver=approver)
    refused("approver", note="已核")  # nobody
    refused("approver", note="已核", approver=commander)  # oneself
    refused("approver", note="已核", approver=world["users"]["town_staff"])  # may not publish
    assert events("published") == []
    done = NOTICE.perform(commander, notice, "publish", note="已核", approver=approver)
    assert done.status == "published"
    assert events("published")[0].payload["approver"] == approver.username


def test_api_routes_come_from_the_declaration(world, records, notice, approver, client):
    client.force_login(world["users"]["town_staff"])
    url = f"/api/v1/notices/{notice.pk}"
    r = client.post(url + "/submit", {"note": "请审核"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    r = client.post(url + "/submit", {}, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    assert client.post(url + "/publish", {"note": "x", "approver": "admin", "approver_password": PASSWORD},
                       content_type="application/json").status_code == 403
    other = records["notices"]["b"]
    assert client.post(f"/api/v1/notices/{other.pk}/submit", {}, content_type="application/json").status_code == 404
    client.force_login(world["users"]["commander"])
    body = {"note": "已核", "approver": "admin", "approver_password": "wrong"}
    r = client.post(url + "/publish", body, content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "approver"
    r = client.post(url + "/publish", {**body, "approver_password": PASSWORD}, content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "published"


def test_page_buttons_and_the_generic_view(world, notice, client):
    client.force_login(world["users"]["town_staff"])
    page = client.get(f"/r/notices/{notice.pk}/").content.decode()
    assert f"/wf/notices.notice/{notice.pk}/submit/" in page and "/publish/" not in page and "草稿" in page
    r = client.post(f"/wf/notices.notice/{notice.pk}/submit/", {"note": "请审核", "next": f"/r/notices/{notice.pk}/"})
    assert r.status_code == 302 and r["Location"] == f"/r/notices/{notice.pk}/"
    notice.refresh_from_db()
    assert notice.status == "submitted"
    # Refused or invalid: a message and a redirect, never a 500; a foreign `next` is not followed.
    r = client.post(f"/wf/notices.notice/{notice.pk}/submit/", {"next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/"
    assert any("状态" in str(m) or "当前状态" in str(m) for m in get_messages(r.wsgi_request))
    assert client.post(f"/wf/notices.notice/{notice.pk}/nonsense/").status_code == 302
    assert client.post(f"/wf/no.such/{notice.pk}/submit/").status_code == 404
    assert client.get(f"/wf/notices.notice/{notice.pk}/submit/").status_code == 405


def test_a_declaration_naming_an_unknown_state_is_refused():
    from tianmu.core.tests.notices.models import Notice

    with pytest.raises(ValueError):
        Lifecycle("notices.broken", Notice, states={"a": "A"},
                  transitions=[Transition("go", ["a"], "b", "go", event="went", grants={})])
