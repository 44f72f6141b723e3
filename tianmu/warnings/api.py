"""The warnings API at /api/v1/warnings/: list and detail (timeline, CAP messages), drafting and editing, new
versions, the lifecycle's transitions, imports of other authorities' CAP alerts, and the map's GeoJSON. No logic:
schema in, service or query call, schema out. The public CAP files and feeds are pages (views.py), not API."""

from __future__ import annotations

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from tianmu.core.api import PageNumber, page_size_param
from tianmu.core.errors import ServiceError, formatted

from . import services
from .choices import HazardType, Level, WarningState
from .conf import conf
from .lifecycles import WARNING
from .models import HazardWarning
from .queries import WarningFilter, map_features, timeline, visible, warnings

__all__ = ["router"]

router = Router(tags=["warnings · 预警发布"])
PageSize = page_size_param(200)
TRANSITIONS = ("submit", "reject", "approve", "issue", "cancel")


class AreaOut(Schema):
    code: str
    name: str


class MessageOut(Schema):
    msg_type: str
    identifier: str
    sender: str
    sent: str
    url: str


class StepOut(Schema):
    type: str
    actor: str | None
    at: str
    note: str


class WarningOut(Schema):
    id: int
    origin: str
    hazard_type: str
    hazard_type_label: str
    level: str
    level_label: str
    state: str
    state_label: str
    region: str
    areas: list[AreaOut]
    polygon: dict | None
    onset: str
    expires: str
    headline: str
    description: str
    instruction_public: str
    instruction_responders: str
    headline_en: str
    description_en: str
    instruction_en: str
    citations: list[dict]
    version: int
    previous: int | None
    external_sender: str
    created_by: str | None
    approved_by: str | None
    issued_by: str | None
    issued_at: str | None
    url: str


class WarningDetailOut(WarningOut):
    messages: list[MessageOut]
    timeline: list[StepOut]
    transitions: list[str]


class WarningPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[WarningOut]


class WarningIn(Schema):
    """A draft's fields. Areas are region codes (towns, villages); the polygon is GeoJSON (lon, lat)."""

    hazard_type: str = Field(max_length=24)
    level: str = Field(max_length=8)
    areas: list[str] = Field(default_factory=list, max_length=400)
    polygon: dict | None = None
    onset: datetime | None = None
    expires: datetime
    headline: str = Field(max_length=200)
    description: str = Field(max_length=4000)
    instruction_public: str = Field("", max_length=4000)
    instruction_responders: str = Field("", max_length=4000)
    headline_en: str = Field("", max_length=200)
    description_en: str = Field("", max_length=4000)
    instruction_en: str = Field("", max_length=4000)


class WarningPatch(Schema):
    hazard_type: str | None = Field(None, max_length=24)
    level: str | None = Field(None, max_length=8)
    areas: list[str] | None = Field(None, max_length=400)
    polygon: dict | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    headline: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=4000)
    instruction_public: str | None = Field(None, max_length=4000)
    instruction_responders: str | None = Field(None, max_length=4000)
    headline_en: str | None = Field(None, max_length=200)
    description_en: str | None = Field(None, max_length=4000)
    instruction_en: str | None = Field(None, max_length=4000)


class NoteIn(Schema):
    note: str = Field("", max_length=2000)


def _local(ts) -> str | None:
    return timezone.localtime(ts).isoformat() if ts else None


def _who(user) -> str | None:
    return user.username if user is not None else None


def serialize(w: HazardWarning) -> dict:
    return {
        "id": w.pk, "origin": w.origin, "hazard_type": w.hazard_type,
        "hazard_type_label": str(HazardType(w.hazard_type).label), "level": w.level,
        "level_label": str(Level(w.level).label), "state": w.state, "state_label": str(WarningState(w.state).label),
        "region": w.region.code, "areas": [{"code": r.code, "name": r.name} for r in w.areas.all()],
        "polygon": w.polygon, "onset": _local(w.onset), "expires": _local(w.expires), "headline": w.headline,
        "description": w.description, "instruction_public": w.instruction_public,
        "instruction_responders": w.instruction_responders, "headline_en": w.headline_en,
        "description_en": w.description_en, "instruction_en": w.instruction_en, "citations": w.citations,
        "version": w.version, "previous": w.previous_id, "external_sender": w.external_sender,
        "created_by": _who(w.created_by), "approved_by": _who(w.approved_by), "issued_by": _who(w.issued_by),
        "issued_at": _local(w.issued_at), "url": w.get_absolute_url(),
    }


