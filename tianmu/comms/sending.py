"""The send worker (`tianmu comms_send`, declared in CommsConfig.workers): claims queued deliveries with a lease,
sends each over its channel within that channel's rate limit, records the outcome, retries transient failures
with exponential backoff, moves on to the person's next channel when one is not configured, has no address or
refuses, and runs the call-and-respond escalation check between rounds.

Crash safety (docs/comms.md "Guarantees"): a row is claimed (lease, committed) before anything is sent, and its
`attempt_key` is stamped and committed right before the remote call and cleared with the result. A worker
killed at any point leaves rows whose lease runs out; the next worker takes them again. A row with no attempt
key was never sent: it is sent normally. A row with one may have reached the far end: channels whose protocol
carries our idempotency key (SMS out_id, broadcast request_id) are sent again with the same key, which the
gateway recognises; the others (DingTalk robot, email) are not sent again — they are marked sent with the
reason, and call-and-respond escalates if the person does not confirm."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from tianmu.core.events import emit

from .channels import Message, Result, channel
from .choices import OPEN_STATUSES, DeliveryStatus, DispatchStatus
from .conf import conf
from .links import confirm_link
from .models import Delivery

__all__ = ["SendWorker", "claim", "send_one", "IDEMPOTENT_CHANNELS"]

log = logging.getLogger(__name__)

# Channels whose protocol carries our idempotency key, so a re-send after a crash is dropped by the far end.
IDEMPOTENT_CHANNELS = {"sms", "broadcast", "inbox"}


def claim(owner: str, limit: int, now=None) -> list[Delivery]:
    """Take up to `limit` due deliveries for this worker: queued ones whose next attempt is due, and sending ones
    whose lease ran out (their worker died). On PostgreSQL the candidates are locked with SKIP LOCKED, so
    workers never wait on each other; on both databases the conditional UPDATE with a fresh lease token decides
    who owns a row."""
    now = now or timezone.now()
    token = f"{owner}:{uuid.uuid4().hex[:12]}"
    lease = now + timedelta(seconds=conf("COMMS_LEASE_SECONDS"))
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    with transaction.atomic():
        qs = Delivery.objects.filter(status__in=OPEN_STATUSES, next_attempt_at__lte=now).filter(free)
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        ids = list(qs.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        Delivery.objects.filter(pk__in=ids).filter(free).update(
            status=DeliveryStatus.SENDING, lease_owner=token, lease_until=lease)
    return list(Delivery.objects.filter(lease_owner=token, status=DeliveryStatus.SENDING)
                .select_related("recipient__region", "region", "dispatch").order_by("next_attempt_at", "pk"))


def _message(d: Delivery) -> Message:
    dispatch = d.dispatch
    link = confirm_link(d) if d.confirm_required else ""
    title = dispatch.title
    text = f"{d.note}{dispatch.text}" if d.note else dispatch.text
    return Message(title=title, text=text, link=link, level=dispatch.level, key=d.key)


def _mine(d: Delivery):
    """This row, still leased by us (a cancel or another worker may have taken it)."""
    return Delivery.objects.filter(pk=d.pk, lease_owner=d.lease_owner, status=DeliveryStatus.SENDING)


def _advance(d: Delivery, reason: str, now) -> None:
    """This channel is done with for the person: queue their next channel, or record that none reached them."""
    from .services import _next_channel

    nxt = _next_channel(d.recipient, d.dispatch_id, d.purpose)
    if nxt is not None:
        Delivery.objects.create(dispatch_id=d.dispatch_id, recipient=d.recipient, region=d.region, channel=nxt,
                                purpose=d.purpose, note=d.note, confirm_required=d.confirm_required,
                                confirm_due_at=d.confirm_due_at, escalation=d.escalation, escalated_from=d.escalated_from,
                                next_attempt_at=now)
        return
    reached = Delivery.objects.filter(dispatch_id=d.dispatch_id, recipient=d.recipient, purpose=d.purpose,
                                      status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED)).exists()
    if not reached:
        emit("comms.delivery.failed", region=d.region, subject=f"delivery:{d.pk}",
             payload={"dispatch": d.dispatch_id, "delivery": d.pk, "recipient": d.recipient_id, "channel": d.channel,
                      "reason": reason[:300]})


def _finish(d: Delivery, result: Result, now) -> None:
    """Record one attempt's outcome (in one transaction with whatever it triggers)."""
    with transaction.atomic():
        done = dict(attempt_key="", lease_until=None, lease_owner="")
        if result.ok:
            status = DeliveryStatus.DELIVERED if result.delivered else DeliveryStatus.SENT
            _mine(d).update(status=status, sent_at=now, delivered_at=now if result.delivered else None,
                            provider_id=result.provider_id, segments=result.segments, reason=result.reason[:300],
                            **done)
            return
        if result.retry and d.attempts < conf("COMMS_MAX_ATTEMPTS"):
            wait = min(conf("COMMS_RETRY_SECONDS") * 2 ** max(d.attempts - 1, 0), conf("COMMS_RETRY_MAX_SECONDS"))
            _mine(d).update(status=DeliveryStatus.QUEUED, next_attempt_at=now + timedelta(seconds=wait),
                            reason=result.reason[:300], segments=result.segments, **done)
            return
        if _mine(d).update(status=DeliveryStatus.FAILED, reason=result.reason[:300], segments=result.segments,
                           **done):
            _advance(d, result.reason, now)


