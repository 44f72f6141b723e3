"""Sensing settings with their defaults, declared on SensingConfig (core.plugins): set any of them in
settings.py, or the environment variables named here. Values marked [U] in docs/sensing.md are unverified
defaults that a district should confirm."""

from __future__ import annotations

import hashlib
import os

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from tianmu.core.plugins import setting

__all__ = ["conf", "DEFAULTS", "mqtt_client_id"]

DEFAULTS = {
    # MQTT
    # Fixed client id = the broker keeps our session. Set it in production; empty means "tianmu-ingest-" + a
    # hash of the database, so two checkouts or test runs sharing one broker never take each other's messages.
    "SENSING_MQTT_CLIENT_ID": os.environ.get("TIANMU_MQTT_CLIENT_ID", ""),
    "SENSING_MQTT_TOPIC_PREFIX": os.environ.get("TIANMU_MQTT_TOPIC_PREFIX", "tianmu/v1"),
    "SENSING_MQTT_SHARE_GROUP": os.environ.get("TIANMU_MQTT_SHARE_GROUP", ""),  # e.g. "ingest" for several workers
    "SENSING_MQTT_KEEPALIVE": 30,
    # Batching: flush after this many readings, or when the oldest queued message has waited this long.
    "SENSING_BATCH_MAX_READINGS": int(os.environ.get("TIANMU_INGEST_BATCH", "2000")),
    "SENSING_BATCH_MAX_WAIT_MS": int(os.environ.get("TIANMU_INGEST_WAIT_MS", "200")),
    "SENSING_MAX_PAYLOAD_BYTES": 1_000_000,
    "SENSING_MAX_BATCH_READINGS": 5000,
    # A reading more than this far in the future (device clock) is refused.
    "SENSING_MAX_FUTURE_SECONDS": 600,
    # Daily aggregates: the observation day starts at this local hour (hydrological day 08:00–08:00) [U].
    "SENSING_DAY_START_HOUR": 8,
    # Antecedent precipitation index P_a,t+1 = K·(P_a,t + P_t), K typically 0.85–0.95 [U].
    "SENSING_API_K": float(os.environ.get("TIANMU_API_K", "0.85")),
    "SENSING_API_DAYS": 15,
    # The soil state is judged from the antecedent index at t − W: the rain before the evaluation window, storm
    # rain included. W in hours, one of the rain windows (1/3/6/12/24); 6 = the longest flash-flood duration [U].
    "SENSING_SOIL_WINDOW_HOURS": int(os.environ.get("TIANMU_SOIL_WINDOW_HOURS", "6")),
    # Soil state from P_a (mm) [U]: dry below the first value, wet from the second.
    "SENSING_SOIL_DRY_BELOW": 15.0,
    "SENSING_SOIL_WET_FROM": 40.0,
    # Hysteresis: an alarm de-escalates only after the value stays below (1 - margin) × the current level's
    # threshold for this many consecutive evaluations.
    "SENSING_HYSTERESIS_MARGIN": 0.1,
    "SENSING_DEESCALATE_AFTER": 3,
    # Metrics measured from a datum use a fixed hysteresis band in their unit instead of the margin [U].
    "SENSING_HYSTERESIS_BANDS": {"water_level": 0.2},
    # Rules run at every new reading's time. A reading older than its sensor's newest (a late one) re-evaluates
    # its windows if it is at most this many hours older; older ones are stored and evaluate nothing.
    "SENSING_LATE_LOOKBACK_HOURS": float(os.environ.get("TIANMU_LATE_LOOKBACK_HOURS", "6")),
    # Rainfall products (rainfall.py). A rain event (过程) is the wet hours (≥ WET_MM) back from a time until
    # DRY_HOURS dry hours in a row, looked for at most MAX_HOURS back [U].
    "SENSING_EVENT_DRY_HOURS": 12,
    "SENSING_EVENT_WET_MM": 0.1,
    "SENSING_EVENT_MAX_HOURS": 168,
    # Map colour classes: lower bounds (mm) per window in hours. 12 h and 24 h: GB/T 28592-2012 降水量等级
    # (小雨 … 特大暴雨) [C]; 1 h: the common hourly intensity grades [U]; 3 h and 6 h take the 12 h grades [U].
    "SENSING_RAIN_CLASSES": {
        "1": [0.1, 2.6, 8.1, 16.0, 30.0, 50.0],
        "3": [0.1, 5.0, 15.0, 30.0, 70.0, 140.0],
        "6": [0.1, 5.0, 15.0, 30.0, 70.0, 140.0],
        "12": [0.1, 5.0, 15.0, 30.0, 70.0, 140.0],
        "24": [0.1, 10.0, 25.0, 50.0, 100.0, 250.0],
    },
    # The colours of China's rainfall maps (light green … maroon) [C].
    "SENSING_RAIN_CLASS_COLORS": ["#a6f28f", "#3dba3d", "#61b8ff", "#0000fe", "#fa00fa", "#800040"],
    # The interpolated surface: about this many grid cells over the region, inverse-distance power.
    "SENSING_RAIN_GRID_CELLS": 12000,
    "SENSING_RAIN_IDW_POWER": 2.0,
    # River basins (流域, basins.py): GeoJSON import limits, and how far an outline may reach past the district
    # boundary (survey and digitising error; clip real basins to the district first) [U].
    "SENSING_BASIN_MAX_BYTES": 10 * 1024 * 1024,
    "SENSING_BASIN_MAX_FEATURES": 500,
    "SENSING_BASIN_MAX_VERTICES": 50_000,
    "SENSING_BASIN_MIN_KM2": 0.05,
    "SENSING_BASIN_MAX_KM2": 4000.0,
    "SENSING_BASIN_OUTSIDE_M": 1000.0,
    # A basin's areal rainfall needs a reporting gauge inside it or within this distance of it; otherwise it is
    # shown as "no gauge" (无站), not as 0 mm [U].
    "SENSING_BASIN_GAUGE_NEAR_M": 5000.0,
    # Geological-hazard rainfall alarms belong to the zones a gauge represents: each registered geological
    # hazard zone is represented by its N nearest rain gauges within this distance; other gauges do not
    # evaluate the geohazard rule (when no zone is registered at all, every gauge does) [U].
    "SENSING_GEOHAZARD_RADIUS_M": float(os.environ.get("TIANMU_GEOHAZARD_RADIUS_M", "3000")),
    "SENSING_GEOHAZARD_GAUGES_PER_ZONE": 1,
    # Only zones of these risk levels (registry risk_level: low/medium/high/major) count; empty = all [U].
    "SENSING_GEOHAZARD_RISK_LEVELS": [],
    # Flash-flood critical rainfall (准备转移 / 立即转移) is defined per flash-flood danger zone (山洪灾害危险区, a
    # protected village), not per gauge: each registered danger zone is represented by its N nearest rain gauges
    # within this distance (wider than a slope's: a village's flash flood comes from the small basin above it);
    # other gauges do not evaluate the flash_flood rule (when no danger zone is registered, every gauge does) [U].
    "SENSING_FLASH_FLOOD_RADIUS_M": float(os.environ.get("TIANMU_FLASH_FLOOD_RADIUS_M", "5000")),
    "SENSING_FLASH_FLOOD_GAUGES_PER_ZONE": 1,
    "SENSING_FLASH_FLOOD_RISK_LEVELS": [],
    # An alarm whose condition has been cleared for this many hours of the sensor's own data closes itself
    # with a reason, unless it ever reached a level above SENSING_AUTO_CLOSE_MAX_LEVEL (a person closes
    # those). 0 switches it off [U].
    "SENSING_AUTO_CLOSE_AFTER_HOURS": float(os.environ.get("TIANMU_AUTO_CLOSE_AFTER_HOURS", "6")),
    "SENSING_AUTO_CLOSE_MAX_LEVEL": "orange",
    # Device faults.
    "SENSING_NO_DATA_INTERVALS": 3,
    "SENSING_STUCK_READINGS": {"water_level": 24, "soil_moisture": 48},
    "SENSING_FAULT_LEVELS": {"no_data": "yellow", "stuck": "blue", "out_of_range": "blue"},
}


_cache: dict[str, object] = {}


def conf(name: str):
    """A sensing setting: settings.py first, then its default here. Remembered until a setting changes (rule
    evaluation reads a dozen settings per sensor and reading: through Django's lazy settings that was ~6 % of an
    ingest worker's time in a storm, bench/sensing_ingest.py --profile worker_storm --cprofile)."""
    try:
        return _cache[name]
    except KeyError:
        value = _cache[name] = setting(name, DEFAULTS[name])
        return value


@receiver(setting_changed)
def _forget(**kwargs) -> None:
    _cache.clear()


def mqtt_client_id() -> str:
    """The ingest worker's fixed MQTT client id: the setting, or one derived from the database's identity."""
    value = conf("SENSING_MQTT_CLIENT_ID")
    if value:
        return value
    db = settings.DATABASES["default"]
    ident = f"{db['ENGINE']}|{db.get('HOST') or ''}|{db.get('PORT') or ''}|{db['NAME']}"
    return "tianmu-ingest-" + hashlib.sha256(ident.encode()).hexdigest()[:8]
