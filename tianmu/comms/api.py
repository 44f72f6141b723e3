"""The command-communications API at /api/v1/comms/: send a message (an order) to the persons responsible for
regions, a dispatch's progress by town and village, cancel it, confirm a delivery (authenticated; the one-tap
link is a page), the caller's inbox and the call-and-respond board. No logic: schema in, service or query
call, schema out."""

from __future__ import annotations

from datetime import datetime

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from tianmu.core.api import PageNumber, page_size_param
from tianmu.core.choices import Hazard, WarningLevel
from tianmu.core.scope import check

from .choices import ConfirmVia
from .queries import board, inbox, progress, reachable_deliveries, visible_dispatches
from .services import cancel, confirm, dispatch, record_report

__all__ = ["router"]

router = Router(tags=["comms · 指挥通信"])
PageSize = page_size_param(200)


class DispatchIn(Schema):
    title: str = Field(..., max_length=200, description="标题")
    text: str = Field(..., max_length=1000, description="正文")
    level: WarningLevel | None = Field(None, description="blue/yellow/orange/red; empty for an order without a colour")
    regions: list[str] = Field(..., max_length=400, description="区划代码 (town 9 or village 12 digits, or the district)")
    hazard_types: list[Hazard] = Field(default_factory=list, max_length=20)
    confirm: bool | None = Field(None, description="要求叫应; default: true for red and orange")


class DispatchOut(Schema):
    id: int
    source: str
    subject_id: str
    subject_url: str
    title: str
    text: str
    level: str
    regions: list[str]
    hazard_types: list[str]
    confirm: bool
    confirm_minutes: int
    status: str
    region: str = Field(..., alias="region.code")
    created_at: datetime


class CountsOut(Schema):
    code: str
    name: str
    recipients: int
    queued: int
    sent: int
    delivered: int
    failed: int
    confirmed: int
    unconfirmed: int
    escalated: int


class ProgressOut(Schema):
    dispatch: int
    status: str
    recipients: int
    queued: int
    sent: int
    delivered: int
    failed: int
    confirmed: int
    unconfirmed: int
    escalated: int
    sms_segments: int
    channels: dict[str, dict[str, int]]
    by_town: list[CountsOut]
    by_village: list[CountsOut]


class CancelOut(Schema):
    dispatch: int
    cancelled: int


class ConfirmOut(Schema):
    delivery: int
    confirmed: bool = Field(..., description="true: recorded now; false: it was already confirmed")
    confirmed_at: datetime | None


class ReportIn(Schema):
    out_id: str = Field(..., max_length=64, description="our idempotency key, sent to the gateway as out_id")
    status: str = Field(..., max_length=16, description="delivered or failed")
    error: str = Field("", max_length=200, description="the gateway's error, for failed")


class ReportOut(Schema):
    delivery: int
    status: str


class InboxItem(Schema):
    delivery: int
    dispatch: int
    title: str
    text: str
    note: str
    level: str
    channel: str
    status: str
    confirm_required: bool
    confirm_due_at: datetime | None
    confirmed_at: datetime | None
    created_at: datetime


class BoardPerson(Schema):
    delivery: int
    dispatch: int
    title: str
    level: str
    name: str
    duty: str
    region: str
    region_code: str
    mobile: str
    minutes: int
    overdue: bool
    escalations: int
    channels: list[str]
    status: str


class BoardVillage(Schema):
    code: str
    name: str
    people: list[BoardPerson]


class BoardTown(Schema):
    code: str
    name: str
    count: int
    overdue: int
    villages: list[BoardVillage]


class BoardOut(Schema):
    total: int
    overdue: int
    towns: list[BoardTown]


@router.post("/dispatches", response={201: DispatchOut}, summary="Send a message (an order) to the persons "
             "responsible for regions, by their subscriptions")
def dispatch_create(request, payload: DispatchIn):
    d = dispatch(request.auth, source="comms.order", subject_id="", title=payload.title, text=payload.text,
                 level=payload.level.value if payload.level else "", regions=payload.regions,
                 hazard_types=[h.value for h in payload.hazard_types], confirm=payload.confirm)
    return 201, d


@router.get("/dispatches", response=list[DispatchOut], summary="Dispatches sent in, or reaching, the caller's region")
def dispatch_list(request, page: PageNumber = 1, page_size: PageSize = 50, source: str | None = None,
                  subject_id: str | None = None):
    qs = visible_dispatches(request.auth).select_related("region")
    if source:
        qs = qs.filter(source=source)
    if subject_id:
        qs = qs.filter(subject_id=subject_id)
    start = (page - 1) * page_size
    return list(qs.order_by("-created_at", "-pk")[start:start + page_size])


@router.get("/dispatches/{int:dispatch_id}", response=ProgressOut,
            summary="A dispatch's progress: persons sent, delivered, failed, confirmed, escalated, by town and village")
def dispatch_progress(request, dispatch_id: int):
    d = get_object_or_404(visible_dispatches(request.auth), pk=dispatch_id)
    return progress(d, request.auth)


@router.post("/dispatches/{int:dispatch_id}/cancel", response=CancelOut, summary="Stop a dispatch's pending sends")
def dispatch_cancel(request, dispatch_id: int):
    d = get_object_or_404(visible_dispatches(request.auth), pk=dispatch_id)
    return {"dispatch": d.pk, "cancelled": cancel(request.auth, d)}


@router.post("/deliveries/{int:delivery_id}/confirm", response=ConfirmOut,
             summary="Confirm receipt (叫应): the person's own account, or a duty officer recording a call")
def delivery_confirm(request, delivery_id: int):
    d = get_object_or_404(reachable_deliveries(request.auth).select_related("recipient", "region"), pk=delivery_id)
    done = confirm(request.auth, d, via=ConfirmVia.API)
    d.refresh_from_db(fields=["confirmed_at"])
    return {"delivery": d.pk, "confirmed": done, "confirmed_at": d.confirmed_at}


@router.post("/reports", response=ReportOut,
             summary="A gateway's delivery report (SMS 状态报告): delivered, or failed (the next channel is queued)")
def report_submit(request, payload: ReportIn):
    d = record_report(request.auth, out_id=payload.out_id, status=payload.status, error=payload.error)
    return {"delivery": d.pk, "status": d.status}


@router.get("/inbox", response=list[InboxItem], summary="The caller's messages (as a linked responsible person)")
def inbox_list(request):
    return [{"delivery": d.pk, "dispatch": d.dispatch_id, "title": d.dispatch.title, "text": d.dispatch.text,
             "note": d.note, "level": d.dispatch.level, "channel": d.channel, "status": d.status,
             "confirm_required": d.confirm_required, "confirm_due_at": d.confirm_due_at,
             "confirmed_at": d.confirmed_at, "created_at": d.created_at} for d in inbox(request.auth)]


@router.get("/board", response=BoardOut, summary="Call-and-respond board: who has not confirmed, by town and village")
def board_view(request, hours: int = Query(48, ge=1, le=720)):
    check(request.auth, "comms.board.view")
    return board(request.auth, hours=hours)
