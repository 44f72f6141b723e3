"""Declaring a kind of record gives it pages, API, import/export, history, scope checks and tests.

    @register
    class ShelterKind(RecordKind):
        model = Shelter
        slug = "shelters"
        type_field = "level"             # counted by type in statistics, shown on the map popup
        filter_fields = ["level", "shelter_type", "standardised"]
        list_columns = ["code", "name", "region", "level", "capacity"]
        sum_fields = ["capacity"]        # summed by town in statistics
        color = "#2e7d32"

A kind's model subclasses `core.models.PlacedModel` (a point: also a map layer, bbox/radius filters, GeoJSON,
a map on the detail page, coordinate checks, region located from the point) or `core.models.RegionalModel`
(no point: region given by code, everything else the same); `RecordKind.placed()` tells which.

See docs/architecture.md, "Adding a registry type", for the checklist.
"""

from __future__ import annotations

from django.db import models

from ..models import PlacedModel, RegionalModel

__all__ = ["RecordKind", "register", "kinds", "get_kind", "kind_for_model", "mask"]

_KINDS: dict[str, type[RecordKind]] = {}

# Fields every record has that are managed by the platform, never typed in.
SYSTEM_FIELDS = ("id", "created_at", "updated_at")


class RecordKind:
    """Declaration of one kind of record (a registry type), placed or regional (see `placed()`)."""

    do_not_call_in_templates = True
    model: type[models.Model]
    slug: str
    type_field: str | None = None
    filter_fields: list[str] = []
    search_fields: list[str] = ["code", "name", "address"]  # a regional kind's default: code and name
    list_columns: list[str] = ["code", "name", "region"]
    sum_fields: list[str] = []
    color: str = "#1565c0"
    cluster: bool = True
    on_map: bool = True  # placed kinds only: a regional kind has no map layer (False once registered)
    map_default: bool = False  # the layer is switched on when the command map opens (the rest: one click away)
    nav_group: str = "registry"
    # Records kept at a region's own level serve the regions below it: a village's users read (never change)
    # the town's and the district's records of the kind — the town's shelter centre, the district brigades
    # (core/scope.py, "up the chain"). Hazards and the like stay False: seen only within the subtree.
    serves_below: bool = False
    # Read-only fields (editable=False) that only the kind's own services change, e.g. a shelter's availability:
    # in API rows and schemas, on the detail page, filterable when listed in filter_fields; never in a form or an
    # import.
    state_fields: list[str] = []
    # Values computed in the database, annotated on every read (`visible()`): {name: (label, () → expression)},
    # e.g. a shelter's free places. In API rows, list columns (when listed), map rows and nearby figures.
    computed: dict = {}
    # Yes/no filters beyond the model's fields: {name: (label, () → Q)} (the Q may use `computed` names).
    flag_filters: dict = {}
    # Extra values on the map's compact rows (state or computed names), the first one's value picking the marker
    # colour from `state_colors` ({value: "#rrggbb"}) when given.
    map_fields: list[str] = []
    state_colors: dict = {}
    plural = None  # the list heading in languages with plurals: pgettext_lazy("plural", "避灾安置场所") → Shelters
    # Valid values of the kind's own fields (beyond code, name, place): the import template's example row,
    # and what the shared test battery creates.
    example: dict = {}
    # Field names in import/export order; default: every editable field.
    io_fields: list[str] | None = None
    # A lifecycle (core/workflow.py) gives the kind its transitions: API routes POST /{slug}/{id}/<transition>,
    # buttons on the detail page, permission rows, events. Its state field should be editable=False.
    lifecycle = None
    # Personal data (a person's mobile number): shown masked (139****0001) in lists, details, the API and exports
    # to actors the permission table does not grant `personal_action` (any region).
    personal_fields: list[str] = []
    personal_action: str = ""
    # Extra buttons on the list page, pages the kind's app adds: [(label, URL name, query string, permission
    # action or "" for everyone)], e.g. the river basins' GeoJSON import and their areal rainfall table.
    list_links: list[tuple] = []

    # ---- derived -----------------------------------------------------------------------------------------
    @classmethod
    def placed(cls) -> bool:
        """Whether the kind's records sit at a point (a PlacedModel): then they have a map layer, bbox and
        radius filters, GeoJSON, a map on the detail page and coordinate checks, and their region may be
        located from the point. Otherwise (a RegionalModel) the region is given by its code."""
        return issubclass(cls.model, PlacedModel)

    @classmethod
    def verbose_name(cls) -> str:
        return cls.model._meta.verbose_name

    @classmethod
    def verbose_name_plural(cls) -> str:
        """The list's heading: `plural` when the kind declares one (a pgettext_lazy("plural", …) string, so
        English can say "Shelters" where Chinese repeats 避灾安置场所), else the model's verbose_name_plural."""
        return cls.plural or cls.model._meta.verbose_name_plural

    @classmethod
    def label(cls) -> str:
        """Short machine name used in events and subjects, e.g. 'shelter'."""
        return cls.model._meta.model_name

    @classmethod
    def event_type(cls, verb: str) -> str:
        """The kind's event type for `verb` (created, updated, deleted, imported, generated), named after the
        app that declares the model: 'registry.shelter.created', 'sensing.station.imported'."""
        return f"{cls.model._meta.app_label}.{cls.label()}.{verb}"

    @classmethod
    def field(cls, name: str) -> models.Field:
        return cls.model._meta.get_field(name)

    @classmethod
    def label_of(cls, name: str) -> str:
        """The label of a field or a computed value."""
        if name in cls.computed:
            return cls.computed[name][0]
        return cls.field(name).verbose_name

    @classmethod
    def annotations(cls) -> dict:
        """The computed values as queryset annotations."""
        return {name: make() for name, (_label, make) in cls.computed.items()}

    @classmethod
    def editable_fields(cls) -> list[str]:
        """Field names people type in, in form/sheet order (computed once per kind)."""
        cached = cls.__dict__.get("_editable_cache")
        if cached is None:
            if cls.io_fields is not None:
                cached = list(cls.io_fields)
            else:
                cached = [f.name for f in cls.model._meta.concrete_fields
                          if f.name not in SYSTEM_FIELDS and f.editable and not f.auto_created]
            cls._editable_cache = cached
        return list(cached)

    @classmethod
    def link_fields(cls) -> list[str]:
        """Editable foreign keys to other coded records (e.g. a sensor's station), given by their code."""
        cached = cls.__dict__.get("_link_cache")
        if cached is None:
            cached = [n for n in cls.editable_fields() if n != "region" and cls.field(n).is_relation
                      and any(f.name == "code" for f in cls.field(n).related_model._meta.fields)]
            cls._link_cache = cached
        return list(cached)

    @classmethod
    def choice_fields(cls) -> list[str]:
        return [n for n in cls.editable_fields() if cls.field(n).choices]

    @classmethod
    def masked_fields(cls, actor) -> frozenset[str]:
        """The personal fields this actor sees masked (none when the table grants them `personal_action`)."""
        from ..scope import can

        if not cls.personal_fields or (cls.personal_action and can(actor, cls.personal_action)):
            return frozenset()
        return frozenset(cls.personal_fields)

    @classmethod
    def subject(cls, obj) -> str:
        return f"{cls.label()}:{obj.pk}"


