"""What sensing gives the authorisation matrix (declared on SensingConfig.matrix): an alarm in town B (蔺镇) for
the routes that take an alarm or a station group, and the check that no refused write touched it."""

from __future__ import annotations

from tianmu.core.plugins import MatrixObjects


def matrix_objects(records, world) -> MatrixObjects:
    from tianmu.sensing.choices import Level
    from tianmu.sensing.models import Alarm

    sensor = records["sensors"]["b"]
    alarm = Alarm.objects.create(rule="rain_3h", metric="rain_3h", sensor=sensor, station=sensor.station,
                                 region=sensor.region, level=Level.RED, peak_level=Level.RED, value=120,
                                 threshold=100)

    def unchanged(role: str) -> None:
        alarm.refresh_from_db()
        assert alarm.status == "open" and alarm.acknowledged_by is None and alarm.closed_by is None, role

    # key: a per-station alarm group, here the stand-alone sensor's (the record kind's example has no station).
    return MatrixObjects(params={"code": sensor.code, "alarm_id": str(alarm.pk), "action": "acknowledge",
                                 "key": sensor.code},
                         route_params={"alarm": {"pk": str(alarm.pk)}},
                         unchanged=[unchanged])
