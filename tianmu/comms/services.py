"""The only code that changes the command-communications network's state (besides the send worker's delivery
bookkeeping in sending.py): dispatch a message, cancel a dispatch, confirm receipt (叫应), escalate whoever has
not confirmed in time. Recipients are a record kind: core/registry/services.py changes them.

`dispatch()` is THE interface other apps call (warnings for dissemination, incident command for orders), inside
their own transaction: the deliveries are written in it (an outbox), so a warning and its sends commit or roll
back together, and the worker sends them after the commit."""

from __future__ import annotations

import re
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.choices import Hazard, WarningLevel, warning_level_rank
from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.events import emit
from tianmu.core.models import Region
from tianmu.core.scope import can, check

from .choices import OPEN_STATUSES, ConfirmVia, DeliveryStatus, DispatchStatus
from .conf import conf
from .models import Delivery, Dispatch, Recipient, split_list

__all__ = ["dispatch", "cancel", "confirm", "escalate_due", "resolve_recipients", "confirm_minutes",
           "record_report", "MAX_REGIONS"]

MAX_REGIONS = 400  # regions named in one dispatch (the district has ~320)


def confirm_minutes(level: str) -> int:
    """Minutes a person has to confirm a message of this level (COMMS_CONFIRM_MINUTES)."""
    table = conf("COMMS_CONFIRM_MINUTES")
    return int(table.get(level or "", table.get("blue", 60)))


def resolve_recipients(regions: list[Region], level: str, hazard_types=()) -> list[Recipient]:
    """Active persons subscribed to any of the regions (their watch region, else their own region, is one of the
    regions, inside one, or contains one), at or above their minimum level, for one of the hazard types (a person
    without hazard types takes all; a message without them reaches everyone)."""
    codes = [r.code for r in regions]
    ancestors = {c[:n] for c in codes for n in (6, 9, 12) if n <= len(c)}
    match = Q()
    for field in ("watch_code", "region__code"):
        inside = Q()
        for code in codes:
            inside |= Q(**{f"{field}__startswith": code})
        own = inside | Q(**{f"{field}__in": ancestors})
        match |= (Q(watch_code="") & own) if field == "region__code" else own
    people = Recipient.objects.filter(active=True).filter(match).select_related("region").order_by("pk")
    rank = warning_level_rank(level)
    wanted = set(hazard_types)
    out = []
    for person in people:
        if rank and warning_level_rank(person.min_level) > rank:
            continue
        mine = set(split_list(person.hazard_types))
        if mine and wanted and not (mine & wanted):
            continue
        out.append(person)
    return out


def _common_region(regions: list[Region]) -> Region:
    codes = [r.code for r in regions]
    for n in (12, 9, 6):
        heads = {c[:n] for c in codes}
        if len(heads) == 1 and all(len(c) >= n for c in codes):
            return Region.objects.get(code=heads.pop())
    return Region.objects.get(code=codes[0][:6])


def dispatch(actor, *, source: str, subject_id, subject_url: str = "", title: str, text: str, level: str,
             regions, hazard_types=(), confirm: bool | None = None) -> Dispatch:
    """Send a message to everyone responsible for `regions` (codes or Regions): one delivery per person on their
    first channel, written in the caller's transaction (the send worker sends them once it commits). `confirm`
    (叫应) defaults to True for the levels in COMMS_CONFIRM_LEVELS (red, orange). Raises ServiceError (per field)
    or ScopeError (the actor may not send to one of the regions)."""
    errors: dict[str, list] = {}
    title, text = (title or "").strip(), (text or "").strip()
    if not title:
        errors["title"] = [_("请填写标题")]
    elif len(title) > 200:
        errors["title"] = [_("标题不能超过200字")]
    if not text:
        errors["text"] = [_("请填写正文")]
    elif len(text) > conf("COMMS_MAX_TEXT"):
        errors["text"] = [_("正文不能超过%(n)s字") % {"n": conf("COMMS_MAX_TEXT")}]
    if level and level not in WarningLevel.values:
        errors["level"] = [_("级别应为 blue、yellow、orange、red 之一")]
    if not source or len(source) > 64:
        errors["source"] = [_("请填写来源(不超过64字符)")]
    if len(str(subject_id)) > 64 or len(subject_url or "") > 300:
        errors["subject_id"] = [_("来源对象或链接过长")]
    bad = [h for h in hazard_types if h not in Hazard.values]
    if bad:
        errors["hazard_types"] = [_("未知的灾种:%(bad)s") % {"bad": "、".join(map(str, bad))}]
    codes = [r.code if isinstance(r, Region) else str(r) for r in regions or ()]
    if not codes:
        errors["regions"] = [_("请至少选择一个区域")]
    elif len(codes) > MAX_REGIONS:
        errors["regions"] = [_("一次最多发送%(n)s个区域") % {"n": MAX_REGIONS}]
    found = {r.code: r for r in Region.objects.filter(code__in=codes)} if codes else {}
    missing = [c for c in codes if c not in found]
    if missing and "regions" not in errors:
        errors["regions"] = [_("没有这些区划代码:%(codes)s") % {"codes": "、".join(missing[:10])}]
    if errors:
        raise ServiceError(errors)
    targets = [found[c] for c in dict.fromkeys(codes)]
    for region in targets:
        check(actor, "comms.dispatch.send", region)
    if confirm is None:
        confirm = level in conf("COMMS_CONFIRM_LEVELS")
    minutes = confirm_minutes(level)
    with transaction.atomic():
        people = resolve_recipients(targets, level, hazard_types)
        now = timezone.now()
        d = Dispatch.objects.create(
            source=source, subject_id=str(subject_id), subject_url=subject_url or "", title=title, text=text,
            level=level or "", regions=[r.code for r in targets], hazard_types=list(hazard_types),
            confirm=bool(confirm), confirm_minutes=minutes, region=_common_region(targets),
            created_by=actor if getattr(actor, "pk", None) else None, created_at=now)
        due = now + timedelta(minutes=minutes) if confirm else None
        Delivery.objects.bulk_create([
            Delivery(dispatch=d, recipient=p, region=p.region, channel=p.channel_list()[0],
                     confirm_required=bool(confirm), confirm_due_at=due, next_attempt_at=now, created_at=now)
            for p in people], batch_size=500)
        emit("comms.dispatch.created", actor=actor, region=d.region, subject=f"dispatch:{d.pk}",
             payload={"dispatch": d.pk, "source": source, "subject_id": str(subject_id), "level": d.level,
                      "regions": d.regions, "recipients": len(people), "confirm": d.confirm})
    return d


