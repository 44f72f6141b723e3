"""Scoped reads of the command-communications network: dispatches an actor may see, a dispatch's progress overall
and by town and village, the call-and-respond board (叫应看板), a user's inbox."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from tianmu.core.models import Region
from tianmu.core.scope import action_prefix, region_prefix

from .choices import Channel, DeliveryStatus, DispatchStatus
from .models import Delivery, Dispatch, Recipient

__all__ = ["visible_dispatches", "visible_deliveries", "progress", "board", "inbox", "recipients_of", "reachable_deliveries",
           "COUNTS"]

COUNTS = ("recipients", "queued", "sent", "delivered", "failed", "confirmed", "unconfirmed", "escalated")


def visible_deliveries(actor, qs: QuerySet | None = None) -> QuerySet:
    qs = Delivery.objects.all() if qs is None else qs
    prefix = region_prefix(actor)
    if prefix is None:
        return qs.none()
    return qs.filter(region__code__startswith=prefix) if prefix else qs


def reachable_deliveries(actor) -> QuerySet:
    """Deliveries the actor may look up: within their region, or addressed to a person linked to their account."""
    prefix = region_prefix(actor)
    mine = Q(recipient__account=actor.username) if getattr(actor, "is_authenticated", False) else Q(pk__in=[])
    if prefix is None:
        return Delivery.objects.filter(mine)
    return Delivery.objects.filter(Q(region__code__startswith=prefix) | mine)


def visible_dispatches(actor) -> QuerySet:
    """Dispatches sent within the actor's region, or reaching anyone in it."""
    prefix = region_prefix(actor)
    if prefix is None:
        return Dispatch.objects.none()
    if prefix == "":
        return Dispatch.objects.all()
    reaching = Delivery.objects.filter(dispatch=OuterRef("pk"), region__code__startswith=prefix)
    return Dispatch.objects.filter(Q(region__code__startswith=prefix) | Exists(reaching))


def recipients_of(user) -> QuerySet:
    """The responsible persons linked to this user account."""
    return Recipient.objects.filter(account=user.username) if user.is_authenticated else Recipient.objects.none()


def _person_state(rows: list[dict]) -> dict:
    statuses = {r["status"] for r in rows}
    confirm = any(r["confirm_required"] for r in rows)
    confirmed = any(r["confirmed_at"] for r in rows)
    return {
        "queued": not statuses & {DeliveryStatus.SENT, DeliveryStatus.DELIVERED}
        and bool(statuses & {DeliveryStatus.QUEUED, DeliveryStatus.SENDING}),
        "sent": bool(statuses & {DeliveryStatus.SENT, DeliveryStatus.DELIVERED}),
        "delivered": DeliveryStatus.DELIVERED in statuses,
        "failed": statuses <= {DeliveryStatus.FAILED},
        "confirmed": confirmed,
        "unconfirmed": confirm and not confirmed,
        "escalated": any(r["escalated_at"] for r in rows),
    }


def progress(dispatch: Dispatch, actor=None) -> dict:
    """Counts of persons (each person once, whatever channels were tried) for the dispatch's own message:
    recipients, queued (nothing sent yet), sent, delivered (a gateway said so), failed (every channel failed),
    confirmed, unconfirmed (asked to confirm, not yet), escalated; overall, by town and by village. With an
    actor, only the persons in their region. Also `channels`: per channel, rows by status, and billed SMS
    segments."""
    qs = Delivery.objects.filter(dispatch=dispatch, purpose="")
    if actor is not None:
        qs = visible_deliveries(actor, qs)
    people: dict[int, list[dict]] = defaultdict(list)
    channels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    segments = 0
    for row in qs.values("recipient_id", "region__code", "channel", "status", "confirm_required", "confirmed_at",
                         "escalated_at", "segments"):
        people[row["recipient_id"]].append(row)
        channels[row["channel"]][row["status"]] += 1
        segments += row["segments"] if row["channel"] == "sms" else 0
    total = dict.fromkeys(COUNTS, 0)
    towns: dict[str, dict] = {}
    villages: dict[str, dict] = {}
    for rows in people.values():
        state = _person_state(rows)
        code = rows[0]["region__code"]
        buckets = [total, towns.setdefault(code[:9], dict.fromkeys(COUNTS, 0)),  # the district's own: one row
                   villages.setdefault(code, dict.fromkeys(COUNTS, 0)) if len(code) == 12 else None]
        for bucket in filter(None, buckets):
            bucket["recipients"] += 1
            for key, on in state.items():
                bucket[key] += int(on)
    names = dict(Region.objects.filter(code__in=[*towns, *villages]).values_list("code", "name"))

    def rows_of(table):
        return [{"code": c, "name": names.get(c, c), **counts} for c, counts in sorted(table.items())]

    return {"dispatch": dispatch.pk, "status": dispatch.status, **total, "sms_segments": segments,
            "channels": {c: dict(s) for c, s in sorted(channels.items())},
            "by_town": rows_of(towns), "by_village": rows_of(villages)}


