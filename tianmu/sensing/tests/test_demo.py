"""The demo monitoring network: counts, every station inside its region, linked hazards, deterministic plan,
dry-weather history that ends before the demo's storm hours."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db.models import Count, F, Max, Min
from django.utils import timezone
from shapely.geometry import Point, shape

from tianmu.core.models import Event, Region
from tianmu.demo import dataset
from tianmu.registry.models import HazardSource, ProtectedSite
from tianmu.sensing.demo.network import (
    DEMO_STORM_HOURS,
    HISTORY_HOURS,
    RAIN_GAUGES,
    history_rows,
    plan_network,
)
from tianmu.sensing.models import Alarm, Reading, Sensor, SensorLatest, Station

pytestmark = pytest.mark.django_db


def _inputs():
    villages = list(Region.objects.filter(level="village").select_related("parent").order_by("code"))
    geo = list(HazardSource.objects.filter(hazard_type="geological", risk_level__in=["major", "high"])
               .select_related("region", "region__parent").order_by("code"))
    chem = list(HazardSource.objects.filter(hazard_type="hazchem").select_related("region", "region__parent")
                .order_by("code"))
    reservoirs = list(ProtectedSite.objects.filter(site_type="reservoir").select_related("region", "region__parent")
                      .order_by("code"))
    return villages, geo, chem, reservoirs


def _comparable(plan):
    return [(r["code"], r["name"], r["region"].code, r["lon"], r["lat"], r.get("warning_level_m"),
             getattr(r.get("hazard"), "code", None)) for r in plan["stations"]], plan["sensors"], plan["bases"]


def test_demo_network():
    before = timezone.now()
    summary = dataset.build()
    after = timezone.now()  # the build reads the clock itself, somewhere in [before, after]
    counts = summary["counts"]
    assert counts["stations"] == counts["sensors"] == Station.objects.count() == Sensor.objects.count()

    by_type = dict(Station.objects.values_list("station_type").annotate(n=Count("id")))
    assert by_type["rain"] == RAIN_GAUGES == 431
    assert 35 <= by_type["river"] + by_type["reservoir"] <= 45
    assert by_type["displacement"] == 25 and by_type["gas"] >= 3
    assert Sensor.objects.filter(sensor_type="rainfall").count() == 431
    assert not Station.objects.annotate(n=Count("sensors")).exclude(n=1).exists(), "one sensor per station"

    # Every station lies inside its own region (a village), and its sensor sits with it.
    for st in Station.objects.select_related("region"):
        assert st.region.level == "village", st.code
        assert shape(st.region.boundary).contains(Point(st.lon, st.lat)), (st.code, st.lon, st.lat)
    assert not Sensor.objects.exclude(region_id=F("station__region_id")).exists()

    # Weighted toward the mountainous west: more gauges west of 119.4° E than east of it, per village too.
    west = Station.objects.filter(station_type="rain", lon__lt=119.4).count()
    assert west > 431 / 2
    assert Station.objects.filter(station_type="rain", region__parent__name="龙岗镇").count() > \
        Station.objects.filter(station_type="rain", region__parent__name="锦城街道").count()

    # Water levels have warning ≤ guaranteed; slopes watch major/high geological zones; gas detectors hazchem.
    for st in Station.objects.filter(station_type__in=["river", "reservoir"]):
        assert st.warning_level_m is not None and st.guaranteed_level_m > st.warning_level_m
    slopes = Station.objects.filter(station_type="displacement").select_related("hazard")
    assert all(s.hazard.hazard_type == "geological" and s.hazard.risk_level in ("major", "high") for s in slopes)
    assert all(s.hazard.hazard_type == "hazchem" for s in Station.objects.filter(station_type="gas")
               .select_related("hazard"))
    # Codes are MQTT-safe device ids.
    assert not Sensor.objects.filter(code__regex=r"[/+#\s]").exists()

    # Services recorded history and events.
    assert Station.history.count() == counts["stations"]
    assert Event.objects.filter(type="sensing.station.generated").exists()
    assert Event.objects.filter(type="sensing.sensor.generated").exists()

    # Two days of dry weather, ending DEMO_STORM_HOURS before now, on every sensor, no alarms.
    span = Reading.objects.aggregate(first=Min("ts"), last=Max("ts"))
    assert span["last"] <= after - timedelta(hours=DEMO_STORM_HOURS)
    assert span["last"] >= before - timedelta(hours=DEMO_STORM_HOURS + 1)  # hourly readings (history_rows)
    assert span["last"] - span["first"] >= timedelta(hours=HISTORY_HOURS - 2)
    assert SensorLatest.objects.count() == counts["sensors"]
    assert Reading.objects.count() == counts["readings"]
    assert not Alarm.objects.exists()
    rain = Reading.objects.filter(sensor__sensor_type="rainfall")
    assert rain.aggregate(m=Max("value"))["m"] < 10, "dry weather"

    # The plan is deterministic: same inputs and seed → the same network; another seed → another one.
    inputs = _inputs()
    first = plan_network(*inputs, random.Random(5))
    assert _comparable(first) == _comparable(plan_network(*inputs, random.Random(5)))
    assert _comparable(first) != _comparable(plan_network(*inputs, random.Random(6)))
    sensors = list(Sensor.objects.select_related("station").order_by("code")[:60])
    end = timezone.now()
    assert history_rows(sensors, random.Random(1), end - timedelta(hours=5), end, first["bases"]) == \
        history_rows(sensors, random.Random(1), end - timedelta(hours=5), end, first["bases"])