def register(kind: type[RecordKind]) -> type[RecordKind]:
    if kind.slug in _KINDS and _KINDS[kind.slug] is not kind:
        raise ValueError(f"record kind slug {kind.slug!r} registered twice")
    if not issubclass(kind.model, RegionalModel):
        raise TypeError(f"record kind {kind.slug!r}: {kind.model.__name__} is no RegionalModel or PlacedModel")
    if not kind.placed():
        if kind.__dict__.get("on_map"):
            raise ValueError(f"record kind {kind.slug!r} has no point and cannot be on the map")
        kind.on_map = False
        if kind.search_fields is RecordKind.search_fields:
            kind.search_fields = ["code", "name"]
    _KINDS[kind.slug] = kind
    from .events import declare_kind_events

    declare_kind_events(kind)  # its created/updated/deleted/imported/generated event types
    return kind


def kinds() -> list[type[RecordKind]]:
    return list(_KINDS.values())


def get_kind(slug: str) -> type[RecordKind]:
    return _KINDS[slug]


def kind_for_model(model) -> type[RecordKind] | None:
    for kind in _KINDS.values():
        if kind.model is model or isinstance(model, kind.model):
            return kind
    return None


def mask(value) -> str:
    """A personal value with its middle hidden: 13912340001 → 139****0001; short values entirely."""
    text = "" if value is None else str(value)
    if not text:
        return ""
    return text[:3] + "****" + text[-4:] if len(text) >= 8 else "****"
