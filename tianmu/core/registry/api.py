"""One Ninja router per record kind, generated from its declaration. No logic: schema in, service or query
call, schema out."""


import time
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import models
from django.db.models import Subquery
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.orm import create_schema
from ninja.orm.fields import title_if_lower
from pydantic import Field, create_model

from ..api import PageNumber, page_size_param
from ..models import Region
from .forms import text_limit
from .kinds import kinds, mask
from .queries import (
    MAX_RADIUS_M,
    RecordFilter,
    apply_filter,
    by_distance,
    is_radius_query,
    statistics,
    visible,
)
from .services import create_record, delete_record, record_snapshot, update_record

__all__ = ["record_routers", "record_tag", "operation_id", "serialize", "record_rows"]

MAX_PAGE_SIZE = settings.TIANMU_MAX_PAGE_SIZE
PageSize = page_size_param(MAX_PAGE_SIZE)


class ImportOut(Schema):
    ok: bool
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int = Field(0, description="rows of existing records already as the sheet says (nothing written)")
    errors: list[dict] = Field(description="the first TIANMU_IMPORT_MAX_ERRORS problems (lowest rows first), "
                                           "each with the row's record code and name")
    error_count: int = Field(description="every problem found; more than len(errors) when the list is cut")


class HistoryOut(Schema):
    history_id: int
    when: str
    who: str | None
    action: str
    reason: str | None
    changes: dict[str, list[Any]]


def serialize(kind, obj) -> dict:
    """A record (a model instance) as the API shows it, after a create or a change. Lists and details read
    their rows with `record_rows`, which gives the same dicts without model instances."""
    data = record_snapshot(kind, obj)
    data["id"] = obj.pk
    data["region_name"] = obj.region.name
    if kind.lifecycle is not None:
        data[kind.lifecycle.field] = getattr(obj, kind.lifecycle.field)
    for name in kind.state_fields:
        data[name] = _json_ready(getattr(obj, name))
    if kind.computed:
        values = kind.model.objects.filter(pk=obj.pk).annotate(**kind.annotations()).values(*kind.computed).first()
        data.update(values or dict.fromkeys(kind.computed))
    town = obj.region.town
    data["town"] = town.code if town else None
    data["town_name"] = town.name if town else None
    data["updated_at"] = obj.updated_at.isoformat() if obj.updated_at else None
    return data


def _json_ready(value):
    """A field value as record_snapshot() makes it JSON-ready (dates as ISO text, decimals as text)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
        return str(value)
    return value


# Field classes whose values come from the database as str, int, float, bool or None: nothing to convert.
_NATIVE_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.FloatField, models.BooleanField)


@dataclass(frozen=True)
class RowPlan:
    """How to read a kind's API rows with values_list(): the columns (the last one is updated_at), the JSON
    keys of all but the last, and the keys whose values need making JSON-ready."""

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    convert: tuple[str, ...]


_PLANS: dict[type, RowPlan] = {}


def row_plan(kind) -> RowPlan:
    """The kind's RowPlan, worked out once from its declaration (editable fields in form order, as
    record_snapshot() lists them, then id, region_name and updated_at)."""
    plan = _PLANS.get(kind)
    if plan is None:
        links = set(kind.link_fields())
        columns, keys, convert = [], [], []
        for name in kind.editable_fields():
            keys.append(name)
            if name == "region":
                columns.append("region__code")
            elif name in links:
                columns.append(f"{name}__code")  # linked records by their code, None when unset
            else:
                columns.append(name)
                f = kind.field(name)
                if f.is_relation or not isinstance(f, _NATIVE_FIELDS) or hasattr(f, "from_db_value"):
                    convert.append(name)
        if "region" not in keys:
            keys.append("region")
            columns.append("region__code")
        keys += ["id", "region_name"]
        columns += ["pk", "region__name"]
        if kind.lifecycle is not None:  # the state, read-only: it changes only by the lifecycle's transitions
            keys.append(kind.lifecycle.field)
            columns.append(kind.lifecycle.field)
        for name in kind.state_fields:  # read-only: changed by the kind's own services
            keys.append(name)
            columns.append(name)
            if not isinstance(kind.field(name), _NATIVE_FIELDS):
                convert.append(name)
        for name in kind.computed:  # annotated by visible()
            keys.append(name)
            columns.append(name)
        columns.append("updated_at")
        plan = _PLANS[kind] = RowPlan(tuple(columns), tuple(keys), tuple(convert))
    return plan


class _CountOf(Subquery):
    """`(SELECT COUNT(*) FROM (subquery))`: a queryset's count as a column of another query (PostgreSQL and
    SQLite evaluate it once, as an uncorrelated sub-plan)."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = models.IntegerField()


