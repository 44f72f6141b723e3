"""Scoped reads of warnings. A person sees every version in their own subtree (drafts included) and the
published warnings of the regions above them (a district-wide warning concerns every town); nothing of other
towns. The public feed (views.py) shows only current published warnings, without login."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ServiceError
from tianmu.core.models import Event, Region
from tianmu.core.scope import home_code, region_prefix

from .choices import ACTIVE, LEVEL_RANK, PUBLISHED, HazardType, Level, Origin, WarningState
from .models import CapMessage, HazardWarning

__all__ = ["visible", "WarningFilter", "warnings", "timeline", "current_public", "map_features", "towns_for",
           "awaiting"]


def visible(actor) -> QuerySet:
    prefix = region_prefix(actor)
    qs = HazardWarning.objects.all()
    if prefix is None:
        return qs.none()
    if prefix == "":
        return qs
    home = home_code(actor) or prefix
    ancestors = [home[:n] for n in (6, 9) if n < len(home)]
    return qs.filter(Q(region__code__startswith=prefix) | Q(region__code__in=ancestors, state__in=PUBLISHED))


@dataclass
class WarningFilter:
    state: str | None = None  # a state, or "active" (issued)
    level: str | None = None
    hazard_type: str | None = None
    town: str | None = None
    origin: str | None = None


def _choice(name: str, value, choices) -> str | None:
    if value in (None, ""):
        return None
    if value not in choices.values:
        raise ServiceError({name: [_("不是有效的选项")]})
    return value


def awaiting() -> Case:
    """Drafts waiting for a person first (submitted, then approved, then drafts), then the rest by time."""
    return Case(When(state=WarningState.SUBMITTED, then=Value(0)), When(state=WarningState.APPROVED, then=Value(1)),
                When(state=WarningState.DRAFT, then=Value(2)), default=Value(3), output_field=IntegerField())


def warnings(actor, flt: WarningFilter | None = None) -> QuerySet:
    flt = flt or WarningFilter()
    qs = visible(actor)
    if flt.state == "active":
        qs = qs.filter(state__in=ACTIVE)
    elif _choice("state", flt.state, WarningState):
        qs = qs.filter(state=flt.state)
    if _choice("level", flt.level, Level):
        qs = qs.filter(level=flt.level)
    if _choice("hazard_type", flt.hazard_type, HazardType):
        qs = qs.filter(hazard_type=flt.hazard_type)
    if _choice("origin", flt.origin, Origin):
        qs = qs.filter(origin=flt.origin)
    if flt.town:
        if not flt.town.isdigit() or len(flt.town) > 12:
            raise ServiceError({"town": [_("不是有效的区划代码")]})
        qs = qs.filter(Q(region__code__startswith=flt.town) | Q(areas__code__startswith=flt.town)).distinct()
    severity = Case(*[When(level=lv, then=Value(rank)) for lv, rank in LEVEL_RANK.items()], default=Value(0),
                    output_field=IntegerField())
    return (qs.select_related("region", "created_by", "approved_by", "issued_by")
            .annotate(waiting=awaiting(), severity=severity).order_by("waiting", "-severity", "-created_at", "-id"))


def towns_for(actor) -> QuerySet:
    prefix = region_prefix(actor)
    qs = Region.light.filter(level="town")
    return qs if not prefix else qs.filter(code__startswith=prefix[:9])


def timeline(w: HazardWarning) -> list[Event]:
    """Who did what when: the warning's events, oldest first."""
    return list(Event.objects.filter(subject=w.subject()).select_related("actor").order_by("id"))


def current_public(limit: int) -> QuerySet:
    """Issued warnings not yet expired, ours and imported ones: the public feed."""
    return (HazardWarning.objects.filter(state__in=ACTIVE, expires__gt=timezone.now())
            .prefetch_related("areas", "messages").order_by("-issued_at", "-id")[:limit])


def latest_message(w: HazardWarning) -> CapMessage | None:
    return w.messages.order_by("-sent", "-id").first()


def map_features(actor, *, hazard_type: str | None = None, level: str | None = None) -> dict:
    """Active warnings the actor may see as a GeoJSON FeatureCollection: one feature per targeted region (its
    boundary) and one for a drawn polygon, coloured by level on the map."""
    qs = warnings(actor, WarningFilter(state="active", hazard_type=hazard_type, level=level))
    qs = qs.filter(expires__gt=timezone.now()).prefetch_related("areas")
    rows = list(qs[:500])
    codes = {r.pk for w in rows for r in w.areas.all()}
    boundaries = dict(Region.objects.filter(pk__in=codes).values_list("pk", "boundary"))
    features = []
    for w in rows:
        props = {"id": w.pk, "headline": w.headline, "level": w.level, "level_label": str(Level(w.level).label),
                 "hazard_type": w.hazard_type, "type_label": str(HazardType(w.hazard_type).label),
                 "external": w.external, "source": w.external_sender, "url": w.get_absolute_url(),
                 "expires": timezone.localtime(w.expires).isoformat()}
        for r in w.areas.all():
            if boundaries.get(r.pk):
                features.append({"type": "Feature", "geometry": boundaries[r.pk],
                                 "properties": {**props, "area": r.name}})
        if w.polygon:
            features.append({"type": "Feature", "geometry": w.polygon, "properties": {**props, "area": ""}})
    return {"type": "FeatureCollection", "features": features, "warnings": len(rows)}


def dissemination(w: HazardWarning, actor) -> list[dict]:
    """The warning's dispatches through the command-communications network (comms), newest first, each with its
    progress (comms.queries.progress) limited to the persons in the actor's region."""
    from tianmu.comms.models import Dispatch
    from tianmu.comms.queries import progress

    return [{"dispatch": d, "p": progress(d, actor)}
            for d in Dispatch.objects.filter(source="warnings.warning", subject_id=str(w.pk)).order_by("-created_at", "-pk")]