def cancel(actor, d: Dispatch) -> int:
    """Stop a dispatch: its queued deliveries are not sent, its escalations stop. Returns how many were
    stopped. A message already handed to a gateway cannot be called back."""
    check(actor, "comms.dispatch.cancel", d.region)
    return _stop(d, actor, str(_("发送批次已撤销")))


def stop(source: str, subject_id, *, reason: str) -> int:
    """Stop every active dispatch about one subject (a warning that was replaced by a new version, cancelled or
    expired): queued deliveries are not sent and escalations stop, with `reason` on each. The subject's own app
    calls this as the system when its subject no longer holds (no actor, no permission check)."""
    return sum(_stop(d, None, reason) for d in
               Dispatch.objects.filter(source=source, subject_id=str(subject_id), status=DispatchStatus.ACTIVE))


def _stop(d: Dispatch, actor, reason: str) -> int:
    with transaction.atomic():
        d = Dispatch.objects.select_for_update().get(pk=d.pk)
        if d.status == DispatchStatus.CANCELLED:
            return 0
        now = timezone.now()
        d.status, d.cancelled_at = DispatchStatus.CANCELLED, now
        d.save(update_fields=["status", "cancelled_at"])
        stopped = Delivery.objects.filter(dispatch=d, status__in=OPEN_STATUSES, attempt_key="").update(
            status=DeliveryStatus.CANCELLED, reason=reason[:200], lease_until=None)
        emit("comms.dispatch.cancelled", actor=actor, region=d.region, subject=f"dispatch:{d.pk}",
             payload={"dispatch": d.pk, "cancelled": stopped})
    return stopped


