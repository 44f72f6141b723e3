"""Call-and-respond (叫应): the signed one-tap link (no login, GET never confirms, idempotent, forged or expired
refused with a clear page), the inbox button, the API, scope; escalation to the next channel and then the
superior; the board."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from tianmu.comms.links import SALT, confirm_token, read_token
from tianmu.comms.models import Delivery
from tianmu.comms.queries import board, progress
from tianmu.comms.sending import SendWorker
from tianmu.comms.services import confirm, dispatch, escalate_due
from tianmu.core.errors import ScopeError
from tianmu.core.models import Event

pytestmark = pytest.mark.django_db


def send(world, regions, level="red", **kw):
    return dispatch(world["users"]["commander"], source="test", subject_id="7", title="山洪灾害红色预警",
                    text="请立即转移危险区群众。", level=level, regions=regions, **kw)


def row(d, person, channel=None):
    qs = Delivery.objects.filter(dispatch=d, recipient=person, purpose="")
    return (qs.get(channel=channel) if channel else qs.order_by("pk").first())


def test_link_get_shows_post_confirms_once(world, people, sink, client):
    d = send(world, ["330112002001"])
    SendWorker(poll=0).run(once=True)
    target = row(d, people["village_b"])
    [sms] = [r[1]["text"] for r in sink.state.requests if r[0] == "/sms" and r[1]["to"] == "19901120005"]
    path = sms.split("请点击确认收到:")[1].replace("http://127.0.0.1:8000", "")
    assert read_token(path.split("/")[3]) == target.pk
    r = client.get(path)  # anonymous, as on a phone; a link previewer fetching it confirms nothing
    assert r.status_code == 200 and "确认收到" in r.content.decode() and "山洪灾害红色预警" in r.content.decode()
    assert row(d, people["village_b"]).confirmed_at is None
    r = client.post(path)
    assert r.status_code == 200 and "已确认收到" in r.content.decode()
    assert row(d, people["village_b"]).confirmed_via == "link"
    assert client.post(path).status_code == 200  # again: idempotent
    assert Event.objects.filter(type="comms.delivery.confirmed").count() == 1
    assert progress(d)["confirmed"] == 1


def test_forged_and_expired_links_are_refused_with_a_page(world, people, client, settings):
    d = send(world, ["330112002001"])
    target = row(d, people["village_b"])
    token = confirm_token(target)
    r = client.post(f"/comms/c/{token[:-2]}xx/")
    assert r.status_code == 403 and "链接无效" in r.content.decode()
    forged = signing.dumps(target.pk, salt="another.salt", compress=True)
    assert client.post(f"/comms/c/{forged}/").status_code == 403
    assert client.get("/comms/c/%3Cscript%3E/").status_code == 403
    settings.COMMS_LINK_MAX_AGE_HOURS = 1
    old = signing.TimestampSigner(salt=SALT)
    stale = old.sign_object(target.pk, compress=True)
    # Expire it by reading with a zero max age: the page says so (410), nothing is confirmed.
    settings.COMMS_LINK_MAX_AGE_HOURS = 0
    r = client.post(f"/comms/c/{stale}/")
    assert r.status_code == 410 and "已过期" in r.content.decode()
    assert not Delivery.objects.filter(confirmed_at__isnull=False).exists()
    gone = signing.dumps(10**9, salt=SALT, compress=True)
    settings.COMMS_LINK_MAX_AGE_HOURS = 72
    assert client.get(f"/comms/c/{gone}/").status_code == 404


def test_inbox_lists_and_confirms_own_messages(world, people, client):
    d = send(world, ["330112001"])
    staff = world["users"]["town_staff"]  # linked to the town-A lead
    client.force_login(staff)
    page = client.get("/comms/inbox/").content.decode()
    assert "山洪灾害红色预警" in page and "确认收到" in page
    target = row(d, people["town_a"])
    r = client.post(f"/comms/deliveries/{target.pk}/confirm/", {"next": "/comms/inbox/"})
    assert r.status_code == 302 and r["Location"] == "/comms/inbox/"
    target.refresh_from_db()
    assert target.confirmed_via == "inbox" and target.confirmed_by == staff
    assert "已于" in client.get("/comms/inbox/").content.decode()
    # API: the same, idempotent.
    r = client.post(f"/api/v1/comms/deliveries/{target.pk}/confirm")
    assert r.status_code == 200 and r.json()["confirmed"] is False


def test_confirm_scope(world, people):
    d = send(world, ["330112"])
    b1 = row(d, people["village_b"])
    with pytest.raises(ScopeError):
        confirm(world["users"]["town_staff"], b1)  # town A staff cannot confirm for town B
    with pytest.raises(ScopeError):
        confirm(world["users"]["leader"], b1)
    assert confirm(world["users"]["other_town_staff"], b1, via="phone") is True  # town B staff may (a call)
    a1 = row(d, people["village_a"])
    assert confirm(world["users"]["village_responder"], a1) is True  # their own, as the linked person


def test_api_confirm_outside_scope_is_not_found(world, people, client):
    d = send(world, ["330112"])
    client.force_login(world["users"]["town_staff"])
    r = client.post(f"/api/v1/comms/deliveries/{row(d, people['village_b']).pk}/confirm")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert row(d, people["village_b"]).confirmed_at is None


def test_escalation_next_channel_then_superior(world, people, sink):
    d = send(world, ["330112002001"])  # red: 10 minutes
    SendWorker(poll=0).run(once=True)
    b1 = people["village_b"]
    assert escalate_due() == 0  # not yet due
    later = timezone.now() + timedelta(minutes=11)
    assert escalate_due(later) == 3  # the village lead, the town lead and the district room, none confirmed
    first = row(d, b1, "sms")
    assert first.escalated_at is not None
    step1 = Delivery.objects.get(dispatch=d, recipient=b1, channel="dingtalk")
    assert step1.escalated_from == first and step1.escalation == 1 and step1.status == "queued"
    SendWorker(poll=0).run(once=True)
    # Still no confirmation after the next channel: no channel left, so the superior (town-B lead) is told.
    even_later = later + timedelta(minutes=11)
    escalate_due(even_later)
    notice = Delivery.objects.get(dispatch=d, recipient=people["town_b"], purpose=f"esc:{b1.pk}")
    assert "蔺德荣" in notice.note and "未确认" in notice.note and notice.confirm_required
    steps = [e.payload["step"] for e in Event.objects.filter(type="comms.delivery.escalated",
                                                            payload__recipient=b1.pk).order_by("pk")]
    assert steps == ["next_channel", "superior"]
    # The person confirms late: it counts; the superior's notice stays for the superior to confirm.
    confirm(None, step1, via="link")
    p = progress(d)
    assert p["confirmed"] == 1 and p["escalated"] == 3
    assert escalate_due(even_later) == 0  # nothing escalates twice in one period


def test_escalation_stops_when_cancelled_or_confirmed(world, people):
    d = send(world, ["330112002001"])
    Delivery.objects.filter(dispatch=d).update(status="sent")
    confirm(world["users"]["commander"], row(d, people["village_b"]), via="phone")
    later = timezone.now() + timedelta(minutes=11)
    from tianmu.comms.services import cancel

    cancel(world["users"]["commander"], d)
    assert escalate_due(later) == 0


def test_board_is_scoped_and_masks_phones(world, people, sink, client):
    send(world, ["330112"])
    SendWorker(poll=0).run(once=True)
    full = board(world["users"]["commander"])
    assert full["total"] == 5 and {t["code"] for t in full["towns"]} == {"330112001", "330112002", "330112"}
    town_a = board(world["users"]["town_staff"])
    assert town_a["total"] == 2 and [t["code"] for t in town_a["towns"]] == ["330112001"]
    people_a = [p for t in town_a["towns"] for v in t["villages"] for p in v["people"]]
    assert {p["mobile"] for p in people_a} == {"19901120002", "19901120004"}
    leader = board(world["users"]["leader"])
    masked = [p["mobile"] for t in leader["towns"] for v in t["villages"] for p in v["people"]]
    assert len(masked) == 5 and all(m.startswith("199****") for m in masked)
    assert board(world["users"]["api_client"])["total"] == 0
    client.force_login(world["users"]["town_staff"])
    page = client.get("/comms/board/").content.decode()
    assert "王建国" in page and "蔺" not in page and 'hx-trigger="every 15s"' in page
    fragment = client.get("/comms/board/?fragment=1").content.decode()
    assert "<html" not in fragment and "李秀英" in fragment
    client.force_login(world["users"]["api_client"])
    assert client.get("/comms/board/").status_code == 403
    r = client.get("/api/v1/comms/board")
    assert r.status_code == 403
