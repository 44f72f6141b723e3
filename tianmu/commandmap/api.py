"""The command map's data: layer list, compact map features, the statistics panel and cross-kind search.

Mounted at /api/v1/map/ (apps may mount overlay data there too, e.g. sensing's /map/sensors). Every read goes through `visible()` so a town's staff see only their town, while the
district and leaders see everything. Authentication is inherited from the API (session or bearer token).
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema
from pydantic import Field

from tianmu.core.errors import ServiceError, formatted
from tianmu.core.registry.kinds import kinds
from tianmu.core.registry.queries import (
    MAX_RADIUS_M,
    RecordFilter,
    apply_filter,
    by_distance,
    choice_label,
    map_features,
    statistics,
    visible,
)

from .places import search_places

__all__ = ["router", "map_kinds", "search_records", "search_map", "kind_statistics", "nearby"]

router = Router(tags=["map · 一张图"])

SEARCH_LIMIT = 20
PLACE_LIMIT = 5
MAX_QUERY_LENGTH = 64
TOWN_CODE_LENGTH = 9


class LayerState(Schema):
    label: str
    color: str


class LayerOut(Schema):
    slug: str
    name: str
    color: str
    cluster: bool
    count: int
    fields: list[str] = []  # names of the values after the type label in the layer's rows
    field_labels: dict[str, str] = {}
    states: dict[str, LayerState] = {}  # the first field's values: marker colour and label (a shelter's state)


class LayersOut(Schema):
    layers: list[LayerOut]


class SearchHit(Schema):
    kind: str  # a layer's slug, "place:town" / "place:village", or "point" (a typed coordinate)
    kind_name: str
    id: int
    name: str
    code: str
    lon: float
    lat: float
    region_name: str
    bbox: list[float] | None = None  # a place's extent: min_lon, min_lat, max_lon, max_lat


def map_kinds() -> list:
    """The record kinds drawn on the map, in registration order: placed kinds not declared off the map."""
    return [k for k in kinds() if k.placed() and k.on_map]


def _map_kind(slug: str):
    for kind in map_kinds():
        if kind.slug == slug:
            return kind
    raise Http404(slug)


@router.get("/layers", response=LayersOut, summary="Map layers: one per record kind, with the caller's count")
def layers(request):
    actor = request.auth
    return {
        "layers": [
            {"slug": k.slug, "name": str(k.verbose_name_plural()), "color": k.color, "cluster": bool(k.cluster),
             "count": visible(actor, k).count(), "fields": list(k.map_fields),
             "field_labels": {f: str(k.label_of(f)) for f in k.map_fields},
             "states": {str(v): {"label": choice_label(k, k.map_fields[0], v), "color": c}
                        for v, c in k.state_colors.items()} if k.map_fields else {}}
            for k in map_kinds()
        ]
    }


class LayerFilters(Schema):
    """The filters every layer takes, documented; read, with the kind's own, by RecordFilter.from_params."""

    q: str | None = Field(None, description="Search (code, name, address, …)")
    bbox: str | None = Field(None, description="min_lon,min_lat,max_lon,max_lat (WGS84 degrees)")
    region: str | None = Field(None, description="Region code; includes its sub-regions")


@router.get("/layers/{slug}", summary="One layer's features as compact rows [id, lon, lat, name, type label, "
                                       "*the layer's fields]",
            description="Optional filters: q (search), bbox=min_lon,min_lat,max_lon,max_lat, region (code), and the "
                        "kind's own filter fields.")
def layer_features(request, slug: str, filters: Query[LayerFilters]):
    kind = _map_kind(slug)
    qs = apply_filter(visible(request.auth, kind), kind, RecordFilter.from_params(kind, request.GET))
    return {"slug": kind.slug, "features": map_features(qs, kind)}


def kind_statistics(actor, kind) -> dict:
    data = statistics(visible(actor, kind), kind)
    # Labels of the summed fields (e.g. capacity → 容纳人数) so the panel needs no field dictionary of its own.
    data["sum_labels"] = {f: str(kind.field(f).verbose_name) for f in kind.sum_fields}
    data["color"] = kind.color
    return data


