"""Stations and sensors as record kinds: a sensor sits at its station (region and point), cannot borrow a
station from another region, and follows its station when the station moves."""

from __future__ import annotations

import pytest

from tianmu.core.errors import ServiceError
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record, delete_record, update_record
from tianmu.sensing.models import Sensor

from .conftest import make_sensor, make_station


def test_sensor_takes_its_stations_place_and_follows_it(world, net):
    staff = world["users"]["town_staff"]
    station = net["stations"]["level_a"]
    sensor = create_record(staff, get_kind("sensors"), {
        "code": "WL-A2", "name": "备用水位计", "station": station.code, "sensor_type": "water_level",
        "lon": station.lon + 0.001, "lat": station.lat, "interval_s": 600})
    assert (sensor.lon, sensor.lat, sensor.region_id, sensor.unit) == (station.lon, station.lat,
                                                                        station.region_id, "m")
    moved = station.lon + 0.01
    update_record(staff, get_kind("stations"), station, {"lon": moved})
    sensor.refresh_from_db()
    assert sensor.lon == pytest.approx(moved)


def test_sensor_must_be_at_its_station_and_in_its_region(world, net):
    staff = world["users"]["town_staff"]
    far = net["stations"]["rain_a"]
    with pytest.raises(ServiceError) as exc:
        create_record(staff, get_kind("sensors"), {
            "code": "X1", "name": "远处", "station": far.code, "sensor_type": "rainfall",
            "lon": far.lon + 0.03, "lat": far.lat})
    assert "station" in exc.value.errors
    other = net["stations"]["rain_b"]  # in town B, outside town A's scope
    with pytest.raises(ServiceError) as exc:
        create_record(staff, get_kind("sensors"), {
            "code": "X2", "name": "借站", "station": other.code, "sensor_type": "rainfall",
            "region": world["village_a"].code, "lon": world["village_a"].lon, "lat": world["village_a"].lat})
    assert "station" in exc.value.errors
    assert not Sensor.objects.filter(code__in=["X1", "X2"]).exists()
    with pytest.raises(ServiceError) as exc:
        make_sensor(world["users"]["admin"], far, "X3", valid_min=10, valid_max=1)
    assert "valid_max" in exc.value.errors


@pytest.mark.parametrize("code", ["RG.01", "RG 01", "RG/01", "RG+", "RG#1", "RG*", "RG>1", "RG\t1"])
def test_codes_that_a_topic_cannot_carry_are_refused(world, net, code):
    """Station and sensor codes are MQTT topic segments: ".", spaces and wildcards are refused with a clear
    message (a NATS broker disconnects a device publishing to such a topic)."""
    admin = world["users"]["admin"]
    with pytest.raises(ServiceError) as exc:
        make_station(admin, world["village_a"], code)
    assert "code" in exc.value.errors and "MQTT" in str(exc.value.errors["code"][0])
    with pytest.raises(ServiceError) as exc:
        make_sensor(admin, net["stations"]["rain_a"], code)
    assert "code" in exc.value.errors
    assert make_sensor(admin, net["stations"]["rain_a"], "RG-01_a").code == "RG-01_a"


def test_a_sensor_that_has_reported_cannot_be_deleted(world, net, t0):
    from tianmu.sensing.services import ingest_messages

    ingest_messages([("tianmu/v1/ST-RAIN-A/RG-A/data", b'{"ts": %d, "value": 1}' % int(t0.timestamp()))])
    with pytest.raises(ServiceError):
        delete_record(world["users"]["admin"], get_kind("sensors"), net["rain_a"])
    silent = make_sensor(world["users"]["admin"], make_station(world["users"]["admin"], world["village_a"], "ST-S"),
                         "SILENT")
    delete_record(world["users"]["admin"], get_kind("sensors"), silent)
    assert not Sensor.objects.filter(code="SILENT").exists()