def send_one(d: Delivery, now=None) -> Result | None:
    """Send one claimed delivery (see the module's docstring for what happens after a crash)."""
    now = now or timezone.now()
    if d.dispatch.status != DispatchStatus.ACTIVE:
        _mine(d).update(status=DeliveryStatus.CANCELLED, reason=gettext("发送批次已撤销"), lease_until=None,
                        attempt_key="")
        return None
    client = channel(d.channel) if d.channel in _clients() else None
    if client is None:
        result = Result(False, gettext("未知渠道 %(c)s") % {"c": d.channel}, retry=False)
        _finish(d, result, now)
        return result
    address = client.address(d.recipient)
    if not address:
        result = Result(False, gettext("未登记该渠道的地址"), retry=False)
        _finish(d, result, now)
        return result
    if not client.configured(d.recipient):
        result = Result(False, gettext("渠道未配置"), retry=False)
        _finish(d, result, now)
        return result
    if d.attempt_key and d.channel not in IDEMPOTENT_CHANNELS:
        result = Result(True, gettext("发送进程中断,结果未知;该渠道无法去重,不再重发,由叫应兜底"))
        _finish(d, result, now)
        return result
    # The in-flight mark, committed before the remote call; attempts count calls made.
    key = uuid.uuid4().hex
    if not _mine(d).update(attempt_key=key, address=address[:200], attempts=F("attempts") + 1):
        return None  # cancelled meanwhile
    d.address, d.attempt_key = address, key
    d.attempts += 1
    try:
        result = client.send(d, _message(d))
    except Exception as exc:  # noqa: BLE001 - a client bug must not stop the worker; the row retries
        log.exception("comms: channel %s failed on delivery %s", d.channel, d.pk)
        result = Result(False, f"{type(exc).__name__}: {exc}"[:300], retry=True)
    _finish(d, result, timezone.now())
    return result


def _clients():
    from .channels import CLIENTS

    return CLIENTS


class RateLimiter:
    """Per-channel pacing inside one worker: at most COMMS_RATE_LIMITS[channel] messages a second."""

    def __init__(self, limits: dict, clock=time.monotonic, sleep=time.sleep):
        self.interval = {c: 1.0 / float(r) for c, r in limits.items() if r}
        self.next_at: dict[str, float] = {}
        self.clock, self.sleep = clock, sleep

    def wait(self, name: str) -> None:
        gap = self.interval.get(name)
        if not gap:
            return
        now = self.clock()
        sleep = self.sleep
        at = self.next_at.get(name, now)
        if at > now:
            sleep(at - now)
        self.next_at[name] = max(at, now) + gap


class SendWorker:
    """The loop: claim a batch, send it, escalate overdue confirmations; sleep when idle."""

    def __init__(self, *, batch: int | None = None, poll: float | None = None):
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch or conf("COMMS_BATCH")
        self.poll = conf("COMMS_POLL_SECONDS") if poll is None else poll
        self.limiter = RateLimiter(conf("COMMS_RATE_LIMITS"))
        self.running = True
        self.stats = {"sent": 0, "failed": 0, "escalated": 0}

    def stop(self) -> None:
        self.running = False

    def round(self) -> int:
        """One round: returns how many deliveries were handled."""
        from .services import escalate_due

        rows = claim(self.owner, self.batch)
        for d in rows:
            if not self.running:
                break
            self.limiter.wait(d.channel)
            result = send_one(d)
            if result is not None:
                self.stats["sent" if result.ok else "failed"] += 1
        self.stats["escalated"] += escalate_due()
        return len(rows)

    def run(self, *, once: bool = False) -> None:
        while self.running:
            try:
                handled = self.round()
            except Exception:  # noqa: BLE001 - a database hiccup: log, wait, carry on
                log.exception("comms: send round failed")
                handled = 0
                time.sleep(self.poll)
            if once and not handled:
                return
            if not handled:
                time.sleep(self.poll)
