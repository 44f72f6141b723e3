"""The command map's data: layer list, compact map features, the statistics panel and cross-kind search.

Mounted at /api/v1/map/ (apps may mount overlay data there too, e.g. sensing's /map/sensors). Every read goes through `visible()` so a town's staff see only their town, while the
district and leaders see everything. Authentication is inherited from the API (session or bearer token).
"""

from __future__ import annotations

from django.http import Http404
from ninja import Query, Router, Schema
from pydantic import Field

from tianmu.core.registry.kinds import kinds
from tianmu.core.registry.queries import RecordFilter, apply_filter, map_features, statistics, visible

__all__ = ["router", "map_kinds", "search_records", "kind_statistics"]

router = Router(tags=["map · 一张图"])

SEARCH_LIMIT = 20
MAX_QUERY_LENGTH = 64
TOWN_CODE_LENGTH = 9


class LayerOut(Schema):
    slug: str
    name: str
    color: str
    cluster: bool
    count: int


class LayersOut(Schema):
    layers: list[LayerOut]


class SearchHit(Schema):
    kind: str
    kind_name: str
    id: int
    name: str
    code: str
    lon: float
    lat: float
    region_name: str


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
             "count": visible(actor, k).count()}
            for k in map_kinds()
        ]
    }


class LayerFilters(Schema):
    """The filters every layer takes, documented; read, with the kind's own, by RecordFilter.from_params."""

    q: str | None = Field(None, description="Search (code, name, address, …)")
    bbox: str | None = Field(None, description="min_lon,min_lat,max_lon,max_lat (WGS84 degrees)")
    region: str | None = Field(None, description="Region code; includes its sub-regions")


@router.get("/layers/{slug}", summary="One layer's features as compact rows [id, lon, lat, name, type label]",
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
    """Records of every map kind matching `q` (code, name, address, …), best matches first."""
    q = (q or "").strip()[:MAX_QUERY_LENGTH]
    if not q:
        return []
    hits = []
    for order, kind in enumerate(map_kinds()):
        qs = apply_filter(visible(actor, kind), kind, RecordFilter(q=q)).order_by("name", "pk")
        rows = qs.values_list("pk", "code", "name", "lon", "lat", "region__name")[:limit]
        for pk, code, name, lon, lat, region_name in rows:
            hits.append((_rank(q, code, name), len(name or ""), order, {
                "kind": kind.slug, "kind_name": str(kind.verbose_name_plural()), "id": pk, "name": name,
                "code": code, "lon": round(lon, 6), "lat": round(lat, 6), "region_name": region_name or "",
            }))
    hits.sort(key=lambda h: h[:3])
    return [h[3] for h in hits[:limit]]


@router.get("/search", response=list[SearchHit],
            summary="Search every map layer by code, name or address (up to 20 matches, best first)")
def search(request, q: str = ""):
    return search_records(request.auth, q)
