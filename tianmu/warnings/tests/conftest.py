"""Fixtures for warning tests on top of the shared two-town `world`."""

from __future__ import annotations

import pytest


@pytest.fixture
def users(world):
    from tianmu.core.choices import Role
    from tianmu.core.models import User

    u = dict(world["users"])
    # A second person in town A and at the district, for the four-eyes rule.
    u["town_staff_2"] = User.objects.create(username="town_a2", role=Role.TOWN_STAFF, region=world["town_a"])
    u["commander_2"] = User.objects.create(username="commander2", role=Role.COMMANDER, region=world["district"])
    return u


# The responsible persons of the shared world (district duty room, town and village leads), for dissemination.
from tianmu.comms.tests.conftest import people  # noqa: E402, F401
