"""Fixtures for monitoring tests, on top of the shared `world` (town A with village A1, town B with B1)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record


def base_time() -> datetime:
    """A whole hour two days ago: readings are never in the future, whatever the machine's date."""
    return (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def make_station(actor, region, code: str, station_type: str = "rain", **extra):
    data = {"code": code, "name": f"测试站{code}", "region": region.code, "lon": region.lon + 0.002,
            "lat": region.lat + 0.002, "station_type": station_type, **extra}
    return create_record(actor, get_kind("stations"), data)


def make_sensor(actor, station, code: str, sensor_type: str = "rainfall", **extra):
    data = {"code": code, "name": f"传感器{code}", "region": station.region.code, "lon": station.lon,
            "lat": station.lat, "station": station.code, "sensor_type": sensor_type, "interval_s": 300, **extra}
    return create_record(actor, get_kind("sensors"), data)


def broker_up() -> bool:
    """Whether the MQTT broker at settings.MQTT_URL accepts a TCP connection."""
    from tianmu.sensing.ingest import broker_address

    address = broker_address(settings.MQTT_URL)
    try:
        with socket.create_connection((address["host"], address["port"]), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def broker():
    """Tests against the real broker use this. Without a broker they are skipped on a developer's machine,
    but in CI (CI=true, set by .ci/run) they fail, as a missing browser fails the e2e tests: CI cannot pass
    by skipping."""
    if broker_up():
        return
    message = f"no MQTT broker at {settings.MQTT_URL}"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message}: CI runs the MQTT tests (start mosquitto, as .ci/run does)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def t0():
    return base_time()


@pytest.fixture
def net(world):
    """A rain gauge and a water-level gauge in village A1, a rain gauge in village B1."""
    admin = world["users"]["admin"]
    rain_a = make_station(admin, world["village_a"], "ST-RAIN-A")
    level_a = make_station(admin, world["village_a"], "ST-LEVEL-A", "water_level", warning_level_m=3.0,
                           guaranteed_level_m=4.0)
    rain_b = make_station(admin, world["village_b"], "ST-RAIN-B")
    return {
        "rain_a": make_sensor(admin, rain_a, "RG-A", valid_min=0, valid_max=200),
        "level_a": make_sensor(admin, level_a, "WL-A", "water_level", valid_min=-5, valid_max=50),
        "rain_b": make_sensor(admin, rain_b, "RG-B", valid_min=0, valid_max=200),
        "stations": {"rain_a": rain_a, "level_a": level_a, "rain_b": rain_b},
    }