def record_rows(qs, kind, towns: dict[str, str], start: int = 0, stop: int | None = None,
                count_of=None) -> tuple[list[dict], int | None]:
    """Records as the API shows them (the same dicts, keys in the same order, as `serialize`), read as
    values_list() rows of only the columns shown: no model instances, no related objects, one query.
    `qs` is a scoped (and filtered, ordered) queryset; start/stop slice it. With `count_of` (a queryset),
    its count comes back in the same query (None when the slice is empty)."""
    plan = row_plan(kind)
    keys, convert = plan.keys, plan.convert
    columns = plan.columns
    if count_of is not None:
        columns = (*columns, _CountOf(count_of.order_by().values("pk")))
    out = []
    total = None
    for row in qs.values_list(*columns)[start:stop]:
        data = dict(zip(keys, row, strict=False))  # stops before updated_at
        for key in convert:
            data[key] = _json_ready(data[key])
        code = data["region"]
        if len(code) >= 9:
            data["town"] = town = code[:9]
            data["town_name"] = towns.get(town)
        else:
            data["town"] = data["town_name"] = None
        if count_of is not None:
            updated, total = row[-2], row[-1]
        else:
            updated = row[-1]
        data["updated_at"] = updated.isoformat() if updated else None
        out.append(data)
    return out, total


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
    base_out = create_schema(model, name=f"{model.__name__}Out", fields=["id", *names, *kind.state_fields])
    out = create_model(
        f"{model.__name__}Record", __base__=base_out,
        region=(str, ...), region_name=(str, ...), town=(str | None, None), town_name=(str | None, None),
        updated_at=(str | None, None), **link_fields,
        distance_m=(int | None, None),  # lists queried by lon+lat+radius: metres from that point
        **({kind.lifecycle.field: (str, ...)} if kind.lifecycle is not None else {}),
        **{name: (int | float | None, None) for name in kind.computed},
    )
    base_in = create_schema(model, name=f"{model.__name__}In", fields=names, optional_fields="__all__")
    # Long-text fields: the same limit as the form (short fields have their model's max_length already).
    texts = {n: (str | None, Field(None, max_length=text_limit(), title=title_if_lower(kind.field(n).verbose_name),
                                   description=kind.field(n).help_text or None))
             for n in names if isinstance(kind.field(n), models.TextField)}
    payload = create_model(f"{model.__name__}Input", __base__=base_in, region=(str | None, None), **link_fields,
                           **texts)
    page = create_model(f"{model.__name__}Page", count=(int, ...), page=(int, ...), page_size=(int, ...),
                        results=(list[out], ...))
    return out, payload, page


def _filter_params(kind, request) -> RecordFilter:
    return RecordFilter.from_params(kind, request.GET)


def _filter_schema(kind):
    """The kind's filters as documented query parameters (so that clients and the API fuzzer know them). The
    schema checks their types (a number, one of a choice field's values, a boolean); RecordFilter.from_params
    and apply_filter, which the pages share, check the rest (finite, in range, complete)."""
    text = (str | None, None)
    fields: dict = {
        "region": (str | None, Field(None, description="Region code; includes its sub-regions")),
        "q": (str | None, Field(None, description="Search in " + ", ".join(kind.search_fields))),
    }
    if kind.placed():
        fields.update(
            bbox=(str | None, Field(None, description="min_lon,min_lat,max_lon,max_lat (WGS84 degrees)")),
            lon=(float | None, Field(None, description="Centre of a radius query: longitude, -180 to 180")),
            lat=(float | None, Field(None, description="Centre of a radius query: latitude, -90 to 90")),
            radius=(float | None, Field(None, description=f"Radius in metres, above 0 up to {MAX_RADIUS_M}")),
        )
    for name, (label, _q) in kind.flag_filters.items():
        fields[name] = (bool | None, Field(None, description=str(label)))
    for name in kind.filter_fields:
        f = kind.field(name)
        if f.get_internal_type() == "BooleanField":
            fields[name] = (bool | None, None)
        elif f.choices:
            fields[name] = (Literal[tuple(str(v) for v, _label in f.flatchoices)] | None, None)
        else:
            fields[name] = text
    return create_model(f"{kind.model.__name__}Filters", **fields)


def record_tag(kind) -> str:
    """The kind's OpenAPI tag: its app group first, so Swagger lists a group's kinds together
    (e.g. "registry · shelters · 避灾安置场所", "sensing · stations · 监测站")."""
    return f"{kind.nav_group} · {kind.slug} · {kind.verbose_name_plural()}"


def operation_id(kind, verb: str) -> str:
    """A record kind's operationId: the slug and a verb, e.g. shelters_list, stations_import."""
    return f"{kind.slug.replace('-', '_')}_{verb}"


