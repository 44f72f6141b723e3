"""One Ninja router per record kind, generated from its declaration. No logic: schema in, service or query
call, schema out."""


import time
from typing import Any

from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.orm import create_schema
from pydantic import create_model

from ..models import Region
from .kinds import kinds
from .queries import RecordFilter, apply_filter, statistics, visible
from .services import create_record, delete_record, record_snapshot, update_record

__all__ = ["record_routers", "serialize"]

MAX_PAGE_SIZE = 1000


class ImportOut(Schema):
    ok: bool
    dry_run: bool
    rows: int
    created: int
    updated: int
    errors: list[dict]


class HistoryOut(Schema):
    history_id: int
    when: str
    who: str | None
    action: str
    reason: str | None
    changes: dict[str, list[Any]]


def serialize(kind, obj, town_names: dict[str, str] | None = None) -> dict:
    """A record as the API shows it. With `town_names` (code → name) and a row from `light_rows`, no related
    region objects are loaded."""
    data = record_snapshot(kind, obj)
    data["id"] = obj.pk
    if town_names is not None:
        code = obj.region_code_
        data["region"], data["region_name"] = code, obj.region_name_
        data["town"] = code[:9] if len(code) >= 9 else None
        data["town_name"] = town_names.get(code[:9]) if len(code) >= 9 else None
    else:
        data["region_name"] = obj.region.name
        town = obj.region.town
        data["town"] = town.code if town else None
        data["town_name"] = town.name if town else None
    data["updated_at"] = obj.updated_at.isoformat() if obj.updated_at else None
    return data


def light_rows(qs, kind):
    """Records with their region's code and name as plain columns instead of joined objects (several times
    cheaper to build for a page of 50)."""
    qs = qs.select_related(None)
    if kind.link_fields():
        qs = qs.select_related(*kind.link_fields())
    return qs.annotate(region_code_=F("region__code"), region_name_=F("region__name"))


_TOWNS: dict = {"at": 0.0, "names": {}}
TOWN_NAMES_SECONDS = 60
COMPACT = {"ensure_ascii": False, "separators": (",", ":")}


@receiver([post_save, post_delete], sender=Region)
def _forget_town_names(**kwargs):
    _TOWNS["names"] = {}


def town_names() -> dict[str, str]:
    """Town code → name, re-read at most once a minute (towns are renamed by decree, not by the hour)."""
    now = time.monotonic()
    if now - _TOWNS["at"] > TOWN_NAMES_SECONDS or not _TOWNS["names"]:
        _TOWNS["names"] = dict(Region.objects.filter(level="town").values_list("code", "name"))
        _TOWNS["at"] = now
    return _TOWNS["names"]


def _schemas(kind):
    model = kind.model
    links = kind.link_fields()
    names = [n for n in kind.editable_fields() if n != "region" and n not in links]
    link_fields = {n: (str | None, None) for n in links}  # linked records by their code
    base_out = create_schema(model, name=f"{model.__name__}Out", fields=["id", *names])
    out = create_model(
        f"{model.__name__}Record", __base__=base_out,
        region=(str, ...), region_name=(str, ...), town=(str | None, None), town_name=(str | None, None),
        updated_at=(str | None, None), **link_fields,
    )
    base_in = create_schema(model, name=f"{model.__name__}In", fields=names, optional_fields="__all__")
    payload = create_model(f"{model.__name__}Input", __base__=base_in, region=(str | None, None), **link_fields)
    page = create_model(f"{model.__name__}Page", count=(int, ...), page=(int, ...), page_size=(int, ...),
                        results=(list[out], ...))
    return out, payload, page


def _filter_params(kind, request) -> RecordFilter:
    return RecordFilter.from_params(kind, request.GET)


