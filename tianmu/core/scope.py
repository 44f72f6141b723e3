"""The one place that decides what an actor may see and do: the permission table and its checks.

The table is role × action × region level: for each action, the roles granted it, each with a reach (their home
region's subtree, or everywhere) and optionally the level their home region must have (e.g. only district-level
users change the district's default thresholds). Core declares the base actions "read" and "write" below;
apps add theirs on their AppConfig (`permissions`), and core merges them into the one table
(`permission_table()`), which the authorisation-matrix test iterates. Nothing else in the code compares roles.

Every read goes through `scope_queryset` (pages, API, admin, exports, map layers) and every change through
`check` / `check_write` (services, imports). A superuser may do everything everywhere.

Up the chain. A read granted within the home region (reach "home") also reaches, with `up_the_chain`, the records
kept at the own level of each region above home: a village responder reads the town's and the district's own
records, town staff the district's — never those of a sibling village or town, nor anything below a region
above home other than their own subtree. Record kinds that serve the regions below them (rescue teams, shelters,
warehouses, experts, equipment: `RecordKind.serves_below`) are read this way; everything else (hazards, protected
sites, stations, alarms) stays within the subtree. Writes never go up the chain: `check_write` is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .choices import RegionLevel, Role
from .errors import ScopeError

__all__ = ["Grant", "HOME", "EVERYWHERE", "DISTRICT_ONLY", "WRITERS", "CORE_PERMISSIONS", "permission_table",
           "level_of", "action_prefix", "can", "check", "home_code", "region_prefix", "scope_q", "scope_queryset",
           "can_read_region", "can_write_region", "ancestor_codes", "check_write", "check_read", "check_role", "write_prefix",
           "ROLE_RANK", "role_rank", "assignable_roles", "users_in_reach_q", "managed_users_q", "can_manage_user"]


@dataclass(frozen=True)
class Grant:
    """How far a role may perform an action: `reach` "home" (the actor's home region and below) or "all";
    `level`, if set, the level the actor's home region must have (district / town / village)."""

    reach: str = "home"
    level: str | None = None


HOME = Grant()
EVERYWHERE = Grant("all")
DISTRICT_ONLY = Grant(level=RegionLevel.DISTRICT)

# The roles that change data inside their home region.
WRITERS = (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF, Role.VILLAGE_RESPONDER)

CORE_PERMISSIONS: dict[str, dict[str, Grant]] = {
    # Leaders read everything; everyone else reads their home region's subtree.
    "read": {**{role: HOME for role in Role.values}, Role.LEADER: EVERYWHERE},
    # Leaders and department API clients change nothing through "write" (apps may grant them narrower actions).
    "write": {role: HOME for role in WRITERS},
    # Operations (dead letters, worker lag): district-level writers.
    "operations": {role: DISTRICT_ONLY for role in (Role.COMMANDER, Role.ADMIN)},
    # Delegated administration (the user and API-token admins, for staff given Django's permissions on them):
    # accounts homed in the actor's region, of a role no higher than theirs (ROLE_RANK; can_manage_user).
    "users.manage": {role: HOME for role in (Role.COMMANDER, Role.ADMIN, Role.TOWN_STAFF)},
}

# How far each role reaches, for delegated administration: nobody gives an account a role ranked above their own,
# nor changes an account that holds one. A leader reads the whole district, so it ranks above town staff; the
# commander and the district administrator rank alike.
ROLE_RANK: dict[str, int] = {
    Role.COMMANDER: 50,
    Role.ADMIN: 50,
    Role.LEADER: 40,
    Role.TOWN_STAFF: 30,
    Role.VILLAGE_RESPONDER: 20,
    Role.API_CLIENT: 10,
}


@cache
def permission_table() -> dict[str, dict[str, Grant]]:
    """Core's actions, every installed app's (TianmuApp.permissions) and every lifecycle's transitions
    (core/workflow.py), as one table."""
    from .plugins import platform_apps
    from .workflow import lifecycles

    table = {action: dict(grants) for action, grants in CORE_PERMISSIONS.items()}
    rows = [row for app in platform_apps() for row in getattr(app, "permissions", {}).items()]
    rows += [row for lifecycle in lifecycles() for row in lifecycle.permissions().items()]
    for action, grants in rows:
        if action in table:
            raise ValueError(f"permission {action!r} declared twice")
        unknown = set(grants) - set(Role.values)
        if unknown:
            raise ValueError(f"permission {action!r} names unknown roles {sorted(unknown)}")
        table[action] = dict(grants)
    return table


def level_of(code: str | None) -> str | None:
    """The level of a region code: 6 digits district, 9 town, 12 village."""
    return {6: RegionLevel.DISTRICT, 9: RegionLevel.TOWN, 12: RegionLevel.VILLAGE}.get(len(code or ""))


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


def action_prefix(actor, action: str) -> str | None:
    """The region-code prefix within which the actor may perform `action`: '' everywhere, None nowhere."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return None
    grants = permission_table()[action]  # KeyError: an undeclared action is a programming error
    if actor.is_superuser:
        return ""
    grant = grants.get(actor.role)
    if grant is None:
        return None
    home = home_code(actor)
    if grant.level is not None and level_of(home) != grant.level:
        return None
    if grant.reach == "all":
        return ""
    return home


def can(actor, action: str, region=None) -> bool:
    """May the actor perform `action` in `region` (a Region or a code; None: anywhere at all)?"""
    prefix = action_prefix(actor, action)
    if prefix is None:
        return False
    if region is None or prefix == "":
        return True
    code = region if isinstance(region, str) else getattr(region, "code", None)
    return code is not None and code.startswith(prefix)


def check(actor, action: str, region=None) -> None:
    """Raise ScopeError unless the actor may perform `action` (in `region`, when given)."""
    if action_prefix(actor, action) is None:
        raise ScopeError(_("您的角色没有此项操作的权限"))
    if region is not None and not can(actor, action, region):
        raise ScopeError(_("该区域不在您的管辖范围内"))


def region_prefix(actor) -> str | None:
    """The region-code prefix an actor reads within; '' means everything, None means nothing."""
    return action_prefix(actor, "read")


def write_prefix(actor) -> str | None:
    """The region-code prefix an actor changes data within; None: their role changes nothing."""
    return action_prefix(actor, "write")


def ancestor_codes(code: str | None) -> list[str]:
    """The codes of the regions above a region code, the district first ('330112001001' → ['330112',
    '330112001'])."""
    return [code[:n] for n in (6, 9) if n < len(code or "")]


def scope_q(actor, field: str = "region", *, up_the_chain: bool = False) -> Q:
    """A Q object limiting a queryset's `field` (a Region FK, or a code string when it ends in _code); with
    `up_the_chain`, also the records kept at the own level of each region above the actor's home (module doc)."""
    prefix = region_prefix(actor)
    if prefix is None:
        return Q(pk__in=[])
    if prefix == "":
        return Q()
    code = field if field.endswith("code") else f"{field}__code"
    q = Q(**{f"{code}__startswith": prefix})
    above = ancestor_codes(prefix) if up_the_chain else []
    if above:
        q |= Q(**{f"{code}__in": above})
    return q


def scope_queryset(qs: QuerySet, actor, field: str = "region", *, up_the_chain: bool = False) -> QuerySet:
    return qs.filter(scope_q(actor, field, up_the_chain=up_the_chain))


def can_read_region(actor, region, *, up_the_chain: bool = False) -> bool:
    """May the actor read records of `region` (with `up_the_chain`: also those kept at a level above home)?"""
    if region is None:
        return False
    if can(actor, "read", region):
        return True
    code = region if isinstance(region, str) else getattr(region, "code", None)
    return up_the_chain and code in ancestor_codes(region_prefix(actor))


def can_write_region(actor, region) -> bool:
    return region is not None and can(actor, "write", region)


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


# ---- delegated administration ---------------------------------------------------------------------------------------

def role_rank(role: str) -> int:
    """The rank of a role (ROLE_RANK); -1 for none or an unknown one."""
    return ROLE_RANK.get(role, -1)


def assignable_roles(actor) -> list[str]:
    """The roles the actor may give an account: none without "users.manage", every role for a superuser, else
    those ranked no higher than the actor's own."""
    if action_prefix(actor, "users.manage") is None:
        return []
    if actor.is_superuser:
        return list(Role.values)
    return [role for role in Role.values if role_rank(role) <= role_rank(actor.role)]


def users_in_reach_q(actor, field: str = "") -> Q:
    """Accounts homed within the actor's "users.manage" reach, superusers left out (what the user admin lists).
    `field` is the path to the user from the queried model ("user" for API tokens)."""
    path = f"{field}__" if field else ""
    prefix = action_prefix(actor, "users.manage")
    if prefix is None:
        return Q(pk__in=[])
    if actor.is_superuser:
        return Q()
    q = Q(**{f"{path}is_superuser": False})
    if prefix:
        q &= Q(**{f"{path}region__code__startswith": prefix})
    return q


def managed_users_q(actor, field: str = "") -> Q:
    """Accounts the actor may change (the query form of can_manage_user)."""
    path = f"{field}__" if field else ""
    q = users_in_reach_q(actor, field)
    if actor is None or getattr(actor, "is_superuser", False) or action_prefix(actor, "users.manage") is None:
        return q
    return (q & Q(**{f"{path}role__in": assignable_roles(actor)})
            & (Q(**{f"{path}is_staff": False}) | Q(**{f"{path}pk": actor.pk})))


def can_manage_user(actor, user) -> bool:
    """May the actor change this account (as it is, or as it would be saved)?

    A superuser may change any. Anyone else needs "users.manage" in the account's home region, and the account
    must hold a role ranked no higher than the actor's, not be a superuser, and not be staff unless it is the actor
    themselves: staff accounts carry Django permissions, which only superusers give, so setting a staff member's
    password would hand over rights the actor was not given."""
    if action_prefix(actor, "users.manage") is None:
        return False
    if actor.is_superuser:
        return True
    if user.is_superuser or (user.is_staff and user.pk != actor.pk):
        return False
    if role_rank(user.role) > role_rank(actor.role):
        return False
    return user.region_id is not None and can(actor, "users.manage", home_code(user))
