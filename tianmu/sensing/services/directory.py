"""The sensors and thresholds that ingest checks and rules evaluate against, kept between batches in one
shared instance, `directory` (read only; reloaded when the registry changes)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from tianmu.registry.choices import HazardType

from ..choices import Rule
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
        self._zones: tuple[tuple, dict[str, Representation]] | None = None
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

    def representation(self) -> dict[str, Representation]:
        """{rule: its representation map} for the rules that belong to hazard zones (ZONE_RULES). Recomputed
        when sensors, stations, thresholds or hazard sources change."""
        key = self._current()[0]
        if self._zones is None or self._zones[0] != key:
            self._zones = (key, {rule: representing_gauges(rule) for rule in ZONE_RULES})
        return self._zones[1]

    def zones_of(self, sensor_id: int, rule: str) -> tuple[int, ...]:
        """The ids of the hazard zones (registry hazard sources) the gauge represents for this rule: none for a
        rule that belongs to no zones, or while none is registered."""
        rep = self.representation().get(rule)
        return rep.zones.get(sensor_id, ()) if rep is not None and rep.zones is not None else ()


def disabled_rules(sensor: Sensor, representation: dict[str, Representation]) -> frozenset[str]:
    """The zone rules this sensor does not evaluate: those of a rain gauge that represents none of the rule's zones
    (while the registry holds some). Other sensor types have no such rule anyway."""
    from ..choices import SensorType

    if sensor.sensor_type != SensorType.RAINFALL:
        return frozenset()
    return frozenset(rule for rule, rep in representation.items() if not rep.evaluates(sensor.pk))


@dataclass(frozen=True)
class ZoneRule:
    """A rule whose alarms belong to hazard zones of the registry rather than to every gauge: the zones' hazard
    type, and the prefix of its settings (`{prefix}_RADIUS_M`, `{prefix}_GAUGES_PER_ZONE`,
    `{prefix}_RISK_LEVELS`; conf.py, docs/sensing.md)."""

    hazard_type: str
    settings: str


# Rule → the hazard zones it belongs to (issue 9: "not to every gauge"). Geological-hazard rainfall (effective
# rainfall) belongs to the geological-hazard risk zones; flash-flood critical rainfall (准备转移 / 立即转移) is
# defined per flash-flood danger zone (山洪灾害危险区), i.e. per protected village.
ZONE_RULES: dict[str, ZoneRule] = {
    Rule.GEOHAZARD: ZoneRule(HazardType.GEOLOGICAL, "SENSING_GEOHAZARD"),
    Rule.FLASH_FLOOD: ZoneRule(HazardType.FLASH_FLOOD, "SENSING_FLASH_FLOOD"),
}


@dataclass(frozen=True)
class Representation:
    """Which rain gauges represent a zone rule's zones: `zones` = {gauge id: ids of the zones it represents}, or
    None while the registry holds no zone of that type (then every gauge evaluates the rule: the conservative
    fallback of a district that has not loaded its zones)."""

    zones: dict[int, tuple[int, ...]] | None

    def evaluates(self, gauge_id: int) -> bool:
        return self.zones is None or gauge_id in self.zones


def zone_settings(rule: str) -> tuple[float, int, list[str]]:
    """(radius in metres, gauges per zone, risk levels that count or empty for all) of a zone rule."""
    from ..conf import conf

    prefix = ZONE_RULES[rule].settings
    return (float(conf(f"{prefix}_RADIUS_M")), max(1, int(conf(f"{prefix}_GAUGES_PER_ZONE"))),
            list(conf(f"{prefix}_RISK_LEVELS") or []))


def representing_gauges(rule: str) -> Representation:
    """Which rain gauges represent the zones of a zone rule (registry hazard sources of its hazard type): for
    each zone, its N nearest active rain gauges within the rule's radius (`zone_settings`). A zone with no
    gauge that near is represented by none (it shows in no alarm: a gap in the network to close)."""
    import numpy as np

    from tianmu.registry.models import HazardSource

    from ..choices import SensorType

    radius, per_zone, levels = zone_settings(rule)
    qs = HazardSource.objects.filter(hazard_type=ZONE_RULES[rule].hazard_type)
    if levels:
        qs = qs.filter(risk_level__in=levels)
    rows = list(qs.order_by("pk").values_list("pk", "lon", "lat"))
    if not rows:
        return Representation(None)
    zone_ids = [r[0] for r in rows]
    zones = np.array([(r[1], r[2]) for r in rows], dtype=float)
    gauges = list(Sensor.objects.filter(sensor_type=SensorType.RAINFALL, retired=False, lon__isnull=False,
                                        lat__isnull=False).order_by("pk").values_list("pk", "lon", "lat"))
    if not gauges:
        return Representation({})
    ids = np.array([g[0] for g in gauges])
    pos = np.array([(g[1], g[2]) for g in gauges], dtype=float)
    out: dict[int, list[int]] = {}
    lat0 = np.radians(zones[:, 1].mean())
    m_per_deg = 111_320.0
    for start in range(0, len(zones), 2000):  # equirectangular distances, at most 2,000 zones × gauges at once
        z = zones[start:start + 2000]
        dx = (z[:, None, 0] - pos[None, :, 0]) * np.cos(lat0) * m_per_deg
        dy = (z[:, None, 1] - pos[None, :, 1]) * m_per_deg
        d = np.hypot(dx, dy)
        nearest = np.argsort(d, axis=1, kind="stable")[:, :per_zone]
        for row, cols in enumerate(nearest):
            for col in cols:
                if d[row, col] <= radius:
                    out.setdefault(int(ids[col]), []).append(zone_ids[start + row])
    return Representation({gauge: tuple(zs) for gauge, zs in out.items()})


directory = SensorDirectory()
