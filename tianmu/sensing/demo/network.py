"""The demo monitoring network of Lin'an (临安区), built by the demo step "sensing.network".

Deterministic (the demo's seeded rng): 431 rain gauges (the district's real count, shared/domain/facts.md §8),
one rainfall sensor each, spread over villages weighted toward the mountainous west; ~40 river and reservoir
water-level stations with warning and guaranteed levels; 25 displacement stations on major/high geological
risk zones; gas detectors at hazardous-chemical enterprises. River names are plausible, not surveyed.

Two days of dry-weather history are stored through `storage.store_readings` (hourly reports, as telemetry
stations send them in dry weather), ending `DEMO_STORM_HOURS` before now: `tianmu demo` then runs that many
hours of the typhoon simulation (simulate.py) up to now, so the storm's readings never meet the history.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from tianmu.core.models import Region
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import bulk_create_records
from tianmu.demo import geography

from ..choices import DEFAULT_UNITS, SensorType, StationType
from ..models import Sensor, Station
from ..storage import store_readings

__all__ = ["DEMO_STORM_HOURS", "HISTORY_HOURS", "RAIN_GAUGES", "plan_network", "build_network",
           "history_rows", "RIVERS"]

DEMO_STORM_HOURS = 6
HISTORY_HOURS = 48
RAIN_GAUGES = 431
RIVER_STATIONS = 25
RESERVOIR_STATIONS = 15
SLOPE_STATIONS = 25
GAS_DETECTORS = 4
REPORT_INTERVAL_S = 3600  # dry-weather timed report (定时报); during rain stations add 5-minute reports (加报)

# The main stream through each town (demo names: plausible, not surveyed).
RIVERS = {"岛石镇": "昌化溪", "龙岗镇": "昌化溪", "清凉峰镇": "颊口溪", "湍口镇": "湍口溪", "河桥镇": "昌化溪",
          "昌化镇": "昌化溪", "太阳镇": "天目溪", "潜川镇": "天目溪", "於潜镇": "天目溪", "天目山镇": "天目溪",
          "太湖源镇": "南苕溪", "锦城街道": "锦溪", "锦北街道": "锦溪", "锦南街道": "南苕溪", "玲珑街道": "南苕溪",
          "青山湖街道": "南苕溪", "高虹镇": "中苕溪", "板桥镇": "南苕溪"}
# Western mountain towns get a second river station (they flood first).
TWO_RIVER_STATIONS = ["岛石镇", "龙岗镇", "清凉峰镇", "湍口镇", "河桥镇", "昌化镇", "天目山镇"]
OPERATORS = {StationType.RAIN: "区林业水利局", StationType.RIVER: "区林业水利局",
             StationType.RESERVOIR: "区林业水利局", StationType.DISPLACEMENT: "区自然资源和规划分局",
             StationType.GAS: "区应急管理局"}


def _mountain_weights(villages: list[Region]) -> list[float]:
    return [geography.MOUNTAIN_WEIGHT.get(v.parent.name, 1.0) * max(v.area_km2 or 0.0, 0.5) for v in villages]


def _point_in(region: Region, rng: random.Random) -> tuple[float, float]:
    """A point strictly inside the region after rounding to 6 decimals."""
    from shapely.geometry import Point, shape

    geom = shape(region.boundary)
    for _ in range(50):
        lon, lat = geography.random_point_in(region.boundary, rng)
        lon, lat = round(lon, 6), round(lat, 6)
        if geom.contains(Point(lon, lat)):
            return lon, lat
    p = geom.representative_point()
    return round(p.x, 6), round(p.y, 6)


def _station(code, name, region, lon, lat, station_type, rng, **extra) -> dict:
    village = region if region.level == "village" else None
    return {"code": code, "name": name, "region": region, "lon": lon, "lat": lat,
            "address": f"{village.parent.name}{village.name}" if village else region.name,
            "station_type": station_type, "operator": OPERATORS.get(station_type, ""),
            "installed_on": date(rng.randint(2012, 2023), rng.randint(3, 6), rng.randint(1, 28)),
            "calibrated_on": date(2025, rng.randint(3, 5), rng.randint(1, 28)), **extra}


def _sensor(station: dict, code: str, sensor_type: str, valid_min: float, valid_max: float) -> dict:
    label = {SensorType.RAINFALL: "雨量计", SensorType.WATER_LEVEL: "水位计", SensorType.DISPLACEMENT: "GNSS位移计",
             SensorType.GAS: "可燃气体探测器"}[sensor_type]
    return {"code": code, "name": f"{station['name']}{label}", "station": station["code"], "sensor_type": sensor_type,
            "unit": DEFAULT_UNITS[sensor_type], "valid_min": valid_min, "valid_max": valid_max,
            "interval_s": REPORT_INTERVAL_S}


def plan_network(villages: list[Region], geo_hazards: list, hazchem: list, reservoirs: list,
                 rng: random.Random) -> dict[str, list[dict]]:
    """Stations and sensors as field dicts (regions as Region objects, sensor stations as codes). Pure: the
    same inputs and rng state give the same plan. Inputs are ordered by code."""
    stations: list[dict] = []
    sensors: list[dict] = []
    bases: dict[str, float] = {}  # water-level sensor code → pre-storm level
    per_village: dict[str, int] = {}

    def next_n(key: str) -> int:
        per_village[key] = per_village.get(key, 0) + 1
        return per_village[key]

    # Rain gauges: one in every village first (coverage), the rest weighted toward the mountainous west.
    weights = _mountain_weights(villages)
    chosen = list(villages) + rng.choices(villages, weights=weights, k=max(0, RAIN_GAUGES - len(villages)))
    for v in chosen[:RAIN_GAUGES]:
        n = next_n("YL" + v.code)
        lon, lat = _point_in(v, rng)
        st = _station(f"YL{v.code[6:]}{n:02d}", f"{v.name}雨量站" + (str(n) if n > 1 else ""), v, lon, lat,
                      StationType.RAIN, rng)
        stations.append(st)
        sensors.append(_sensor(st, f"RG{v.code[6:]}{n:02d}", SensorType.RAINFALL, 0, 100))

    # River water-level stations: one per town on its main stream, two in the western mountain towns.
    towns: dict[str, list[Region]] = {}
    for v in villages:
        towns.setdefault(v.parent.name, []).append(v)
    river_towns = [t for t in towns if t in RIVERS]
    order = sorted(river_towns, key=lambda t: (t not in TWO_RIVER_STATIONS, min(v.code for v in towns[t])))
    slots = [t for t in order] + [t for t in order if t in TWO_RIVER_STATIONS]
    for town in slots[:RIVER_STATIONS]:
        members = towns[town]
        seat = max(members, key=lambda v: v.population)
        v = seat if not any(s["region"] == seat and s["station_type"] == StationType.RIVER for s in stations) \
            else rng.choice(members)
        n = next_n("SW" + v.code)
        lon, lat = _point_in(v, rng)
        base = round(28 + (119.87 - lon) * 240 + rng.uniform(-8, 8), 2)  # 85 datum: the west sits higher
        warning = round(base + rng.uniform(2.2, 3.2), 2)
        st = _station(f"SW{v.code[6:]}{n:02d}", f"{RIVERS[town]}{v.name}水位站", v, lon, lat, StationType.RIVER, rng,
                      warning_level_m=warning, guaranteed_level_m=round(warning + rng.uniform(0.9, 1.5), 2))
        stations.append(st)
        sensors.append(_sensor(st, f"WL{v.code[6:]}{n:02d}", SensorType.WATER_LEVEL, round(base - 5),
                               round(base + 20)))
        bases[sensors[-1]["code"]] = base

    # Reservoir stations at the registry's reservoirs (防护目标 of type reservoir).
    for site in sorted(rng.sample(reservoirs, min(RESERVOIR_STATIONS, len(reservoirs))), key=lambda s: s.code):
        v = site.region
        n = next_n("SK" + v.code)
        base = round(60 + (119.87 - site.lon) * 260 + rng.uniform(-10, 10), 2)
        warning = round(base + rng.uniform(0.8, 1.6), 2)  # 汛限水位 above the pre-storm pool
        st = _station(f"SK{v.code[6:]}{n:02d}", f"{site.name.split('(')[0]}水位站", v, site.lon, site.lat,
                      StationType.RESERVOIR, rng, warning_level_m=warning,
                      guaranteed_level_m=round(warning + rng.uniform(1.5, 2.5), 2))
        stations.append(st)
        sensors.append(_sensor(st, f"WL{v.code[6:]}{n:02d}", SensorType.WATER_LEVEL, round(base - 10),
                               round(base + 20)))
        bases[sensors[-1]["code"]] = base

    # Displacement (GNSS) stations on major and high geological risk zones, majors first.
    majors = [h for h in geo_hazards if h.risk_level == "major"][:SLOPE_STATIONS // 2]
    rest = [h for h in geo_hazards if h not in majors]
    picks = majors + rng.sample(rest, min(len(rest), SLOPE_STATIONS - len(majors)))
    for h in sorted(picks, key=lambda h: h.code):
        v = h.region
        n = next_n("JC" + v.code)
        st = _station(f"JC{v.code[6:]}{n:02d}", f"{h.name}位移监测站", v, h.lon, h.lat, StationType.DISPLACEMENT,
                      rng, hazard=h)
        stations.append(st)
        sensors.append(_sensor(st, f"DP{v.code[6:]}{n:02d}", SensorType.DISPLACEMENT, -50, 2000))

    # Combustible-gas detectors at hazardous-chemical enterprises, the riskiest first.
    for h in sorted(hazchem, key=lambda h: ({"major": 0, "high": 1}.get(h.risk_level, 2), h.code))[:GAS_DETECTORS]:
        v = h.region
        n = next_n("QT" + v.code)
        st = _station(f"QT{v.code[6:]}{n:02d}", f"{h.name}可燃气体监测点", v, h.lon, h.lat, StationType.GAS, rng,
                      hazard=h)
        stations.append(st)
        sensors.append(_sensor(st, f"GS{v.code[6:]}{n:02d}", SensorType.GAS, 0, 100))
    return {"stations": stations, "sensors": sensors, "bases": bases}


def history_rows(sensors: list[Sensor], rng: random.Random, start: datetime, end: datetime,
                 bases: dict[str, float]) -> list[tuple]:
    """Hourly dry-weather readings (sensor_id, ts, value) in [start, end): a passing shower in the west,
    water levels with a small daily swing, slopes creeping a fraction of a millimetre a day, gas near zero."""
    rows = []
    hours = []
    t = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while t < end:
        hours.append(t)
        t += timedelta(hours=1)
    shower = {h for h in hours[len(hours) // 4: len(hours) // 4 + 5]}  # a weak shower ~1.5 days ago
    for s in sensors:
        if s.sensor_type == SensorType.RAINFALL:
            west = max(0.0, min(1.0, (119.6 - s.lon) / 0.6))
            for h in hours:
                wet = h in shower and rng.random() < 0.25 + 0.6 * west
                rows.append((s.pk, h, round(rng.uniform(0.2, 2.5) * (0.5 + west), 1) if wet else 0.0))
        elif s.sensor_type == SensorType.WATER_LEVEL:
            base = bases.get(s.code, (s.station.warning_level_m or 12.5) - 2.5 if s.station_id else 10.0)
            for i, h in enumerate(hours):
                swing = 0.04 * math.sin(2 * math.pi * (h.hour + 8) / 24)
                rows.append((s.pk, h, round(base + swing - 0.0015 * (len(hours) - i) + rng.gauss(0, 0.006), 3)))
        elif s.sensor_type == SensorType.DISPLACEMENT:
            value, creep = rng.uniform(8, 45), rng.uniform(0.05, 0.3) / 24
            for h in hours:
                value += creep
                rows.append((s.pk, h, round(value + rng.gauss(0, 0.15), 2)))
        elif s.sensor_type == SensorType.GAS:
            for h in hours:
                rows.append((s.pk, h, round(max(0.0, rng.gauss(0.6, 0.4)), 1)))
    return rows


def build_network(actor, rng: random.Random, *, now: datetime | None = None) -> dict[str, int]:
    """Create the demo network and its history through the services; call inside the demo's transaction."""
    from tianmu.registry.models import HazardSource, ProtectedSite

    now = now or timezone.now()
    villages = list(Region.objects.filter(level="village").select_related("parent").order_by("code"))
    geo = list(HazardSource.objects.filter(hazard_type="geological", risk_level__in=["major", "high"])
               .select_related("region", "region__parent").order_by("code"))
    chem = list(HazardSource.objects.filter(hazard_type="hazchem").select_related("region", "region__parent")
                .order_by("code"))
    reservoirs = list(ProtectedSite.objects.filter(site_type="reservoir").select_related("region", "region__parent")
                      .order_by("code"))
    plan = plan_network(villages, geo, chem, reservoirs, rng)

    bulk_create_records(actor, get_kind("stations"), [Station(**row) for row in plan["stations"]],
                        event_type="generated")
    by_code = Station.objects.in_bulk([row["code"] for row in plan["stations"]], field_name="code")
    sensors = []
    for row in plan["sensors"]:
        st = by_code[row["station"]]
        sensors.append(Sensor(**{**row, "station": st, "region": st.region, "lon": st.lon, "lat": st.lat}))
    bulk_create_records(actor, get_kind("sensors"), sensors, event_type="generated")

    created = list(Sensor.objects.filter(code__in=[s.code for s in sensors]).select_related("station")
                   .order_by("code"))
    end = now - timedelta(hours=DEMO_STORM_HOURS)
    rows = history_rows(created, rng, end - timedelta(hours=HISTORY_HOURS), end, plan["bases"])
    for i in range(0, len(rows), 20_000):
        store_readings(rows[i:i + 20_000], received_at=now)
    return {"stations": len(plan["stations"]), "sensors": len(sensors), "readings": len(rows)}


def build_network_step(ctx) -> dict[str, int]:
    """The demo step "sensing.network" (SensingConfig.demo_steps): the network and its dry-weather history."""
    return build_network(ctx.actor, ctx.rng)
