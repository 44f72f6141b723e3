"""Fixtures for the event tests: declare event types and register handlers for one test only."""

from __future__ import annotations

import pytest


@pytest.fixture
def declare_types():
    """declare_types({"core.probe.ticked": {"i": int}, …}): declared (in the core app) until the test ends."""
    from tianmu.core.eventtypes import declare, undeclare

    declared: list[str] = []

    def declare_all(spec: dict):
        for name, payload in spec.items():
            declare(name, payload, f"test type {name}", declared_in=__name__)
            declared.append(name)

    yield declare_all
    for name in declared:
        undeclare(name)


@pytest.fixture
def register_handler():
    """register_handler(func, *types, **options): a handler registered until the test ends."""
    from tianmu.core.eventtypes import register_handler as register
    from tianmu.core.eventtypes import unregister_handler

    names: list[str] = []

    def add(func, *types, **options):
        h = register(func, types, **options)
        names.append(h.name)
        return h

    yield add
    for name in names:
        unregister_handler(name)
