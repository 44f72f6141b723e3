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
        for table in ("sensing_sensor", "sensing_station", "sensing_threshold"))

    def __init__(self):
        self._state: tuple[tuple, dict[str, Sensor], list[Threshold]] | None = None

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


directory = SensorDirectory()
