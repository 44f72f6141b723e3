"""What sensing gives the authorisation matrix (declared on SensingConfig.matrix): an alarm in town B (蔺镇) for
the routes that take an alarm or a station group, the check that no refused write touched it, and a fresh
write case for every sensing route that changes something."""

from __future__ import annotations

import io
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tianmu.core.plugins import MatrixObjects, WriteCase


def matrix_objects(records, world) -> MatrixObjects:
    from tianmu.sensing.choices import Level
    from tianmu.sensing.models import Alarm, Reading

    sensor = records["sensors"]["b"]
    station = records["stations"]["b"]

    def new_alarm() -> Alarm:
        return Alarm.objects.create(rule="rainstorm", metric="rain_3h", sensor=sensor, station=None,
                                    region=sensor.region, level=Level.RED, peak_level=Level.RED, value=120,
                                    threshold=100)

    alarm = new_alarm()

    def unchanged(role: str) -> None:
        alarm.refresh_from_db()
        assert alarm.status == "open" and alarm.acknowledged_by is None and alarm.closed_by is None, role

    def fresh_alarm_case(action: str, key: str, **body) -> WriteCase:
        Alarm.objects.filter(sensor=sensor, status__in=["open", "acknowledged"]).update(status="closed")
        a = new_alarm()
        if key == "seen":
            body = {"note": "", "seen": [{"id": a.pk, "level": a.level}]}
        return WriteCase(action, params={"alarm_id": str(a.pk), "pk": str(a.pk), "key": sensor.code}, body=body)

    def reading_count() -> int:
        return Reading.objects.filter(sensor=sensor).count()

    stamp = iter(range(1, 10_000))

    def readings_case() -> WriteCase:
        ts = (timezone.now() - timezone.timedelta(minutes=next(stamp))).isoformat()
        return WriteCase("sensing.readings.submit",
                         body={"readings": [{"sensor": sensor.code, "ts": ts, "value": 1.5}]},
                         fingerprint=reading_count)

    def readings_import_case() -> WriteCase:
        ts = (timezone.now() - timezone.timedelta(hours=1, minutes=next(stamp))).isoformat()
        csv = io.BytesIO(f"sensor,ts,value\n{sensor.code},{ts},2.5\n".encode())
        return WriteCase("sensing.readings.submit", multipart=True, fingerprint=reading_count,
                         body={"file": SimpleUploadedFile("r.csv", csv.getvalue()), "dry_run": "false"})

    levels = iter(range(50, 10_000))

    def threshold_cases() -> list[WriteCase]:
        """A station's override (its writers) and a type default (district-level writers)."""
        body = {"rule": "rainstorm", "metric": "rain_3h", "sensor_type": "rainfall"}
        return [WriteCase("sensing.threshold.set", body={**body, "station": station.code, "red": float(next(levels))}),
                WriteCase("sensing.threshold.set_default", body={**body, "red": float(next(levels))})]

    from tianmu.sensing.models import Basin

    basin_codes = iter(range(1, 10_000))

    def basin_count() -> int:
        return Basin.objects.count()

    def basin_import_case(multipart_key: str) -> WriteCase:
        """A new district basin from a GeoJSON upload: district-level writers only (a basin crossing towns
        belongs to the district), confirmed (dry_run false) so an allowed write adds one basin."""
        code = f"MX-{next(basin_codes)}"
        d = world["district"]
        w, s = d.lon - 0.05, d.lat - 0.05
        fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": code, "name": code},
              "geometry": {"type": "Polygon", "coordinates": [[[w, s], [w + 0.1, s], [w + 0.1, s + 0.1],
                                                                [w, s + 0.1], [w, s]]]}}]}
        upload = SimpleUploadedFile("b.geojson", json.dumps(fc).encode())
        return WriteCase("sensing.basins.import", multipart=True, fingerprint=basin_count,
                         body={multipart_key: upload, "dry_run": "false"})

    api = "/api/v1/sensing"
    return MatrixObjects(
        # key: a per-station alarm group, here the stand-alone sensor's (the record kind's example has no station).
        params={"code": sensor.code, "alarm_id": str(alarm.pk), "action": "acknowledge", "key": sensor.code,
                "name": "acknowledge"},
        route_params={"alarm": {"pk": str(alarm.pk)}},
        unchanged=[unchanged],
        writes={
            f"POST {api}/alarms/{{alarm_id}}/acknowledge":
                lambda: fresh_alarm_case("sensing.alarm.acknowledge", "note", note="已查看"),
            f"POST {api}/alarms/by-station/{{key}}/acknowledge":
                lambda: fresh_alarm_case("sensing.alarm.acknowledge", "seen"),
            f"POST {api}/alarms/{{alarm_id}}/close":
                lambda: fresh_alarm_case("sensing.alarm.close", "note", note="已处置"),
            f"POST {api}/readings": readings_case,
            f"POST {api}/readings/import": readings_import_case,
            f"PUT {api}/thresholds": threshold_cases,
            f"POST {api}/basins/import": lambda: basin_import_case("file"),
            "POST sensing/basins/import/": lambda: basin_import_case("file"),
            "POST sensing/alarms/<int:pk>/acknowledge/":
                lambda: fresh_alarm_case("sensing.alarm.acknowledge", "note", note="已查看"),
            "POST sensing/alarms/<int:pk>/close/": lambda: fresh_alarm_case("sensing.alarm.close", "note",
                                                                            note="已处置"),
            "POST wf/<str:key>/<int:pk>/<str:name>/": lambda: _generic(
                fresh_alarm_case("sensing.alarm.acknowledge", "note", note="已查看")),
            "POST sensing/alarms/by-station/<path:key>/acknowledge/": lambda: _page_seen(
                fresh_alarm_case("sensing.alarm.acknowledge", "seen")),
        },
    )


def _page_seen(case: WriteCase) -> WriteCase:
    """The page form posts `seen` as "id:level" pairs separated by spaces."""
    case.body = {"note": "", "seen": " ".join(f"{s['id']}:{s['level']}" for s in case.body["seen"])}
    return case


def _generic(case: WriteCase) -> WriteCase:
    """The same transition through core's generic page view (wf/<lifecycle>/<id>/<transition>/)."""
    case.params.update({"key": "sensing.alarm", "name": "acknowledge"})
    return case