def may_confirm(actor, delivery: Delivery) -> bool:
    """The person themselves (their linked account), or someone the table lets confirm in that region (a duty
    officer recording a phone call)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    account = delivery.recipient.account
    if account and account == actor.username:
        return True
    return can(actor, "comms.delivery.confirm", delivery.region)


def confirm(actor, delivery: Delivery, *, via: str = ConfirmVia.INBOX) -> bool:
    """Record that the person received the message (叫应). `actor` None means a signed link (the token is the
    authority, checked by the caller). Idempotent: False when it was already confirmed."""
    if via != ConfirmVia.LINK and not may_confirm(actor, delivery):
        raise ScopeError(_("您不能替该责任人确认"))
    user = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        now = timezone.now()
        done = Delivery.objects.filter(dispatch_id=delivery.dispatch_id, recipient_id=delivery.recipient_id,
                                       purpose=delivery.purpose, confirmed_at__isnull=True).update(
            confirmed_at=now, confirmed_by=user, confirmed_via=via)
        if not done:
            return False
        emit("comms.delivery.confirmed", actor=user, region=delivery.region, subject=f"delivery:{delivery.pk}",
             payload={"dispatch": delivery.dispatch_id, "delivery": delivery.pk,
                      "recipient": delivery.recipient_id, "via": str(via)})
    return True


def _next_channel(person: Recipient, d_id: int, purpose: str) -> str | None:
    used = set(Delivery.objects.filter(dispatch_id=d_id, recipient=person, purpose=purpose)
               .values_list("channel", flat=True))
    return next((c for c in person.channel_list() if c not in used), None)


def escalate_due(now=None) -> int:
    """The periodic call-and-respond check: every person whose confirmation is overdue is escalated once per
    period: their next channel, then (no channel left) a notice to their superior, who must confirm in turn.
    Each escalation is recorded on the overdue row and as an event. Returns the number of escalations."""
    now = now or timezone.now()
    due = (Delivery.objects.filter(confirm_required=True, confirmed_at__isnull=True, escalated_at__isnull=True,
                                   confirm_due_at__lte=now, dispatch__status=DispatchStatus.ACTIVE)
           .exclude(status__in=OPEN_STATUSES).exclude(status=DeliveryStatus.CANCELLED)
           .select_related("recipient__superior__region", "recipient__region", "dispatch")
           .order_by("pk"))
    count = 0
    seen: set[tuple] = set()
    for row in due[:500]:
        person_key = (row.dispatch_id, row.recipient_id, row.purpose)
        if person_key in seen:
            continue
        seen.add(person_key)
        with transaction.atomic():
            claimed = Delivery.objects.filter(pk=row.pk, escalated_at__isnull=True, confirmed_at__isnull=True).update(
                escalated_at=now)
            if not claimed:
                continue
            # Every other overdue row of this person is escalated by this one step.
            Delivery.objects.filter(dispatch_id=row.dispatch_id, recipient_id=row.recipient_id, purpose=row.purpose,
                                    escalated_at__isnull=True).update(escalated_at=now)
            person, d = row.recipient, row.dispatch
            new_due = now + timedelta(minutes=d.confirm_minutes)
            channel = _next_channel(person, d.pk, row.purpose)
            if channel is not None:
                step, target = "next_channel", person
                new = Delivery.objects.create(
                    dispatch=d, recipient=person, region=person.region, channel=channel, purpose=row.purpose,
                    note=row.note, confirm_required=True, confirm_due_at=new_due, escalation=row.escalation + 1,
                    escalated_from=row, next_attempt_at=timezone.now())
            elif person.superior is not None and person.superior.active:
                step, target = "superior", person.superior
                purpose = f"esc:{person.pk}"
                if Delivery.objects.filter(dispatch=d, recipient=target, purpose=purpose).exists():
                    continue  # already told about this person
                note = str(_("【未叫应】%(name)s(%(region)s)超过%(m)s分钟未确认收到,请督促落实:") % {
                    "name": person.name, "region": person.region.name, "m": d.confirm_minutes})
                new = Delivery.objects.create(
                    dispatch=d, recipient=target, region=target.region, channel=target.channel_list()[0],
                    purpose=purpose, note=note[:300], confirm_required=True, confirm_due_at=new_due,
                    escalation=row.escalation + 1, escalated_from=row, next_attempt_at=timezone.now())
            else:
                step, target, new = "exhausted", person, None
            emit("comms.delivery.escalated", region=row.region, subject=f"delivery:{row.pk}",
                 payload={"dispatch": d.pk, "delivery": row.pk, "recipient": person.pk, "step": step,
                          "to_recipient": target.pk, "channel": new.channel if new else ""})
            count += 1
    return count


KEY_RE = re.compile(r"^tm(\d+)d(\d+)$")


def record_report(actor, *, out_id: str, status: str, error: str = "") -> Delivery:
    """A gateway's delivery report (SMS 状态报告) for the message it knows by our `out_id` (the delivery's key):
    "delivered" marks it delivered; "failed" marks it failed with the gateway's error and queues the person's
    next channel (a number that was switched off, a full inbox). Needs `comms.reports.submit` in the person's
    region (the gateway's account). Idempotent: a repeated report changes nothing."""
    match = KEY_RE.match(out_id or "")
    if status not in ("delivered", "failed"):
        raise ServiceError({"status": [_("状态应为 delivered 或 failed")]})
    delivery = (Delivery.objects.select_related("recipient", "region").filter(pk=int(match.group(2)),
                                                                             dispatch_id=int(match.group(1))).first()
                if match else None)
    if delivery is None:
        raise ServiceError({"out_id": [_("没有这条消息")]})
    check(actor, "comms.reports.submit", delivery.region)
    from .sending import _advance  # the channel fallback lives with the worker

    with transaction.atomic():
        now = timezone.now()
        if status == "delivered":
            Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENT).update(
                status=DeliveryStatus.DELIVERED, delivered_at=now)
        elif Delivery.objects.filter(pk=delivery.pk, status__in=(DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
                                     ).update(status=DeliveryStatus.FAILED,
                                              reason=(str(_("网关状态报告:")) + (error or ""))[:300]):
            delivery.refresh_from_db()
            _advance(delivery, delivery.reason, now)
    delivery.refresh_from_db()
    return delivery
