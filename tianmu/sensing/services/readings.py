"""Storing readings from the broker (`ingest_messages`) and from gateways over HTTP (`submit_readings`):
parsed readings are checked against the registry, stored idempotently and their sensors evaluated. A message
the worker cannot use becomes a DeadLetter with its reason, in the same transaction as the rest of its batch."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ScopeError, ServiceError, bilingual
from tianmu.core.models import DeadLetter
from tianmu.core.scope import can

from ..conf import conf
from ..models import Sensor
from ..parsing import ParsedReading, Rejection, latest_allowed, parse_item, parse_message, sanitize_text
from ..storage import latest_times, store_readings
from .alarms import evaluate_sensors
from .directory import directory

__all__ = ["IngestOutcome", "ingest_messages", "submit_readings", "can_submit_readings", "MAX_HTTP_READINGS"]

logger = logging.getLogger("tianmu.sensing")

MAX_HTTP_READINGS = 5000
STORE_CHUNK = 5000


# ---- who may submit readings -----------------------------------------------------------------------------------

def can_submit_readings(actor, region=None) -> bool:
    """Write roles and department gateways (api_client) submit readings for sensors in their home region
    (the "sensing.readings.submit" row of the permission table, SensingConfig.permissions)."""
    return can(actor, "sensing.readings.submit", region)


def _check_submit_role(actor) -> None:
    if not can_submit_readings(actor):
        raise ScopeError(_("您的角色没有提交监测数据的权限"))


# ---- checking parsed readings against the registry -------------------------------------------------------------

@dataclass
class _Checked:
    """Parsed readings sorted into those to store, those refused, and out-of-range ones (device faults)."""

    accepted: list[tuple[Sensor, ParsedReading]] = field(default_factory=list)
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)  # (position in input, rejection)
    out_of_range: list[tuple[Sensor, ParsedReading]] = field(default_factory=list)
    sensors: dict[int, Sensor] = field(default_factory=dict)  # every known sensor of the batch, by id


def _reading_json(p: ParsedReading) -> str:
    return json.dumps({"sensor": p.sensor, "ts": p.ts.isoformat(), "value": p.value}, ensure_ascii=False)




def _check(parsed: list[ParsedReading], *, actor=None) -> _Checked:
    out = _Checked()
    sensors = directory.by_code({p.sensor for p in parsed})
    out.sensors = {s.pk: s for s in sensors.values()}
    for pos, p in enumerate(parsed):
        s = sensors.get(p.sensor)
        problem = None
        if s is None:
            problem = ("unknown_sensor", _("未登记的传感器编码:%(code)s") % {"code": p.sensor}, "sensor")
        elif not s.active:
            problem = ("sensor_inactive", _("传感器已停用:%(code)s") % {"code": p.sensor}, "sensor")
        elif p.station is not None and s.station_id and s.station.code != p.station:
            problem = ("station_mismatch", _("主题中的监测站编码与传感器所属监测站不一致"), "sensor")
        elif actor is not None and not can_submit_readings(actor, s.region):
            problem = ("out_of_scope", _("该传感器不在您的管辖范围内"), "sensor")
        elif not s.in_range(p.value):
            problem = ("out_of_range", _("数值超出传感器量程(%(lo)s ~ %(hi)s)") % {
                "lo": "" if s.valid_min is None else s.valid_min, "hi": "" if s.valid_max is None else s.valid_max},
                "value")
            out.out_of_range.append((s, p))
        if problem:
            code, message, fld = problem
            out.rejected.append((pos, Rejection(code, message, p.index, fld, _reading_json(p))))
        else:
            out.accepted.append((s, p))
    return out


# ---- ingest ----------------------------------------------------------------------------------------------------

@dataclass
class IngestOutcome:
    """What one batch did (summed over batches by the worker's and the demo feed's reports)."""

    readings: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    alarm_changes: int = 0

    def add(self, other: IngestOutcome) -> None:
        for f in fields(IngestOutcome):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _store(accepted: list[tuple[Sensor, ParsedReading]], received_at: datetime) -> list:
    rows = [(s.pk, p.ts, p.value) for s, p in accepted]
    new = []
    for i in range(0, len(rows), STORE_CHUNK):
        new.extend(store_readings(rows[i:i + STORE_CHUNK], received_at=received_at))
    return new


def _evaluate_guarded(sensor_ids: set[int], now: datetime, faults: list[tuple[Sensor, ParsedReading]],
                      sensors: dict[int, Sensor] | None = None, new: list | None = None,
                      previous: dict | None = None) -> int:
    """Evaluate rules in a savepoint at every new reading's time: a bug in a rule is logged as a dead letter,
    never blocks storage."""
    readings: dict[int, list] = {}
    for sid, ts, value in new or ():
        readings.setdefault(sid, []).append((ts, value))
    try:
        with transaction.atomic():
            return evaluate_sensors(sensor_ids, now=now, out_of_range=faults, sensors=sensors, readings=readings,
                                    previous=previous or {})
    except Exception as exc:  # noqa: BLE001 - readings must still be stored and acknowledged
        logger.exception("rule evaluation failed for sensors %s", sorted(sensor_ids)[:20])
        DeadLetter.objects.create(source="rules", key=f"sensors:{len(sensor_ids)}",
                                  payload=json.dumps(sorted(sensor_ids)[:1000]),
                                  reason=sanitize_text(f"rule_error: {exc!r}"))
        return 0


def _without_redelivered(letters: list[tuple[DeadLetter, bool]]) -> list[DeadLetter]:
    """Dead letters, minus those a redelivered message (MQTT DUP flag) already left: QoS 1 is at least once."""
    keys = {letter.key for letter, redelivered in letters if redelivered}
    if not keys:
        return [letter for letter, _r in letters]
    seen = set(DeadLetter.objects.filter(source="mqtt", key__in=keys).order_by("-id")
               .values_list("key", "payload", "reason")[:10_000])
    return [letter for letter, redelivered in letters
            if not (redelivered and (letter.key, letter.payload, letter.reason) in seen)]


def ingest_messages(messages: Iterable[tuple], *, prefix: str | None = None,
                    now: datetime | None = None) -> IngestOutcome:
    """Store one batch of broker messages (topic, payload[, redelivered]) in one transaction and evaluate the
    sensors whose new readings arrived. Whatever cannot be used becomes a dead letter; nothing here raises for
    bad input. Readings are idempotent; a redelivered message does not leave its dead letters twice."""
    prefix = prefix or conf("SENSING_MQTT_TOPIC_PREFIX")
    now = now or timezone.now()
    outcome = IngestOutcome()
    parsed: list[ParsedReading] = []
    origin: list[tuple[str, bool]] = []
    letters: list[tuple[DeadLetter, bool]] = []
    for topic, payload, *flags in messages:
        redelivered = bool(flags and flags[0])
        readings, rejections = parse_message(topic, payload, prefix=prefix, now=now,
                                             max_bytes=conf("SENSING_MAX_PAYLOAD_BYTES"),
                                             max_readings=conf("SENSING_MAX_BATCH_READINGS"))
        parsed.extend(readings)
        origin.extend([(topic, redelivered)] * len(readings))
        letters.extend((DeadLetter(source="mqtt", key=sanitize_text(topic, 200), payload=r.payload,
                                   reason=r.reason(), created_at=now), redelivered) for r in rejections)
    with transaction.atomic():
        checked = _check(parsed)
        letters.extend((DeadLetter(source="mqtt", key=sanitize_text(origin[pos][0], 200), payload=r.payload,
                                   reason=r.reason(), created_at=now), origin[pos][1]) for pos, r in checked.rejected)
        previous = latest_times(s.pk for s, _p in checked.accepted)
        new = _store(checked.accepted, now)
        kept = _without_redelivered(letters)
        DeadLetter.objects.bulk_create(kept, batch_size=500)
        touched = {sid for sid, _ts, _v in new}
        if touched or checked.out_of_range:
            outcome.alarm_changes = _evaluate_guarded(touched, now, checked.out_of_range, checked.sensors, new,
                                                      previous)
    outcome.readings = len(checked.accepted)
    outcome.stored = len(new)
    outcome.duplicates = len(checked.accepted) - len(new)
    outcome.dead_letters = len(kept)
    return outcome


def submit_readings(actor, items, *, now: datetime | None = None) -> dict:
    """Readings posted by a gateway: valid ones are stored, each refused one is reported with its index."""
    _check_submit_role(actor)
    if not isinstance(items, list):
        raise ServiceError({"readings": [_("readings 应为列表")]})
    if len(items) > MAX_HTTP_READINGS:
        raise ServiceError({"readings": [_("一次最多提交 5000 条读数")]})
    now = now or timezone.now()
    latest = latest_allowed(now)
    parsed, errors = [], []
    for i, obj in enumerate(items):
        item = parse_item(obj, index=i, now=now, latest=latest)
        if isinstance(item, Rejection):
            errors.append(item)
        else:
            parsed.append(item)
    with transaction.atomic():
        checked = _check(parsed, actor=actor)
        errors.extend(r for _pos, r in checked.rejected)
        previous = latest_times(s.pk for s, _p in checked.accepted)
        new = _store(checked.accepted, now)
        touched = {sid for sid, _ts, _v in new}
        if touched or checked.out_of_range:
            _evaluate_guarded(touched, now, checked.out_of_range, checked.sensors, new, previous)
    out = []
    for r in sorted(errors, key=lambda r: r.index or 0):
        text = bilingual(r.message)
        out.append({"index": r.index, "field": r.field or "__all__", "code": r.code, "message": text["zh"],
                    "message_en": text["en"]})
    return {"received": len(items), "accepted": len(checked.accepted), "stored": len(new),
            "duplicates": len(checked.accepted) - len(new), "errors": out}
