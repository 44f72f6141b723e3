"""Each channel against a real server on loopback: the DingTalk robot's signature checked by the far end, SMS
segments and billing, the broadcast platform, email over SMTP (aiosmtpd); retries with backoff on transient
failures, the next channel on permanent ones or when a channel is not configured; rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from datetime import timedelta

import pytest
from django.utils import timezone

from tianmu.comms.channels import Message, dingtalk_sign, fit_sms, segments
from tianmu.comms.models import Delivery
from tianmu.comms.sending import RateLimiter, SendWorker, claim, send_one
from tianmu.comms.services import dispatch
from tianmu.core.models import Event

pytestmark = pytest.mark.django_db


def send(world, *, regions, text="请立即组织转移。", level="red", **kw):
    return dispatch(world["users"]["commander"], source="test", subject_id="1", title="暴雨红色预警", text=text,
                    level=level, regions=regions, **kw)


def run_once():
    SendWorker(poll=0).run(once=True)


def test_dingtalk_signature_matches_the_documented_scheme():
    # sign = urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret))), computed independently here.
    secret, ts = "SEC000example", 1700000000000
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert dingtalk_sign(secret, ts) == urllib.parse.quote_plus(base64.b64encode(digest).decode())
    assert urllib.parse.unquote_plus(dingtalk_sign(secret, ts)) == base64.b64encode(digest).decode()


def test_dingtalk_robot_signed_request_accepted_and_wrong_secret_refused(world, people, sink, settings):
    people["village_b"].channels = "dingtalk,sms"
    people["village_b"].save()
    d = send(world, regions=["330112002001"])
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"], channel="dingtalk")
    assert row.status == "sent", row.reason
    body = sink.state.accepted["dingtalk"]["0"]
    assert body["at"]["atMobiles"] == ["19901120005"] and "暴雨红色预警" in body["text"]["content"]
    assert "/comms/c/" in body["text"]["content"]  # the one-tap confirmation link
    # A wrong secret: DingTalk answers errcode 310000 (permanent), so the person's next channel is used.
    settings.COMMS_DINGTALK_SECRET = "SECwrong"
    d2 = send(world, regions=["330112002001"])
    run_once()
    row = Delivery.objects.get(dispatch=d2, recipient=people["village_b"], channel="dingtalk")
    assert row.status == "failed" and "310000" in row.reason and row.attempts == 1
    assert Delivery.objects.get(dispatch=d2, recipient=people["village_b"], channel="sms").status == "delivered"


def test_dingtalk_robot_per_town(world, people, sink, settings):
    settings.COMMS_DINGTALK_WEBHOOK = ""
    settings.COMMS_DINGTALK_ROBOTS = {"330112002": {"webhook": f"{sink.url}/robot/send?access_token=b",
                                                   "secret": sink.state.ding_secret}}
    for p in (people["village_a"], people["village_b"]):
        p.channels = "dingtalk"
        p.save()
    d = send(world, regions=["330112"])
    run_once()
    assert Delivery.objects.get(dispatch=d, recipient=people["village_b"]).status == "sent"
    a = Delivery.objects.get(dispatch=d, recipient=people["village_a"])
    assert a.status == "failed" and a.reason == "渠道未配置"
    [req] = [r for r in sink.state.requests if r[0] == "/robot/send"]
    assert req[2]["access_token"] == ["b"]


def test_sms_segments_and_billing(world, people, sink, settings):
    assert [segments("短" * n) for n in (1, 70, 71, 134, 135)] == [1, 1, 2, 2, 3]
    long = Message("标题", "长" * 2000, "http://x/c/abc/", "red", "k")
    cut = fit_sms(long, limit=3)
    assert segments(cut) == 3 and cut.endswith("请点击确认收到:http://x/c/abc/") and "…" in cut
    d = send(world, regions=["330112002001"], text="转" * 150)
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    [sms] = [r[1] for r in sink.state.requests if r[0] == "/sms" and r[1]["to"] == "19901120005"]
    assert sms["out_id"] == row.key and sms["sign"] == "临安应急"
    assert row.status == "delivered" and row.segments == segments(sms["text"]) == 4  # one concatenated message
    assert "/comms/c/" in sms["text"]  # the link whole, in the one message
    # A gateway that does not say what it billed: our own count is recorded.
    sink.state.deliver = sink.state.report_segments = False
    settings.COMMS_SMS_MAX_SEGMENTS = 2
    d = send(world, regions=["330112002001"], text="转" * 300, confirm=False)
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "sent" and row.segments == 2


def test_transient_failures_retry_with_backoff_then_succeed(world, people, sink, settings):
    settings.COMMS_RETRY_SECONDS = 30
    d = send(world, regions=["330112002001"], confirm=False)
    sink.state.fail_next, sink.state.fail_only = 2, "19901120005"
    worker = SendWorker(poll=0)
    before = timezone.now()
    worker.round()
    after = timezone.now()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "queued" and "503" in row.reason and row.attempts == 1
    # The retry is due COMMS_RETRY_SECONDS after the failed attempt (which happened between before and after).
    assert before + timedelta(seconds=30) <= row.next_attempt_at <= after + timedelta(seconds=30)
    later = timezone.now() + timedelta(seconds=31)
    [claimed] = [c for c in claim("t", 10, now=later) if c.pk == row.pk]
    before = timezone.now()
    send_one(claimed)
    after = timezone.now()
    row.refresh_from_db()
    assert row.status == "queued" and row.attempts == 2
    assert before + timedelta(seconds=60) <= row.next_attempt_at <= after + timedelta(seconds=60)  # doubled
    [claimed] = [c for c in claim("t", 10, now=timezone.now() + timedelta(seconds=61)) if c.pk == row.pk]
    send_one(claimed)
    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 3 and row.reason == ""


def test_retries_exhausted_moves_to_the_next_channel(world, people, sink, settings):
    settings.COMMS_MAX_ATTEMPTS = 2
    d = send(world, regions=["330112002001"])
    sink.state.fail_next, sink.state.fail_only = 2, "19901120005"
    run_once()
    run_once()
    rows = {r.channel: r for r in Delivery.objects.filter(dispatch=d, recipient=people["village_b"])}
    assert rows["sms"].status == "failed" and rows["sms"].attempts == 2
    assert rows["dingtalk"].status == "sent"


def test_refused_number_is_permanent_and_all_channels_failing_is_an_event(world, people, sink, settings):
    settings.COMMS_DINGTALK_WEBHOOK = ""
    sink.state.refuse.add("19901120005")
    d = send(world, regions=["330112002001"])
    run_once()
    rows = {r.channel: r for r in Delivery.objects.filter(dispatch=d, recipient=people["village_b"])}
    assert rows["sms"].status == "failed" and rows["sms"].attempts == 1 and "refused" in rows["sms"].reason
    assert rows["dingtalk"].status == "failed" and rows["dingtalk"].reason == "渠道未配置"
    event = Event.objects.get(type="comms.delivery.failed", payload__recipient=people["village_b"].pk)
    assert event.payload["channel"] == "dingtalk"


def test_not_configured_and_no_address_move_on(world, people, settings):
    # Nothing configured: the inbox (linked account) is the one that reaches the town-A lead.
    settings.COMMS_SMS_URL = ""
    people["town_a"].channels = "sms,inbox"
    people["town_a"].save()
    people["village_a"].channels = "inbox,sms"  # linked to the village responder: inbox works
    people["village_a"].account = ""
    people["village_a"].save()
    d = send(world, regions=["330112001"])
    run_once()
    a = {r.channel: r for r in Delivery.objects.filter(dispatch=d, recipient=people["town_a"])}
    assert a["sms"].status == "failed" and a["sms"].reason == "渠道未配置" and a["inbox"].status == "delivered"
    a1 = {r.channel: r for r in Delivery.objects.filter(dispatch=d, recipient=people["village_a"])}
    assert a1["inbox"].reason == "未登记该渠道的地址" and a1["sms"].reason == "渠道未配置"


def test_broadcast_point(world, people, sink):
    people["village_b"].channels = "broadcast"
    people["village_b"].broadcast_point = "GB-002001"
    people["village_b"].save()
    d = send(world, regions=["330112002001"], confirm=False)
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "sent" and row.provider_id == f"t-{row.key}"
    body = sink.state.accepted["broadcast"][row.key]
    assert body["point"] == "GB-002001" and body["level"] == "red" and body["text"].startswith("暴雨红色预警。")


def test_email_over_smtp(world, people, smtp):
    people["village_b"].channels = "email"
    people["village_b"].email = "lin@village.example"
    people["village_b"].save()
    d = send(world, regions=["330112002001"])
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "sent", row.reason
    [msg] = smtp.messages
    assert msg["to"] == ["lin@village.example"] and msg["from"] == "duty@linan.example"
    assert f"<{row.key}@tianmu.comms>" in msg["data"] and "/comms/c/" in msg["data"]


def test_email_server_down_is_transient(world, people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens on the discard port
    settings.COMMS_EMAIL_FROM = "duty@linan.example"
    people["village_b"].channels = "email"
    people["village_b"].email = "lin@village.example"
    people["village_b"].save()
    d = send(world, regions=["330112002001"])
    SendWorker(poll=0).round()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "queued" and row.reason.startswith("SMTP错误")


def test_rate_limiter_paces_per_channel():
    now, slept = [100.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter({"sms": 10, "dingtalk": 0.5}, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait("sms")
    limiter.wait("inbox")  # no limit
    # Five SMS at 10/s on a clock that only sleeping moves: four waits of 0.1 s.
    assert slept == pytest.approx([0.1] * 4)
    slept.clear()
    limiter.wait("dingtalk")
    limiter.wait("dingtalk")  # DingTalk robots: 20 a minute; at 0.5/s the second waits 2 s
    assert slept == pytest.approx([2.0])
    now[0] += 10  # idle time is not banked: the next SMS goes at once, the one after waits again
    slept.clear()
    limiter.wait("sms")
    limiter.wait("sms")
    assert slept == pytest.approx([0.1])


def test_slow_gateway_times_out_and_retries(world, people, sink, settings):
    settings.COMMS_HTTP_TIMEOUT = 0.2
    sink.state.delay = 0.5
    d = send(world, regions=["330112002001"], confirm=False)
    SendWorker(poll=0).round()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"])
    assert row.status == "queued" and "Timeout" in row.reason


def test_gateway_delivery_reports(world, people, sink, client, settings):
    sink.state.deliver = False  # the gateway accepts now and reports later
    d = send(world, regions=["330112002001"], confirm=False)
    run_once()
    row = Delivery.objects.get(dispatch=d, recipient=people["village_b"], channel="sms")
    assert row.status == "sent"
    client.force_login(world["users"]["api_client"])  # the gateway's account
    r = client.post("/api/v1/comms/reports", {"out_id": row.key, "status": "delivered"},
                    content_type="application/json")
    assert r.status_code == 200 and r.json() == {"delivery": row.pk, "status": "delivered"}
    # A late failure report: failed, with the gateway's reason, and the person's next channel queued.
    d2 = send(world, regions=["330112002001"], confirm=False)
    run_once()
    row2 = Delivery.objects.get(dispatch=d2, recipient=people["village_b"], channel="sms")
    r = client.post("/api/v1/comms/reports", {"out_id": row2.key, "status": "failed", "error": "MK:0001 关机"},
                    content_type="application/json")
    assert r.json()["status"] == "failed"
    row2.refresh_from_db()
    assert "关机" in row2.reason
    assert Delivery.objects.get(dispatch=d2, recipient=people["village_b"], channel="dingtalk").status == "queued"
    # Per-field errors; and a report the caller's region does not cover is refused.
    r = client.post("/api/v1/comms/reports", {"out_id": "nope", "status": "lost"}, content_type="application/json")
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"status"}
    r = client.post("/api/v1/comms/reports", {"out_id": "tm1d999999", "status": "delivered"},
                    content_type="application/json")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "out_id"
    client.force_login(world["users"]["town_staff"])
    r = client.post("/api/v1/comms/reports", {"out_id": row.key, "status": "delivered"},
                    content_type="application/json")
    assert r.status_code == 403