def record_router(kind) -> Router:
    router = Router(tags=[record_tag(kind)])
    Out, In, Page = _schemas(kind)
    filter_doc = ", ".join(kind.filter_fields) or "none"

    def op(verb: str) -> str:
        return operation_id(kind, verb)

    spatial_doc = "bbox=min_lon,min_lat,max_lon,max_lat, lon+lat+radius (metres), " if kind.placed() else ""

    Filters = _filter_schema(kind)  # documents the query parameters _filter_params reads

    @router.get("/", response=Page, operation_id=op("list"), summary=f"List {kind.slug}",
                description=(f"Filters: region (code, includes sub-regions), q (search), {spatial_doc}"
                             f"and by field: {filter_doc}. page, page_size (≤{MAX_PAGE_SIZE}). With lon+lat+radius "
                             "the results are nearest first, each with distance_m."))
    def list_records(request, filters: Query[Filters], page: PageNumber = 1, page_size: PageSize = 100):
        flt = _filter_params(kind, request)
        qs = apply_filter(visible(request.auth, kind), kind, flt)
        start = (page - 1) * page_size
        if is_radius_query(flt):  # nearest first, each row with its distance in metres
            near = by_distance(qs, flt.lon, flt.lat, flt.radius)
            shown = near[start:start + page_size]
            rows, _t = record_rows(qs.filter(pk__in=[pk for _d, pk in shown]), kind, town_names())
            by_pk = {row["id"]: row for row in rows}
            results = [{**by_pk[pk], "distance_m": round(dist)} for dist, pk in shown if pk in by_pk]
            _mask_rows(kind, request.auth, results)
            return JsonResponse({"count": len(near), "page": page, "page_size": page_size, "results": results},
                                json_dumps_params=COMPACT)
        results, total = record_rows(qs.order_by("code"), kind, town_names(), start, start + page_size,
                                     count_of=qs)
        _mask_rows(kind, request.auth, results)
        if total is None:
            total = start if start == 0 else qs.count()
        # Already JSON-ready: returned as is, skipping a second validation against the documented schema.
        return JsonResponse({"count": total, "page": page, "page_size": page_size, "results": results},
                            json_dumps_params=COMPACT)

    @router.get("/stats", operation_id=op("stats"),
                summary=f"Statistics of {kind.slug} by type and by town (same filters as the list)")
    def stats(request, filters: Query[Filters]):
        return statistics(apply_filter(visible(request.auth, kind), kind, _filter_params(kind, request)), kind)

    if kind.placed():
        @router.get("/geojson", operation_id=op("geojson"),
                    summary=f"{kind.slug} as a GeoJSON FeatureCollection (same filters as the list)")
        def geojson(request, filters: Query[Filters]):
            from .io import export_geojson

            return export_geojson(apply_filter(visible(request.auth, kind), kind, _filter_params(kind, request)),
                                  kind)

    @router.get("/{int:record_id}", response=Out, operation_id=op("get"), summary=f"One of {kind.slug}")
    def detail(request, record_id: int):
        rows, _total = record_rows(visible(request.auth, kind).filter(pk=record_id), kind, town_names())
        if not rows:
            raise Http404
        _mask_rows(kind, request.auth, rows)
        return JsonResponse(rows[0], json_dumps_params=COMPACT)

    @router.get("/{int:record_id}/history", response=list[HistoryOut], operation_id=op("history"),
                summary="Change history: who, when, what")
    def history(request, record_id: int):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        hidden = kind.masked_fields(request.auth)
        history = change_history(obj)
        for row in history:
            for name in hidden & set(row["changes"]):
                row["changes"][name] = [mask(v) for v in row["changes"][name]]
        return history

    @router.post("/", response={201: Out}, operation_id=op("create"), summary=f"Create one of {kind.slug}")
    def create(request, payload: In):
        obj = create_record(request.auth, kind, payload.dict(exclude_unset=True))
        return Status(201, serialize(kind, obj))

    @router.patch("/{int:record_id}", response=Out, operation_id=op("update"),
                  summary=f"Change fields of one of {kind.slug}")
    def patch(request, record_id: int, payload: In):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        return serialize(kind, update_record(request.auth, kind, obj, payload.dict(exclude_unset=True)))

    @router.delete("/{int:record_id}", response={204: None}, operation_id=op("delete"),
                   summary=f"Delete one of {kind.slug}")
    def delete(request, record_id: int):
        obj = get_object_or_404(visible(request.auth, kind), pk=record_id)
        delete_record(request.auth, kind, obj)
        return Status(204, None)

    @router.post("/import", response=ImportOut, operation_id=op("import"),
                 summary=f"Import {kind.slug} from Excel (.xlsx); dry_run=true only checks and lists every error")
    def import_file(request, file: File[UploadedFile], dry_run: Form[bool] = True,
                    update_existing: Form[bool] = False):
        from .io import import_xlsx

        return import_xlsx(request.auth, kind, file, dry_run=dry_run, update_existing=update_existing).as_dict()

    if kind.lifecycle is not None:
        from ..workflow import add_routes

        add_routes(router, kind.lifecycle, path="/{int:record_id}", param="record_id", response=Out,
                   serialize=lambda obj: serialize(kind, obj))
    return router


def _mask_rows(kind, actor, rows: list[dict]) -> None:
    """Hide the middle of personal fields the actor may not see (RecordKind.personal_fields)."""
    hidden = kind.masked_fields(actor)
    for row in rows if hidden else ():
        for name in hidden:
            if row.get(name):
                row[name] = mask(row[name])


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
