"""dispatch(): who receives what, the outbox written in the caller's transaction, progress by town and village,
cancel, validation with per-field errors, scope."""

from __future__ import annotations

import pytest
from django.db import transaction

from tianmu.comms.models import Delivery, Dispatch
from tianmu.comms.queries import progress
from tianmu.comms.sending import SendWorker
from tianmu.comms.services import cancel, dispatch, resolve_recipients
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.models import Event

pytestmark = pytest.mark.django_db


def send(world, **kw):
    args = {"source": "test", "subject_id": "1", "title": "暴雨红色预警", "text": "请立即组织转移。", "level": "red",
            "regions": [world["town_a"].code]}
    args.update(kw)
    return dispatch(world["users"]["commander"], **args)


def names(people_list):
    return sorted(p.code for p in people_list)


def test_recipients_follow_region_subtree_both_ways(world, people):
    # A village warning reaches the village lead, their town's lead and the district room (whose region
    # contains it), not the other town.
    assert names(resolve_recipients([world["village_a"]], "red")) == ["ZR-A", "ZR-A1", "ZR-D"]
    assert names(resolve_recipients([world["town_b"]], "red")) == ["ZR-B", "ZR-B1", "ZR-D"]
    assert names(resolve_recipients([world["district"]], "red")) == ["ZR-A", "ZR-A1", "ZR-B", "ZR-B1", "ZR-D"]


def test_subscriptions_by_watch_region_level_and_hazard(world, people):
    a1 = people["village_a"]
    a1.min_level = "orange"
    a1.hazard_types = "geological,flash_flood"
    a1.save()
    assert "ZR-A1" not in names(resolve_recipients([world["town_a"]], "yellow"))
    assert "ZR-A1" in names(resolve_recipients([world["town_a"]], "red", ["flash_flood"]))
    assert "ZR-A1" not in names(resolve_recipients([world["town_a"]], "red", ["typhoon"]))
    assert "ZR-A1" in names(resolve_recipients([world["town_a"]], "red"))  # no hazard named: everyone
    # Watching town B from a village of town A.
    a1.watch_code = world["town_b"].code
    a1.save()
    assert "ZR-A1" in names(resolve_recipients([world["village_b"]], "red"))
    assert "ZR-A1" not in names(resolve_recipients([world["village_a"]], "red"))
    people["town_b"].active = False
    people["town_b"].save()
    assert "ZR-B" not in names(resolve_recipients([world["town_b"]], "red"))


def test_dispatch_writes_the_outbox_in_the_callers_transaction(world, people):
    with pytest.raises(RuntimeError), transaction.atomic():
        send(world)
        assert Delivery.objects.count() == 3
        raise RuntimeError("the caller's transaction fails after dispatching")
    assert Dispatch.objects.count() == 0 and Delivery.objects.count() == 0
    assert not Event.objects.filter(type="comms.dispatch.created").exists()
    d = send(world)
    rows = {r.recipient.code: r for r in Delivery.objects.filter(dispatch=d).select_related("recipient")}
    assert set(rows) == {"ZR-D", "ZR-A", "ZR-A1"}
    assert rows["ZR-A"].channel == "inbox" and rows["ZR-A1"].channel == "sms"  # the first channel of each
    assert all(r.status == "queued" and r.confirm_required for r in rows.values())  # red: confirm by default
    event = Event.objects.get(type="comms.dispatch.created")
    assert event.payload["recipients"] == 3 and event.payload["dispatch"] == d.pk


def test_confirm_defaults_by_level(world, people):
    assert send(world, level="orange").confirm is True
    assert send(world, level="yellow").confirm is False
    assert send(world, level="yellow", confirm=True).confirm is True
    assert send(world, level="red", confirm=False).confirm is False
    assert send(world, level="red").confirm_minutes == 10 and send(world, level="orange").confirm_minutes == 30


def test_validation_lists_every_bad_field(world, people):
    with pytest.raises(ServiceError) as exc:
        send(world, title="", text="x" * 5000, level="purple", regions=["999"], hazard_types=["meteor"])
    assert set(exc.value.errors) == {"title", "text", "level", "regions", "hazard_types"}
    with pytest.raises(ServiceError) as exc:
        send(world, regions=[])
    assert set(exc.value.errors) == {"regions"}


def test_scope_town_staff_send_only_in_their_town(world, people):
    staff = world["users"]["town_staff"]
    d = dispatch(staff, source="test", subject_id="", title="巡查", text="请巡查", level="", regions=["330112001"])
    assert d.deliveries.count() == 3
    with pytest.raises(ScopeError):
        dispatch(staff, source="test", subject_id="", title="巡查", text="请巡查", level="", regions=["330112002"])
    for role in ("leader", "api_client", "village_responder"):
        with pytest.raises(ScopeError):
            dispatch(world["users"][role], source="test", subject_id="", title="t", text="t", level="",
                     regions=["330112001001"])


def test_progress_by_town_and_village(world, people, sink):
    d = send(world, regions=[world["district"].code])
    SendWorker(poll=0).run(once=True)
    p = progress(d)
    assert p["recipients"] == 5 and p["sent"] == 5 and p["failed"] == 0 and p["queued"] == 0
    assert p["unconfirmed"] == 5 and p["confirmed"] == 0
    towns = {t["code"]: t for t in p["by_town"]}
    assert towns["330112001"]["recipients"] == 2 and towns["330112002"]["recipients"] == 2
    villages = {v["code"]: v for v in p["by_village"]}
    assert set(villages) == {"330112001001", "330112002001"}
    assert p["channels"]["sms"]["delivered"] == 3 and p["channels"]["inbox"]["delivered"] == 2
    assert p["sms_segments"] == 3 * Delivery.objects.get(dispatch=d, recipient=people["village_a"]).segments
    # Town-A staff see only their town's persons.
    scoped = progress(d, world["users"]["town_staff"])
    assert scoped["recipients"] == 2 and [t["code"] for t in scoped["by_town"]] == ["330112001"]


def test_cancel_stops_pending_sends(world, people, sink):
    d = send(world)
    with pytest.raises(ScopeError):
        cancel(world["users"]["other_town_staff"], d)
    assert cancel(world["users"]["commander"], d) == 3
    assert cancel(world["users"]["commander"], d) == 0  # idempotent
    SendWorker(poll=0).run(once=True)
    assert sink.state.requests == []
    assert set(Delivery.objects.filter(dispatch=d).values_list("status", flat=True)) == {"cancelled"}
    assert Event.objects.filter(type="comms.dispatch.cancelled").count() == 1