@router.get("/stats", summary="Statistics panel: per kind, counts by type and by town with summed fields")
def stats(request):
    return {"kinds": [kind_statistics(request.auth, k) for k in kinds()]}


def _rank(q: str, code: str, name: str) -> int:
    ql = q.lower()
    code_l, name_l = (code or "").lower(), (name or "").lower()
    if ql in (code_l, name_l):
        return 0
    if name_l.startswith(ql) or code_l.startswith(ql):
        return 1
    if ql in name_l:
        return 2
    return 3


def search_records(actor, q: str, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Records of every map kind matching `q` (code, name, address, …), best matches first: an exact code or
    name, then a code or name starting with the text, then one containing it, then other fields (address, …);
    ties by the shorter name. Exact and prefix matches are read first, so many weaker matches never push them
    out of the answer."""
    q = (q or "").strip()[:MAX_QUERY_LENGTH]
    if not q:
        return []
    hits = []
    for order, kind in enumerate(map_kinds()):
        base = visible(actor, kind)
        seen: set[int] = set()
        tiers = (base.filter(Q(code__iexact=q) | Q(name__iexact=q)),
                 base.filter(Q(code__istartswith=q) | Q(name__istartswith=q)),
                 base.filter(name__icontains=q),
                 apply_filter(base, kind, RecordFilter(q=q)))
        for qs in tiers:
            if len(seen) >= limit:
                break
            rows = qs.exclude(pk__in=seen).order_by("name", "pk").values_list(
                "pk", "code", "name", "lon", "lat", "region__name")[:limit - len(seen)]
            for pk, code, name, lon, lat, region_name in rows:
                seen.add(pk)
                hits.append((_rank(q, code, name), len(name or ""), order, {
                    "kind": kind.slug, "kind_name": str(kind.verbose_name_plural()), "id": pk, "name": name,
                    "code": code, "lon": round(lon, 6), "lat": round(lat, 6), "region_name": region_name or "",
                }))
    hits.sort(key=lambda h: h[:3])
    return [h[3] for h in hits[:limit]]


def search_map(actor, q: str, limit: int = SEARCH_LIMIT) -> list[dict]:
    """The map's search: a typed coordinate, then towns and villages (also named inside an address), then
    records, each group best first."""
    q = (q or "").strip()[:MAX_QUERY_LENGTH]
    if not q:
        return []
    places = search_places(actor, q, limit=PLACE_LIMIT)
    if places and places[0]["kind"] == "point":
        places[0].pop("rank", None)
        return places
    records = search_records(actor, q, limit=max(limit - len(places), 0))
    # One ranking: an exact name or code first (a place before a record), then a name or code starting with the
    # text (places first), then the rest; a place found only inside an address ranks as a partial match.
    ranked = [((p.pop("rank"), 0, i), p) for i, p in enumerate(places)]
    ranked += [((_rank(q, r["code"], r["name"]), 1, i), r) for i, r in enumerate(records)]
    ranked.sort(key=lambda pair: pair[0])
    return [hit for _key, hit in ranked]


@router.get("/search", response=list[SearchHit],
            summary="Search places and every map layer: a coordinate (\"30.21,119.10\", \"119.10 30.21\"), towns and "
                    "villages (also inside an address), then records by code, name or address; best first")
def search(request, q: str = ""):
    return search_map(request.auth, q)


# ---- what is near a point (周边资源) ----------------------------------------------------------------------------

NEARBY_RADIUS_M = 5000
NEARBY_LIMIT = 10


class NearbyQuery(Schema):
    lon: float = Field(..., ge=-180, le=180, description="WGS84 longitude of the point")
    lat: float = Field(..., ge=-90, le=90, description="WGS84 latitude of the point")
    radius: float = Field(NEARBY_RADIUS_M, gt=0, le=MAX_RADIUS_M, description="metres (default 5,000)")
    kinds: str | None = Field(None, max_length=200,
                              description="comma-separated kind slugs (default: every layer of the map)")
    limit: int = Field(NEARBY_LIMIT, ge=1, le=50, description="nearest records per kind (default 10, ≤ 50)")


class NearbyItem(Schema):
    id: int
    code: str
    name: str
    lon: float
    lat: float
    distance_m: int
    region_name: str
    type_label: str
    contact: str
    phone: str
    figures: dict[str, float | int | None]  # the kind's summed and computed fields, e.g. headcount, free_places
    state: str | None = None  # the kind's map state (a shelter's open / full / closed)
    state_label: str | None = None


class NearbyKind(Schema):
    slug: str
    name: str
    color: str
    count: int  # within the radius (the list shows the nearest `limit`)
    figure_labels: dict[str, str] = {}
    items: list[NearbyItem]


class NearbyOut(Schema):
    lon: float
    lat: float
    radius: float
    kinds: list[NearbyKind]


def nearby(actor, lon: float, lat: float, radius: float, slugs: list[str] | None = None,
           limit: int = NEARBY_LIMIT) -> list[dict]:
    """Per map kind, the records the actor may see within `radius` metres of a point, nearest first, with the
    distance and what a duty officer calls about (contact, phone, the kind's figures such as headcount)."""
    out = []
    by_slug = {kind.slug: kind for kind in map_kinds()}
    chosen = list(by_slug.values()) if slugs is None else [by_slug[s] for s in dict.fromkeys(slugs) if s in by_slug]
    for kind in chosen:  # in the order asked for
        qs = visible(actor, kind)
        near = by_distance(qs, lon, lat, radius)
        shown = near[:limit]
        state = kind.map_fields[0] if kind.state_colors else None
        fields = ["pk", "code", "name", "lon", "lat", "region__name", "contact", "phone",
                  *([kind.type_field] if kind.type_field else []), *kind.sum_fields, *kind.computed,
                  *([state] if state else [])]
        rows = {row[0]: row for row in qs.filter(pk__in=[pk for _d, pk in shown]).values_list(*fields)}
        items = []
        for dist, pk in shown:
            row = rows.get(pk)
            if row is None:
                continue
            data = dict(zip(fields, row, strict=True))
            items.append({"id": pk, "code": data["code"], "name": data["name"], "lon": round(data["lon"], 6),
                          "lat": round(data["lat"], 6), "distance_m": round(dist),
                          "region_name": data["region__name"] or "", "contact": data["contact"] or "",
                          "phone": data["phone"] or "",
                          "type_label": choice_label(kind, kind.type_field, data[kind.type_field])
                          if kind.type_field else "",
                          "figures": {f: data[f] for f in (*kind.sum_fields, *kind.computed)},
                          "state": data[state] if state else None,
                          "state_label": choice_label(kind, state, data[state]) if state else None})
        out.append({"slug": kind.slug, "name": str(kind.verbose_name_plural()), "color": kind.color,
                    "count": len(near), "items": items,
                    "figure_labels": {f: str(kind.label_of(f)) for f in (*kind.sum_fields, *kind.computed)}})
    return out


@router.get("/nearby", response=NearbyOut,
            summary="What is near a point (周边资源): per map layer, the nearest records within a radius, with the "
                    "distance (great-circle metres), contact and phone, nearest first")
def nearby_view(request, query: Query[NearbyQuery]):
    slugs = None
    if query.kinds:
        slugs = [s.strip() for s in query.kinds.split(",") if s.strip()]
        known = {k.slug for k in map_kinds()}
        unknown = [s for s in slugs if s not in known]
        if unknown:
            raise ServiceError({"kinds": [formatted(_("没有这些图层:%(names)s"), {"names": ", ".join(unknown)})]})
    return {"lon": query.lon, "lat": query.lat, "radius": query.radius,
            "kinds": nearby(request.auth, query.lon, query.lat, query.radius, slugs, query.limit)}
