"""The sensors and thresholds that ingest checks and rules evaluate against, kept between batches in one
shared instance, `directory` (read only; reloaded when the registry changes)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ..models import Sensor, Threshold

# What checking and rule evaluation read of a sensor, its station and region (not the descriptive columns).
SENSOR_COLUMNS = ("code", "name", "sensor_type", "unit", "valid_min", "valid_max", "interval_s", "retired",
                  "station", "region", "station__code", "station__name", "station__warning_level_m",
                  "station__guaranteed_level_m", "region__code", "region__name", "region__level", "region__parent")


def _sensors():
    return Sensor.objects.select_related("station", "region").only(*SENSOR_COLUMNS)


class SensorDirectory:
    """The sensors ingest checks and evaluates, by code, and the alarm thresholds: kept between batches and
    reloaded whenever the sensors, stations or thresholds changed, which one aggregate query per batch detects
    (row count, newest update and highest id of each table; every edit goes through save(), which stamps
    updated_at). Building the model instances of every sensor for every batch took a quarter of the MQTT
    worker's time.

    The instances are shared and must only be read. A region renamed without any sensor or station change is
    seen at the next such change or restart (regions are only used for their id and code here)."""

    VERSION_SQL = " UNION ALL ".join(
        f"SELECT count(*), max(updated_at), max(id) FROM {table}"
        for table in ("sensing_sensor", "sensing_station", "sensing_threshold", "registry_hazardsource"))

    def __init__(self):
        self._state: tuple[tuple, dict[str, Sensor], list[Threshold]] | None = None
        self._zones: tuple[tuple, dict[int, int] | None] | None = None
        self._book = None

    def _current(self) -> tuple[tuple, dict[str, Sensor], list[Threshold]]:
        with transaction.get_connection().cursor() as cur:
            cur.execute(self.VERSION_SQL)
            key = (transaction.get_connection().settings_dict["NAME"], *cur.fetchall())
        state = self._state
        if state is None or state[0] != key:
            state = self._state = (key, {s.code: s for s in _sensors()}, list(Threshold.objects.all()))
        return state

    def by_code(self, codes: Iterable[str]) -> dict[str, Sensor]:
        """The known sensors among these codes (the directory is checked for changes first)."""
        known = self._current()[1]
        return {code: known[code] for code in codes if code in known}

    def thresholds(self) -> list[Threshold]:
        """Every threshold row (the directory is checked for changes first)."""
        return self._current()[2]

    def book(self):
        """The thresholds as a rules.ThresholdBook kept with the directory, so each sensor's rules are worked out
        once, not once per batch (the directory is checked for changes first; a changed threshold, sensor or
        station makes a new book)."""
        from ..rules import ThresholdBook

        key, _sensors_by_code, thresholds = self._current()
        if self._book is None or self._book[0] != key:
            self._book = (key, ThresholdBook([], thresholds))
        return self._book[1]

    def geohazard_gauges(self) -> dict[int, int] | None:
        """{rain gauge id: number of geological-hazard zones it represents}, or None when the registry holds no
        geological-hazard zone at all (then every gauge evaluates the geohazard rule). Recomputed when
        sensors, stations, thresholds or hazard sources change."""
        key = self._current()[0]
        if self._zones is None or self._zones[0] != key:
            self._zones = (key, representing_gauges())
        return self._zones[1]


def representing_gauges() -> dict[int, int] | None:
    """Which rain gauges represent geological-hazard zones (registry hazard sources of type "geological"): for
    each zone, its SENSING_GEOHAZARD_GAUGES_PER_ZONE nearest active rain gauges within
    SENSING_GEOHAZARD_RADIUS_M. Returns {gauge id: zones represented}; None if no zone is registered."""
    import numpy as np

    from tianmu.registry.choices import HazardType
    from tianmu.registry.models import HazardSource

    from ..choices import SensorType
    from ..conf import conf

    qs = HazardSource.objects.filter(hazard_type=HazardType.GEOLOGICAL)
    levels = conf("SENSING_GEOHAZARD_RISK_LEVELS")
    if levels:
        qs = qs.filter(risk_level__in=list(levels))
    zones = np.array(list(qs.values_list("lon", "lat")), dtype=float).reshape(-1, 2)
    if not len(zones):
        return None
    gauges = list(Sensor.objects.filter(sensor_type=SensorType.RAINFALL, retired=False, lon__isnull=False,
                                        lat__isnull=False).values_list("pk", "lon", "lat"))
    if not gauges:
        return {}
    ids = np.array([g[0] for g in gauges])
    pos = np.array([(g[1], g[2]) for g in gauges], dtype=float)
    radius = float(conf("SENSING_GEOHAZARD_RADIUS_M"))
    per_zone = max(1, int(conf("SENSING_GEOHAZARD_GAUGES_PER_ZONE")))
    out: dict[int, int] = {}
    lat0 = np.radians(zones[:, 1].mean())
    m_per_deg = 111_320.0
    for start in range(0, len(zones), 2000):  # equirectangular distances, at most 2,000 zones × gauges at once
        z = zones[start:start + 2000]
        dx = (z[:, None, 0] - pos[None, :, 0]) * np.cos(lat0) * m_per_deg
        dy = (z[:, None, 1] - pos[None, :, 1]) * m_per_deg
        d = np.hypot(dx, dy)
        nearest = np.argsort(d, axis=1)[:, :per_zone]
        for row, cols in enumerate(nearest):
            for col in cols:
                if d[row, col] <= radius:
                    out[int(ids[col])] = out.get(int(ids[col]), 0) + 1
    return out


directory = SensorDirectory()
