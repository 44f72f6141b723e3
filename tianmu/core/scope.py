"""The one helper that decides what an actor may see and change.

Every read in the platform goes through `scope_queryset` (pages, API, admin, exports, map layers) and every
write through `check_write` (services, imports). Rules:
  - a superuser and the leader role read everything;
  - everyone else reads only records in their home region's subtree (codes share a prefix);
  - only write roles change data, and only inside their home region's subtree.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .errors import ScopeError

__all__ = ["home_code", "region_prefix", "scope_q", "scope_queryset", "can_read_region", "can_write_region", "check_write",
           "check_read", "check_role", "write_prefix", "is_district_writer"]


def home_code(actor) -> str | None:
    """The code of the actor's home region, fetched once per actor object (not the whole region row)."""
    if actor.region_id is None:
        return None
    cached = getattr(actor, "_tianmu_home_code", None)
    if cached is None or cached[0] != actor.region_id:
        from .models import Region

        state = getattr(actor, "_state", None)
        region = state.fields_cache.get("region") if state is not None else None
        code = region.code if region is not None else Region.objects.values_list("code", flat=True).get(
            pk=actor.region_id)
        cached = (actor.region_id, code)
        actor._tianmu_home_code = cached
    return cached[1]


def region_prefix(actor) -> str | None:
    """The region-code prefix an actor reads within; '' means everything, None means nothing."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return None
    if actor.reads_everything:
        return ""
    return home_code(actor)


def write_prefix(actor) -> str | None:
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.can_write:
        return None
    if actor.is_superuser:
        return ""
    return home_code(actor)


def is_district_writer(actor) -> bool:
    """Whether the actor writes for the whole district (the commander, the district administrator, a superuser):
    who sees the platform's operations (workers, consumers, dead letters), which belong to no region."""
    prefix = write_prefix(actor)
    return prefix is not None and len(prefix) <= 6


def scope_q(actor, field: str = "region") -> Q:
    """A Q object limiting a queryset's `field` (a Region FK, or a code string when it ends in _code)."""
    prefix = region_prefix(actor)
    if prefix is None:
        return Q(pk__in=[])
    if prefix == "":
        return Q()
    lookup = f"{field}__startswith" if field.endswith("code") else f"{field}__code__startswith"
    return Q(**{lookup: prefix})


def scope_queryset(qs: QuerySet, actor, field: str = "region") -> QuerySet:
    return qs.filter(scope_q(actor, field))


def can_read_region(actor, region) -> bool:
    prefix = region_prefix(actor)
    if prefix is None:
        return False
    code = region if isinstance(region, str) else getattr(region, "code", None)
    return prefix == "" or (code is not None and code.startswith(prefix))


def can_write_region(actor, region) -> bool:
    prefix = write_prefix(actor)
    if prefix is None:
        return False
    code = region if isinstance(region, str) else getattr(region, "code", None)
    return prefix == "" or (code is not None and code.startswith(prefix))


def check_read(actor, region) -> None:
    if not can_read_region(actor, region):
        raise ScopeError()


def check_role(actor) -> None:
    """Raise ScopeError unless the actor's role may change data at all."""
    if write_prefix(actor) is None:
        raise ScopeError(_("您的角色没有修改数据的权限"))


def check_write(actor, region) -> None:
    """Raise ScopeError unless the actor's role may write and the region lies in their home region."""
    check_role(actor)
    if not can_write_region(actor, region):
        raise ScopeError(_("该区域不在您的管辖范围内"))
