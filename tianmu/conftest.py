"""Shared pytest fixtures: a small two-town world and one user per role.

Town A (甲镇, 330112001) holds village A1; town B (蔺镇, 330112002) holds village B1. Everything in town B
carries the rare character 蔺 in its name, so a test can assert that a town-A user never sees it.
"""

from __future__ import annotations

import pytest

from tianmu.core.choices import Role

OUTSIDE_MARK = "蔺"


def square(lon: float, lat: float, half: float) -> dict:
    return {"type": "Polygon", "coordinates": [[
        [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half], [lon - half, lat + half],
        [lon - half, lat - half]]]}


@pytest.fixture
def world(db):
    """Regions, users per role, and the names of everything."""
    from tianmu.core.geo import locator
    from tianmu.core.models import Region, User

    def region(code, name, level, parent, lon, lat, half, pop):
        return Region.objects.create(code=code, name=name, level=level, parent=parent, lon=lon, lat=lat,
                                     min_lon=lon - half, min_lat=lat - half, max_lon=lon + half, max_lat=lat + half,
                                     boundary=square(lon, lat, half), population=pop, households=pop // 3)

    district = region("330112", "临安区", "district", None, 119.40, 30.15, 0.40, 2000)
    town_a = region("330112001", "甲镇", "town", district, 119.30, 30.15, 0.10, 1000)
    town_b = region("330112002", f"{OUTSIDE_MARK}镇", "town", district, 119.50, 30.15, 0.10, 1000)
    village_a = region("330112001001", "甲一村", "village", town_a, 119.30, 30.15, 0.05, 600)
    village_b = region("330112002001", f"{OUTSIDE_MARK}一村", "village", town_b, 119.50, 30.15, 0.05, 600)
    locator.reset()

    def user(username, role, home, **extra):
        # No password: tests log in with force_login, and argon2 hashing would cost ~0.3 s a user.
        return User.objects.create(username=username, role=role, region=home, **extra)

    users = {
        "commander": user("commander", Role.COMMANDER, district),
        "admin": user("admin", Role.ADMIN, district, is_staff=True, is_superuser=True),
        "leader": user("leader", Role.LEADER, district),
        "town_staff": user("town_a", Role.TOWN_STAFF, town_a),
        "village_responder": user("village_a", Role.VILLAGE_RESPONDER, village_a),
        "api_client": user("dept", Role.API_CLIENT, district),
        "other_town_staff": user("town_b", Role.TOWN_STAFF, town_b),
    }
    yield {"district": district, "town_a": town_a, "town_b": town_b, "village_a": village_a,
           "village_b": village_b, "users": users}
    locator.reset()


def record_data(kind, region, suffix: str = "1", **overrides) -> dict:
    """Valid input for a record of `kind` inside `region` (a placed kind's point near its centre), from the
    kind's example."""
    from tianmu.core.models import Region

    region = region if isinstance(region, Region) else Region.objects.get(code=region)
    mark = OUTSIDE_MARK if region.code.startswith("330112002") else ""
    data = {"code": f"T-{kind.slug}-{region.code}-{suffix}", "name": f"{mark}{kind.slug}测试{suffix}",
            "region": region.code}
    if kind.placed():
        data.update(lon=region.lon + 0.001, lat=region.lat + 0.001)
    data.update(kind.example)
    data.update(overrides)
    return data


@pytest.fixture
def records(world):
    """One record of every kind in village A1 and one in village B1: {slug: {"a": obj, "b": obj}}."""
    from tianmu.core.registry.kinds import kinds
    from tianmu.core.registry.services import create_record

    admin = world["users"]["admin"]
    out = {}
    for kind in kinds():
        out[kind.slug] = {
            "a": create_record(admin, kind, record_data(kind, world["village_a"], "a")),
            "b": create_record(admin, kind, record_data(kind, world["village_b"], "b")),
        }
    return out
