"""The Lin'an demo: regions and one login per role (this app's own steps), then every installed app's demo
steps in dependency order (core.plugins.DemoStep): "build" steps in one transaction, "replay" steps after it.

Deterministic (seeded): the same seed gives the same district. This module names no domain app; each app's
data comes from the step it declares (e.g. registry/demo.py, sensing/demo/network.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from django.db import connection, transaction

from tianmu.core.choices import Role
from tianmu.core.geo import locator
from tianmu.core.models import ApiToken, Region, User
from tianmu.core.plugins import demo_steps, resolve

from . import geography

__all__ = ["DEMO_PASSWORD", "DemoLogin", "DemoContext", "build", "replay", "is_built", "DEMO_USERS"]

DEMO_PASSWORD = "tianmu-demo-2026"


@dataclass
class DemoLogin:
    username: str
    role: str
    region: str
    note: str


# (username, role, region name or None for the district, surname, given name, note)
DEMO_USERS = [
    ("duty", Role.COMMANDER, None, "陈", "立明", "区应急指挥中心值班员/指挥长"),
    ("admin", Role.ADMIN, None, "许", "文斌", "区管理员(可进入管理后台)"),
    ("leader", Role.LEADER, None, "周", "志华", "领导:全区只读"),
    ("jincheng", Role.TOWN_STAFF, "锦城街道", "李", "晓燕", "锦城街道工作人员"),
    ("longgang", Role.TOWN_STAFF, "龙岗镇", "吴", "海波", "龙岗镇工作人员"),
    ("village", Role.VILLAGE_RESPONDER, "龙岗镇:first", "郑", "德荣", "龙岗镇某村应急员"),
    ("water-dept", Role.API_CLIENT, None, "区林业水利局", "", "部门接口(附令牌)"),
]


def is_built() -> bool:
    return Region.objects.filter(level="district").exists()


def _create_regions(geo: dict) -> dict[str, Region]:
    by_code: dict[str, Region] = {}
    for item in [geo["district"], *geo["towns"], *geo["villages"]]:
        bbox = item["bbox"]
        region = Region(
            code=item["code"], name=item["name"], level=item["level"], kind=item["kind"],
            parent=by_code.get(item["parent_code"]) if item["parent_code"] else None,
            population=item["population"], households=item["households"], area_km2=round(item["area_km2"], 2),
            lon=item["lon"], lat=item["lat"], min_lon=bbox[0], min_lat=bbox[1], max_lon=bbox[2], max_lat=bbox[3],
            boundary=item["boundary"],
        )
        region.save()
        by_code[region.code] = region
    locator.reset()
    return by_code


def _create_users(regions: dict[str, Region]) -> tuple[list[DemoLogin], str]:
    by_name = {r.name: r for r in regions.values() if r.level == "town"}
    district = next(r for r in regions.values() if r.level == "district")
    logins, token_key = [], ""
    for username, role, where, last, first, note in DEMO_USERS:
        if where is None:
            region = district
        elif where.endswith(":first"):
            town = by_name[where.split(":")[0]]
            region = min((r for r in regions.values() if r.parent_id == town.pk), key=lambda r: r.code)
        else:
            region = by_name[where]
        user = User(username=username, role=role, region=region, last_name=last, first_name=first,
                    is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN)
        user.set_password(DEMO_PASSWORD)
        user.save()
        logins.append(DemoLogin(username, str(user.get_role_display()), f"{region.name} ({region.code})", note))
        if role == Role.API_CLIENT:
            token_key = ApiToken.new_key()
            ApiToken.objects.create(user=user, name="水利局数据交换", prefix=token_key[:8],
                                    key_hash=ApiToken.hash_key(token_key))
    return logins, token_key


@dataclass
class DemoContext:
    """What demo steps share: the seed and its random stream, the acting system user, the regions by code, the
    logins and token made, and the counts and messages the steps report."""

    seed: int
    rng: random.Random
    regions: dict[str, Region] = field(default_factory=dict)
    actor: User | None = None
    logins: list[DemoLogin] = field(default_factory=list)
    token: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def report(self, result) -> None:
        if isinstance(result, dict):
            self.counts.update(result)
        elif isinstance(result, str):
            self.messages.append(result)


def regions_step(ctx: DemoContext) -> dict[str, int]:
    """The district, its 18 towns and ~300 villages (generated boundaries, census populations)."""
    geo = geography.generate(ctx.seed)
    ctx.regions = _create_regions(geo)
    return {"towns": len(geo["towns"]), "villages": len(geo["villages"])}


def users_step(ctx: DemoContext) -> None:
    """One login per role; the district administrator acts for the demo's generated data."""
    ctx.logins, ctx.token = _create_users(ctx.regions)
    ctx.actor = User.objects.get(username="admin")


def build(seed: int = 330112) -> dict:
    """Create the whole demo district in one transaction: every "build" step in order. Returns logins, the
    API token and counts."""
    ctx = DemoContext(seed=seed, rng=random.Random(seed))
    with transaction.atomic():
        for step in demo_steps("build"):
            ctx.report(resolve(step.run)(ctx))
    locator.reset()
    if connection.vendor == "postgresql":
        # Fresh tables have no planner statistics; without them list queries pick slow plans.
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    counts = {k: v for k, v in ctx.counts.items() if k not in ("towns", "villages")}
    return {"logins": ctx.logins, "token": ctx.token, "counts": counts,
            "regions": {"towns": ctx.counts.get("towns", 0), "villages": ctx.counts.get("villages", 0)}}


def replay(seed: int = 330112) -> list[str]:
    """After the build: every "replay" step (e.g. the typhoon's last hours through the real ingest path).
    Returns what they report, for `tianmu demo` to print."""
    ctx = DemoContext(seed=seed, rng=random.Random(seed))
    for step in demo_steps("replay"):
        ctx.report(resolve(step.run)(ctx))
    return ctx.messages
