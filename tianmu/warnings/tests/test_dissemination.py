"""Dissemination: an issued warning reaches the persons responsible for its areas through comms (the event
consumer runs the handler, as `tianmu handle_events` does), orange asks them to confirm (叫应), an update or
cancellation stops the old version's pending sends, and the warning's page shows the progress by town."""

from __future__ import annotations

import pytest

from tianmu.comms.choices import DispatchStatus
from tianmu.comms.models import Delivery, Dispatch
from tianmu.comms.services import confirm
from tianmu.core.consumers import run_handler
from tianmu.core.eventtypes import handler
from tianmu.warnings import services

from .helpers import make_warning

# Transactional: the consumer runs its own transactions.
pytestmark = pytest.mark.django_db(transaction=True)

DISSEMINATE = "tianmu.warnings.handlers.disseminate"
STOP_EXPIRED = "tianmu.warnings.handlers.stop_expired"


def consume(name: str = DISSEMINATE) -> int:
    result = run_handler(handler(name))
    assert not result.error, result.error
    return result.handled


def dispatches(w):
    return list(Dispatch.objects.filter(source="warnings.warning", subject_id=str(w.pk)).order_by("pk"))


def test_an_issued_orange_warning_reaches_its_areas_persons_and_asks_them_to_confirm(world, users, people):
    w = make_warning(users["town_staff"], world["village_a"], "issued", level="orange",
                     approver=users["town_staff_2"])
    assert not dispatches(w)  # nothing until the consumer runs
    consume()
    [d] = dispatches(w)
    assert d.confirm and d.level == "orange" and d.title == w.headline and d.created_by == users["town_staff"]
    reached = set(Delivery.objects.filter(dispatch=d).values_list("recipient__code", flat=True))
    assert "ZR-A1" in reached  # the village's lead
    assert not reached & {"ZR-B", "ZR-B1"}  # never the other town's persons
    assert consume() == 0  # once per event: running again sends nothing twice
    assert len(dispatches(w)) == 1


def test_progress_on_the_warning_page_follows_confirmations(client, world, users, people):
    w = make_warning(users["town_staff"], world["village_a"], "issued", level="orange",
                     approver=users["town_staff_2"])
    consume()
    [d] = dispatches(w)
    village_lead = Delivery.objects.filter(dispatch=d, recipient__code="ZR-A1").first()
    client.force_login(users["town_staff"])
    page = client.get(f"/warnings/{w.pk}/").content.decode()
    assert f"/comms/dispatches/{d.pk}/" in page and "叫应看板" in page
    row = next(r for r in _progress(w, users["town_staff"])["by_village"] if r["code"] == world["village_a"].code)
    assert row["confirmed"] == 0 and row["unconfirmed"] == 1
    assert confirm(users["village_responder"], village_lead) is True  # the lead taps the link / button
    assert confirm(users["village_responder"], village_lead) is False  # idempotent
    row = next(r for r in _progress(w, users["town_staff"])["by_village"] if r["code"] == world["village_a"].code)
    assert row["confirmed"] == 1 and row["unconfirmed"] == 0


def _progress(w, actor):
    from tianmu.warnings.queries import dissemination

    [row] = dissemination(w, actor)
    return row["p"]


def test_an_update_stops_the_old_versions_sends_and_a_cancellation_sends_an_all_clear(world, users, people):
    w = make_warning(users["town_staff"], world["village_a"], "issued", level="orange",
                     approver=users["town_staff_2"])
    consume()
    new = services.revise_warning(users["town_staff"], w, {"level": "red", "headline": "红色预警"})
    new = services.submit(users["town_staff"], new)
    new = services.approve(users["town_staff_2"], new)
    new = services.issue(users["town_staff"], new)
    consume()
    [old_dispatch] = dispatches(w)
    assert old_dispatch.status == DispatchStatus.CANCELLED  # no more escalations for a replaced version
    [update] = dispatches(new)
    assert update.title.startswith("【更新】") and update.level == "red" and update.confirm

    services.cancel(users["town_staff"], new, note="雨势减弱")
    consume()
    first, all_clear = dispatches(new)
    assert first.status == DispatchStatus.CANCELLED
    assert all_clear.title.startswith("【解除】") and not all_clear.confirm


def test_an_expired_warning_stops_asking_for_confirmation(world, users, people):
    from datetime import timedelta

    from django.utils import timezone

    w = make_warning(users["town_staff"], world["village_a"], "issued", level="orange",
                     approver=users["town_staff_2"])
    consume()
    assert services.expire_due(now=timezone.now() + timedelta(days=2)) == 1
    consume(STOP_EXPIRED)
    [d] = dispatches(w)
    assert d.status == DispatchStatus.CANCELLED
    assert not Delivery.objects.filter(dispatch=d, status="queued").exists()