def board(actor, *, hours: int = 48, now=None) -> dict:
    """The call-and-respond board: every person asked to confirm an active dispatch of the last `hours` who has
    not, within the actor's region (comms.board.view), grouped by town and village, oldest first, with the
    elapsed minutes and whether they are overdue or escalated. Phone numbers are masked for actors without
    comms.phones.view."""
    from tianmu.core.registry.kinds import mask

    now = now or timezone.now()
    prefix = action_prefix(actor, "comms.board.view")
    if prefix is None:
        return {"towns": [], "total": 0, "overdue": 0, "now": now}
    qs = Delivery.objects.filter(confirm_required=True, confirmed_at__isnull=True,
                                 dispatch__status=DispatchStatus.ACTIVE,
                                 dispatch__created_at__gte=now - timezone.timedelta(hours=hours))
    if prefix:
        qs = qs.filter(region__code__startswith=prefix)
    see_phones = action_prefix(actor, "comms.phones.view") is not None
    people: dict[tuple, dict] = {}
    for d in qs.select_related("recipient", "region", "dispatch").order_by("created_at", "pk"):
        key = (d.dispatch_id, d.recipient_id, d.purpose)
        entry = people.get(key)
        if entry is None:
            mobile = d.recipient.mobile
            entry = people[key] = {
                "delivery": d.pk, "dispatch": d.dispatch_id, "title": d.dispatch.title, "level": d.dispatch.level,
                "level_label": d.dispatch.get_level_display(), "reason": "",
                "name": d.recipient.name, "duty": d.recipient.get_duty_display(), "region": d.region.name,
                "region_code": d.region.code, "mobile": mobile if see_phones else mask(mobile),
                "since": d.created_at, "minutes": int((now - d.created_at).total_seconds() // 60),
                "due": d.confirm_due_at, "overdue": bool(d.confirm_due_at and d.confirm_due_at <= now),
                "escalations": 0, "channels": [], "status": d.status, "is_escalation": bool(d.purpose)}
        entry["channels"].append(d.channel)
        entry["escalations"] = max(entry["escalations"], d.escalation + (1 if d.escalated_at else 0))
        if d.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
            entry["status"] = d.status
        elif d.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING) and entry["status"] == DeliveryStatus.FAILED:
            entry["status"] = d.status
        if d.status == DeliveryStatus.FAILED:
            entry["reason"] = d.reason
    labels = dict(Channel.choices)
    statuses = dict(DeliveryStatus.choices)
    for p in people.values():
        p["channel_labels"] = [str(labels.get(c, c)) for c in p["channels"]]
        p["unreached"] = p["status"] == DeliveryStatus.FAILED
        p["status_label"] = str(statuses.get(p["status"], p["status"]))
    towns: dict[str, dict] = {}
    codes = {p["region_code"][:9] for p in people.values()}
    names = dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
    for p in people.values():
        code = p["region_code"]
        town = towns.setdefault(code[:9], {"code": code[:9], "name": names.get(code[:9], code[:9]), "villages": {},
                                           "count": 0, "overdue": 0})
        village = town["villages"].setdefault(code, {"code": code, "name": p["region"], "people": []})
        village["people"].append(p)
        village["people"].sort(key=lambda q: (not q["unreached"], not q["overdue"], q["since"]))
        town["count"] += 1
        town["overdue"] += int(p["overdue"])
    out = []
    for town in sorted(towns.values(), key=lambda t: (-t["overdue"], t["code"])):
        town["villages"] = sorted(town["villages"].values(), key=lambda v: v["code"])
        out.append(town)
    return {"towns": out, "total": len(people), "overdue": sum(t["overdue"] for t in out), "now": now}


def inbox(user, *, limit: int = 100) -> list[Delivery]:
    """The user's messages: one per dispatch and purpose (the newest row), newest first, of every responsible
    person linked to the account."""
    rows = (Delivery.objects.filter(recipient__in=recipients_of(user))
            .exclude(status=DeliveryStatus.CANCELLED)
            .select_related("dispatch", "recipient", "region").order_by("-created_at", "-pk"))
    seen, out = set(), []
    for d in rows[: limit * 4]:
        key = (d.dispatch_id, d.recipient_id, d.purpose)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
        if len(out) >= limit:
            break
    return out
