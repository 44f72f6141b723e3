"""The warning's lifecycle: the path to issue, every illegal transition refused, four eyes for orange and red,
new versions (CAP Update), cancellation (CAP Cancel), expiry, and read-only external warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tianmu.core.errors import ServiceError
from tianmu.core.models import Event
from tianmu.warnings import services
from tianmu.warnings.choices import WarningState
from tianmu.warnings.lifecycles import WARNING
from tianmu.warnings.models import CapMessage, HazardWarning

from .helpers import make_warning

pytestmark = pytest.mark.django_db


def test_draft_submit_approve_issue_records_who_and_when_and_publishes_an_alert(world, users):
    author, approver = users["town_staff"], users["town_staff_2"]
    w = make_warning(author, world["village_a"], "draft", level="orange")
    assert w.region == world["town_a"] and w.created_by == author and w.state == WarningState.DRAFT
    w = services.submit(author, w)
    w = services.approve(approver, w, note="核实")
    w = services.issue(author, w)
    assert w.state == WarningState.ISSUED
    assert (w.submitted_by, w.approved_by, w.issued_by) == (author, approver, author)
    assert w.submitted_at <= w.approved_at <= w.issued_at
    msg = w.messages.get()
    assert msg.msg_type == "Alert" and msg.references == ""
    types = list(Event.objects.filter(subject=w.subject()).values_list("type", flat=True).order_by("id"))
    assert types == ["warnings.warning.drafted", "warnings.warning.submitted", "warnings.warning.approved",
                     "warnings.warning.issued"]
    issued = Event.objects.get(subject=w.subject(), type="warnings.warning.issued")
    # Everything a dispatcher needs, in the event.
    p = issued.payload
    assert p["warning"] == w.pk and p["level"] == "orange" and p["hazard_type"] == "rainstorm"
    assert p["regions"] == [world["village_a"].code] and p["region_ids"] == [world["village_a"].pk]
    assert p["title"] == w.headline and w.description in p["text"] and p["url"] == f"/warnings/{w.pk}/"
    assert p["msg_type"] == "Alert" and p["identifier"] == msg.identifier
    args = services.dispatch_arguments(p)
    assert args["regions"] == [world["village_a"].code] and args["level"] == "orange" and args["subject_id"] == w.pk


ALLOWED = {(s, t.name) for t in WARNING.transitions.values() for s in t.sources}
ILLEGAL = [(s, n) for s in ("draft", "submitted", "approved", "issued") for n in WARNING.transitions
           if (s, n) not in ALLOWED]


def test_the_declared_transitions_are_the_documented_ones():
    assert ALLOWED == {("draft", "submit"), ("submitted", "reject"), ("approved", "reject"),
                       ("submitted", "approve"), ("approved", "issue"), ("issued", "cancel")}


@pytest.mark.parametrize(("state", "name"), ILLEGAL)
def test_every_illegal_transition_is_refused_with_a_clear_error(world, users, state, name):
    admin = users["admin"]
    w = make_warning(users["commander"], world["town_a"], state)
    with pytest.raises(ServiceError) as err:
        WARNING.perform(admin, w, name, note="说明")
    assert "state" in err.value.errors
    w.refresh_from_db()
    assert w.state == state


@pytest.mark.parametrize("state", ["cancelled", "expired", "updated"])
def test_finished_warnings_accept_no_transition(world, users, state):
    w = make_warning(users["commander"], world["town_a"], "issued")
    HazardWarning.objects.filter(pk=w.pk).update(state=state)
    for name in WARNING.transitions:
        with pytest.raises(ServiceError):
            WARNING.perform(users["admin"], w, name, note="说明")


@pytest.mark.parametrize("level", ["orange", "red"])
def test_orange_and_red_need_a_second_person_never_the_author(world, users, level):
    author = users["town_staff"]
    w = make_warning(author, world["town_a"], "submitted", level=level)
    with pytest.raises(ServiceError) as err:
        services.approve(author, w)
    assert "approver" in err.value.errors
    assert "起草人" in err.value.as_list()[0]["message"] and "author" in err.value.as_list()[0]["message_en"]
    # Neither the person who submitted it.
    other = make_warning(users["commander"], world["town_a"], "draft", level=level)
    services.submit(author, other)
    with pytest.raises(ServiceError):
        services.approve(author, other)
    assert services.approve(users["town_staff_2"], w).state == WarningState.APPROVED


def test_blue_and_yellow_may_be_approved_by_the_author(world, users):
    w = make_warning(users["town_staff"], world["town_a"], "submitted", level="yellow")
    assert services.approve(users["town_staff"], w).state == WarningState.APPROVED


def test_reject_needs_a_note_and_returns_to_draft(world, users):
    w = make_warning(users["town_staff"], world["town_a"], "submitted")
    with pytest.raises(ServiceError) as err:
        services.reject(users["commander"], w)
    assert "note" in err.value.errors
    w = services.reject(users["commander"], w, note="区域不对")
    assert w.state == WarningState.DRAFT
    w = services.edit_warning(users["town_staff"], w, {"headline": "甲镇暴雨黄色预警(修订)"})
    assert w.headline.endswith("(修订)")


def test_only_drafts_are_edited(world, users):
    w = make_warning(users["commander"], world["town_a"], "submitted")
    with pytest.raises(ServiceError) as err:
        services.edit_warning(users["commander"], w, {"headline": "x"})
    assert "state" in err.value.errors


def test_update_is_a_new_version_that_references_the_previous(world, users):
    c1, c2 = users["commander"], users["commander_2"]
    first = make_warning(c1, world["town_a"], "issued", level="orange", approver=c2)
    new = services.revise_warning(c1, first, {"level": "red", "headline": "甲镇暴雨红色预警"})
    assert new.previous == first and new.version == 2 and new.state == WarningState.DRAFT
    with pytest.raises(ServiceError):  # one pending version at a time
        services.revise_warning(c1, first)
    services.submit(c1, new)
    services.approve(c2, new)
    new = services.issue(c1, new)
    first.refresh_from_db()
    assert first.state == WarningState.UPDATED and new.state == WarningState.ISSUED
    update = new.messages.get()
    alert = first.messages.get()
    assert update.msg_type == "Update" and update.references == alert.reference()
    assert Event.objects.filter(type="warnings.warning.updated", subject=first.subject(),
                                payload__by=new.pk).exists()


@pytest.mark.parametrize("name", ["update", "expire"])
def test_people_cannot_update_or_expire_a_warning_directly(world, users, name):
    """A version is updated only by issuing its next version, and expires only by the periodic task."""
    w = make_warning(users["commander"], world["town_a"], "issued")
    with pytest.raises(ServiceError) as err:
        WARNING.perform(users["admin"], w, name)
    assert "transition" in err.value.errors
    w.refresh_from_db()
    assert w.state == WarningState.ISSUED


def test_cancel_needs_a_note_and_publishes_a_cancel_referencing_every_earlier_message(world, users):
    c1 = users["commander"]
    first = make_warning(c1, world["town_a"], "issued")
    new = services.revise_warning(c1, first)
    for step in ("submit", "approve", "issue"):
        new = getattr(services, step)(c1, new)
    with pytest.raises(ServiceError) as err:
        services.cancel(c1, new)
    assert "note" in err.value.errors
    new = services.cancel(c1, new, note="雨停")
    assert new.state == WarningState.CANCELLED and new.ended_by == c1 and new.end_note == "雨停"
    cancel = new.messages.get(msg_type="Cancel")
    earlier = CapMessage.objects.filter(warning__in=[first, new]).exclude(pk=cancel.pk).order_by("sent", "id")
    assert cancel.references == " ".join(m.reference() for m in earlier)


def test_expiry_by_the_periodic_task(world, users):
    w = make_warning(users["commander"], world["town_a"], "issued")
    assert services.expire_due() == 0
    assert services.expire_due(now=w.expires + timedelta(seconds=1)) == 1
    w.refresh_from_db()
    assert w.state == WarningState.EXPIRED
    assert Event.objects.filter(type="warnings.warning.expired", subject=w.subject(), actor=None).exists()


def test_a_warning_past_its_expiry_cannot_be_issued(world, users):
    w = make_warning(users["commander"], world["town_a"], "approved")
    HazardWarning.objects.filter(pk=w.pk).update(expires=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ServiceError) as err:
        services.issue(users["commander"], w)
    assert "expires" in err.value.errors