def record_router(kind) -> Router:
    router = Router(tags=[f"{kind.slug} · {kind.verbose_name_plural()}"])
    Out, In, Page = _schemas(kind)
    filter_doc = ", ".join(kind.filter_fields) or "none"

    @router.get("/", response=Page, summary=f"List {kind.slug}",
                description=("Filters: region (code, includes sub-regions), q (search), bbox=min_lon,min_lat,max_lon,"
                             f"max_lat, lon+lat+radius (metres), and by field: {filter_doc}. page, page_size (≤1000)."))
    def list_records(request, page: int = 1, page_size: int = 100):
        qs = apply_filter(visible(request.auth, kind), kind, _filter_params(kind, request)).order_by("code")
        page_size = max(1, min(MAX_PAGE_SIZE, page_size))
        page = max(1, page)
        total = qs.count()
        rows = light_rows(qs, kind)[(page - 1) * page_size: page * page_size]
        towns = town_names()
        # Already JSON-ready: returned as is, skipping a second validation against the documented schema.
        return JsonResponse({"count": total, "page": page, "page_size": page_size,
                             "results": [serialize(kind, o, towns) for o in rows]}, json_dumps_params=COMPACT)

    @router.get("/stats", summary=f"Statistics of {kind.slug} by type and by town (same filters as the list)")
    def stats(request):
        return statistics(apply_filter(visible(request.auth, kind), kind, _filter_params(kind, request)), kind)

    @router.get("/geojson", summary=f"{kind.slug} as a GeoJSON FeatureCollection (same filters as the list)")
    def geojson(request):
        from .io import export_geojson

        return export_geojson(apply_filter(visible(request.auth, kind), kind, _filter_params(kind, request)), kind)

    @router.get("/{int:record_id}", response=Out, summary=f"One of {kind.slug}")
    def detail(request, record_id: int):
        obj = get_object_or_404(light_rows(visible(request.auth, kind), kind), pk=record_id)
        return JsonResponse(serialize(kind, obj, town_names()), json_dumps_params=COMPACT)

    @router.get("/{int:record_id}/history", response=list[HistoryOut], summary="Change history: who, when, what")
    def history(request, record_id: int):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        return change_history(obj)

    @router.post("/", response={201: Out}, summary=f"Create one of {kind.slug}")
    def create(request, payload: In):
        obj = create_record(request.auth, kind, payload.dict(exclude_unset=True))
        return Status(201, serialize(kind, obj))

    @router.patch("/{int:record_id}", response=Out, summary=f"Change fields of one of {kind.slug}")
    def patch(request, record_id: int, payload: In):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        return serialize(kind, update_record(request.auth, kind, obj, payload.dict(exclude_unset=True)))

    @router.delete("/{int:record_id}", response={204: None}, summary=f"Delete one of {kind.slug}")
    def delete(request, record_id: int):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        delete_record(request.auth, kind, obj)
        return Status(204, None)

    @router.post("/import", response=ImportOut,
                 summary=f"Import {kind.slug} from Excel (.xlsx); dry_run=true only checks and lists every error")
    def import_file(request, file: File[UploadedFile], dry_run: Form[bool] = True,
                    update_existing: Form[bool] = False):
        from .io import import_xlsx

        return import_xlsx(request.auth, kind, file, dry_run=dry_run, update_existing=update_existing).as_dict()

    return router


def change_history(obj) -> list[dict]:
    """History rows newest first, each with the fields that changed from the previous version."""
    from django.utils import timezone

    records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[:200])
    out = []
    for i, rec in enumerate(records):
        prev = records[i + 1] if i + 1 < len(records) else None
        changes = {}
        if prev is not None:
            delta = rec.diff_against(prev)
            changes = {c.field: [_plain(c.old), _plain(c.new)] for c in delta.changes}
        out.append({
            "history_id": rec.history_id,
            "when": timezone.localtime(rec.history_date).isoformat(),
            "who": str(rec.history_user) if rec.history_user else None,
            "action": {"+": "created", "~": "changed", "-": "deleted"}.get(rec.history_type, rec.history_type),
            "reason": rec.history_change_reason,
            "changes": changes,
        })
    return out


def _plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def record_routers() -> list[tuple[str, Router]]:
    return [(f"/{kind.slug}", record_router(kind)) for kind in kinds()]