def detail(actor, w: HazardWarning) -> dict:
    return {**serialize(w),
            "messages": [{"msg_type": m.msg_type, "identifier": m.identifier, "sender": m.sender,
                          "sent": _local(m.sent), "url": reverse("warnings:cap", args=[m.pk])}
                         for m in w.messages.order_by("sent", "id")],
            "timeline": [{"type": e.type, "actor": _who(e.actor), "at": _local(e.created_at),
                          "note": str(e.payload.get("note", ""))} for e in timeline(w)],
            "transitions": [t.name for t in WARNING.available(actor, w)]}


def _get(request, warning_id: int) -> HazardWarning:
    return get_object_or_404(visible(request.auth).select_related("region"), pk=warning_id)


@router.get("/", response=WarningPage, summary="Warnings the caller may see, those waiting for review first "
                                               "(filters: state or 'active', level, hazard_type, town, origin)")
def list_warnings(request, state: str | None = None, level: str | None = None, hazard_type: str | None = None,
                  town: str | None = None, origin: str | None = None, page: PageNumber = 1,
                  page_size: PageSize = 50):
    qs = warnings(request.auth, WarningFilter(state=state, level=level, hazard_type=hazard_type, town=town,
                                              origin=origin)).prefetch_related("areas")
    rows = list(qs[(page - 1) * page_size: page * page_size])
    return {"count": qs.count(), "page": page, "page_size": page_size, "results": [serialize(w) for w in rows]}


@router.get("/map", summary="Active warnings as GeoJSON (one feature per area), for the command map")
def warning_map(request, hazard_type: str | None = None, level: str | None = None):
    return map_features(request.auth, hazard_type=hazard_type, level=level)


@router.get("/{int:warning_id}", response=WarningDetailOut, summary="One warning with its timeline and CAP messages")
def warning_detail(request, warning_id: int):
    return detail(request.auth, _get(request, warning_id))


@router.post("/", response={201: WarningDetailOut}, summary="Draft a warning (town staff: their own town)")
def create_warning(request, payload: WarningIn):
    w = services.draft_warning(request.auth, payload.model_dump())
    return Status(201, detail(request.auth, w))


@router.patch("/{int:warning_id}", response=WarningDetailOut, summary="Change a draft")
def update_warning(request, warning_id: int, payload: WarningPatch):
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items()}
    w = services.edit_warning(request.auth, _get(request, warning_id), data)
    return detail(request.auth, w)


@router.post("/{int:warning_id}/revise", response={201: WarningDetailOut},
             summary="Start a new version of an issued warning (a draft; issuing it sends a CAP Update)")
def revise_warning(request, warning_id: int, payload: WarningPatch):
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items()}
    w = services.revise_warning(request.auth, _get(request, warning_id), data)
    return Status(201, detail(request.auth, w))


def _transition_route(name: str):
    t = WARNING.transitions[name]

    def view(request, warning_id: int, payload: NoteIn):
        w = WARNING.perform(request.auth, _get(request, warning_id), name, note=payload.note)
        return detail(request.auth, w)

    view.__name__ = f"warning_{name}"
    router.post(f"/{{int:warning_id}}/{name}", response=WarningDetailOut,
                summary=f"{t.label} (warnings.warning.{name})")(view)


for _name in TRANSITIONS:
    _transition_route(_name)


@router.post("/import", response={201: WarningDetailOut},
             summary="Import another authority's CAP 1.2 alert (validated against the OASIS XSD; read-only here)")
def import_warning(request, file: File[UploadedFile]):
    limit = conf("WARNINGS_CAP_MAX_BYTES")
    if file.size is not None and file.size > limit:
        raise ServiceError({"file": [formatted(_("CAP 文件不能超过 %(n)s KB"), {"n": limit // 1024})]})
    try:
        data = file.read(limit + 1)
    except OSError:
        raise ServiceError({"file": [_("文件读取失败")]}) from None
    w = services.import_cap(request.auth, data)
    return Status(201, detail(request.auth, w))



