"""The only code that changes monitoring state: storing readings (from the broker, gateways and CSV history),
evaluating rules into alarms, device-fault checks, and people acknowledging and closing alarms.

Every change runs in one transaction with its domain events (`sensing.alarm.opened`, `….escalated`,
`….deescalated`, `….cleared`, `….acknowledged`, `….closed`; declared in events.py). A message the worker cannot use becomes a
DeadLetter with its reason, written in the same transaction as the rest of its batch.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.choices import WRITE_ROLES, Role
from tianmu.core.errors import ScopeError, ServiceError, bilingual
from tianmu.core.events import emit
from tianmu.core.models import DeadLetter
from tianmu.core.registry.io import ImportReport
from tianmu.core.scope import check_role, check_write, write_prefix

from .choices import ACTIVE_STATUSES, LEVEL_RANK, AlarmKind, AlarmStatus, Level, Rule, level_rank, max_level
from .conf import conf
from .models import Alarm, Sensor, SensorLatest, Station, Threshold
from .parsing import ParsedReading, Rejection, latest_allowed, parse_item, parse_message, sanitize_text
from .rules import Assessment, ThresholdBook, assess_sensor, compute_metrics
from .storage import save_antecedents, store_readings

__all__ = ["IngestOutcome", "ingest_messages", "submit_readings", "import_readings_csv", "evaluate_sensors",
           "check_no_data", "acknowledge_alarm", "acknowledge_station_alarms", "close_alarm", "set_threshold",
           "can_submit_readings",
           "MAX_HTTP_READINGS", "MAX_CSV_ROWS"]

logger = logging.getLogger("tianmu.sensing")

MAX_HTTP_READINGS = 5000
MAX_CSV_ROWS = 200_000
STORE_CHUNK = 5000


# ---- who may submit readings -----------------------------------------------------------------------------------

def can_submit_readings(actor, region=None) -> bool:
    """Write roles and department gateways (api_client) submit readings for sensors in their home region."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    if actor.role not in WRITE_ROLES and actor.role != Role.API_CLIENT:
        return False
    if actor.region_id is None:
        return False
    return region is None or region.code.startswith(actor.region.code)


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
                      sensors: dict[int, Sensor] | None = None) -> int:
    """Evaluate rules in a savepoint: a bug in a rule is logged as a dead letter, never blocks storage."""
    try:
        with transaction.atomic():
            return evaluate_sensors(sensor_ids, now=now, out_of_range=faults, sensors=sensors)
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
        new = _store(checked.accepted, now)
        kept = _without_redelivered(letters)
        DeadLetter.objects.bulk_create(kept, batch_size=500)
        touched = {sid for sid, _ts, _v in new}
        if touched or checked.out_of_range:
            outcome.alarm_changes = _evaluate_guarded(touched, now, checked.out_of_range, checked.sensors)
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
        new = _store(checked.accepted, now)
        touched = {sid for sid, _ts, _v in new}
        if touched or checked.out_of_range:
            _evaluate_guarded(touched, now, checked.out_of_range, checked.sensors)
    out = []
    for r in sorted(errors, key=lambda r: r.index or 0):
        text = bilingual(r.message)
        out.append({"index": r.index, "field": r.field or "__all__", "code": r.code, "message": text["zh"],
                    "message_en": text["en"]})
    return {"received": len(items), "accepted": len(checked.accepted), "stored": len(new),
            "duplicates": len(checked.accepted) - len(new), "errors": out}


# ---- CSV history import ----------------------------------------------------------------------------------------

CSV_HEADERS = {
    "sensor": {"sensor", "sensor_code", "code", "device", "传感器编码", "传感器", "设备编码", "测点编码"},
    "ts": {"ts", "time", "timestamp", "datetime", "时间", "观测时间", "监测时间"},
    "value": {"value", "数值", "值", "监测值", "观测值"},
}


def _decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("csv", data[:1], 0, 1, "not UTF-8 or GB18030")


def _letter(idx: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(idx + 1)


def import_readings_csv(actor, fileobj, *, dry_run: bool = True, now: datetime | None = None) -> ImportReport:
    """History from a CSV file (sensor code, ts, value): a dry run lists every bad row and column; nothing is
    written unless every row passes. Readings already stored are skipped; rules are not evaluated (history)."""
    report = ImportReport(dry_run=dry_run)
    _check_submit_role(actor)
    now = now or timezone.now()
    try:
        data = fileobj.read()
        text = _decode_csv(data if isinstance(data, bytes) else data.encode())
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
    except (UnicodeDecodeError, csv.Error):
        report.add(None, None, None, _("无法读取文件:请上传 UTF-8 或 GBK 编码的 CSV 文件"))
        return report
    if not header or all(not (h or "").strip() for h in header):
        report.add(1, None, None, _("第一行应为列标题"))
        return report
    columns: dict[str, int] = {}
    for idx, title in enumerate(header):
        name = next((n for n, names in CSV_HEADERS.items() if (title or "").strip().lower() in names), None)
        if name is None:
            report.add(1, _letter(idx), None, _("无法识别的列标题:%(title)s") % {"title": title})
        elif name in columns:
            report.add(1, _letter(idx), name, _("列重复:%(title)s") % {"title": title})
        else:
            columns[name] = idx
    for name, label in (("sensor", _("传感器编码")), ("ts", _("时间")), ("value", _("数值"))):
        if name not in columns:
            report.add(1, None, name, _("缺少必需的列:%(title)s") % {"title": label})
    if report.errors:
        return report
    parsed: list[ParsedReading] = []
    latest = latest_allowed(now)
    rownum_of: list[int] = []
    seen: dict[tuple[str, datetime], int] = {}
    try:
        for rownum, values in enumerate(rows, start=2):
            if not any((v or "").strip() for v in values):
                continue
            if report.rows >= MAX_CSV_ROWS:
                report.add(rownum, None, None, _("单次导入最多 200000 行"))
                break
            report.rows += 1
            obj = {name: (values[idx] if idx < len(values) else "") for name, idx in columns.items()}
            item = parse_item(obj, now=now, latest=latest)
            if isinstance(item, Rejection):
                report.add(rownum, _letter(columns.get(item.field, 0)) if item.field in columns else None,
                           item.field, item.message)
                continue
            key = (item.sensor, item.ts)
            if key in seen:
                report.add(rownum, _letter(columns["ts"]), "ts", _("与第 %(row)s 行的传感器和时间重复") % {"row": seen[key]})
                continue
            seen[key] = rownum
            parsed.append(item)
            rownum_of.append(rownum)
    except csv.Error:
        report.add(None, None, None, _("CSV 格式错误"))
        return report
    checked = _check(parsed, actor=actor)
    for pos, r in checked.rejected:
        report.add(rownum_of[pos], _letter(columns[r.field or "sensor"]), r.field, r.message)
    if report.errors or dry_run:
        report.created = 0 if report.errors else len(checked.accepted)
        report.errors.sort(key=lambda e: (e["row"] or 0))
        return report
    with transaction.atomic():
        new = _store(checked.accepted, now)
        report.created = len(new)
        emit("sensing.readings.imported", actor=actor, region=getattr(actor, "region", None), subject="readings",
             payload={"rows": report.rows, "stored": len(new), "skipped": report.rows - len(new)})
    return report


# ---- rule evaluation and alarms --------------------------------------------------------------------------------

def _payload(alarm: Alarm, **extra) -> dict:
    data = {"alarm": alarm.pk, "kind": alarm.kind, "rule": alarm.rule, "metric": alarm.metric, "level": alarm.level,
            "value": alarm.value, "threshold": alarm.threshold, "status": alarm.status,
            "sensor": alarm.sensor.code, "station": alarm.station.code if alarm.station_id else None,
            "observed_at": alarm.observed_at.isoformat() if alarm.observed_at else None}
    data.update(extra)
    return data


def _emit(kind: str, alarm: Alarm, actor=None, **extra) -> None:
    emit(f"sensing.alarm.{kind}", actor=actor, region=alarm.region, subject=alarm.subject(),
         payload=_payload(alarm, **extra))


def _open(sensor: Sensor, *, kind: str, rule: str, metric: str, level: str, value, threshold, at, now) -> Alarm:
    alarm = Alarm.objects.create(kind=kind, rule=rule, metric=metric, sensor=sensor, station=sensor.station,
                                 region=sensor.region, level=level, peak_level=level, value=value,
                                 threshold=threshold, opened_at=now, observed_at=at, last_level_change=now)
    _emit("opened", alarm)
    return alarm


def _apply(sensor: Sensor, a: Assessment, alarm: Alarm | None, metrics: dict, at: datetime,
           now: datetime, quiet: dict[int, Alarm]) -> tuple[Alarm | None, bool]:
    """One rule's assessment applied to its active alarm: open, escalate at once, hold, or de-escalate
    (to the level still reached with the hysteresis margin) after N calm evaluations in a row. An alarm whose
    level does not change is only put in `quiet`, for one bulk update per batch."""
    if alarm is None:
        if a.level is None:
            return None, False
        return _open(sensor, kind=AlarmKind.THRESHOLD, rule=a.rule, metric=a.metric, level=a.level, value=a.value,
                     threshold=a.threshold, at=at, now=now), True
    changed = False
    current = level_rank(alarm.level)
    if a.level is not None and level_rank(a.level) > current:
        before = alarm.level
        alarm.level, alarm.metric, alarm.value, alarm.threshold = a.level, a.metric, a.value, a.threshold
        alarm.peak_level = max_level(alarm.peak_level, a.level)
        alarm.last_level_change, alarm.calm_evaluations, alarm.cleared_at = now, 0, None
        if alarm.status == AlarmStatus.ACKNOWLEDGED:
            alarm.status = AlarmStatus.OPEN  # a higher level needs acknowledging again
        alarm.observed_at = at
        alarm.save()
        _emit("escalated", alarm, from_level=before)
        return alarm, True
    if level_rank(a.calm_level) >= current:
        alarm.calm_evaluations = 0
        alarm.cleared_at = None
    else:
        alarm.calm_evaluations += 1
        if alarm.calm_evaluations >= conf("SENSING_DEESCALATE_AFTER"):
            alarm.calm_evaluations = 0
            if a.calm_level is not None:
                before = alarm.level
                alarm.level, alarm.metric = a.calm_level, a.calm_metric
                alarm.value, alarm.threshold = a.calm_value, a.calm_threshold
                alarm.last_level_change = now
                alarm.observed_at = at
                alarm.save()
                _emit("deescalated", alarm, from_level=before)
                return alarm, True
            if alarm.cleared_at is None:
                alarm.cleared_at = at
                changed = True
    alarm.value = metrics.get(alarm.metric, alarm.value)
    alarm.observed_at = at
    if changed:
        alarm.save()
        _emit("cleared", alarm)
    else:
        quiet[alarm.pk] = alarm  # saved with the batch's other quiet updates
    return alarm, changed


def _fault(sensor: Sensor, rule: str, active: dict, *, value, threshold, at, now,
           quiet: dict[int, Alarm] | None = None) -> bool:
    alarm = active.get((sensor.pk, rule))
    if alarm is not None:
        alarm.value, alarm.observed_at, alarm.cleared_at = value, at, None
        if quiet is None:
            alarm.save(update_fields=["value", "observed_at", "cleared_at"])
        else:
            quiet[alarm.pk] = alarm
        return False
    level = conf("SENSING_FAULT_LEVELS").get(rule, Level.BLUE)
    active[(sensor.pk, rule)] = _open(sensor, kind=AlarmKind.DEVICE_FAULT, rule=rule, metric=rule, level=level,
                                      value=value, threshold=threshold, at=at, now=now)
    return True


def _clear_fault(alarm: Alarm | None, at) -> bool:
    if alarm is None or alarm.cleared_at is not None:
        return False
    alarm.cleared_at = at
    alarm.save(update_fields=["cleared_at"])
    _emit("cleared", alarm)
    return True


QUIET_FIELDS = ["value", "observed_at", "calm_evaluations", "cleared_at"]


def _refresh_alarm_levels(sensor_ids: Iterable[int], active: dict,
                          latest: dict[int, SensorLatest] | None = None) -> None:
    """Each sensor's current alarm level (the highest of its active threshold alarms) on its latest value,
    for the map: the current values (from `latest` when the caller read them in this transaction), then one
    update per level that changed."""
    levels: dict[int, str] = {sid: "" for sid in sensor_ids}
    for (sid, _rule), alarm in active.items():
        if sid in levels and alarm.kind == AlarmKind.THRESHOLD and alarm.status in ACTIVE_STATUSES:
            levels[sid] = max_level(levels[sid] or None, alarm.level) or ""
    latest = latest or {}
    current = {sid: latest[sid].alarm_level for sid in levels if sid in latest}
    unread = [sid for sid in levels if sid not in latest]
    if unread:
        current.update(SensorLatest.objects.filter(pk__in=unread).values_list("pk", "alarm_level"))
    changed: dict[str, list[int]] = {}
    for sid, level in levels.items():
        if sid in current and current[sid] != level:
            changed.setdefault(level, []).append(sid)
    for level, sids in sorted(changed.items()):
        SensorLatest.objects.filter(pk__in=sids).update(alarm_level=level)


def evaluate_sensors(sensor_ids: Iterable[int], *, now: datetime | None = None,
                     out_of_range: list[tuple[Sensor, ParsedReading]] = (),
                     sensors: dict[int, Sensor] | None = None) -> int:
    """Evaluate every rule of these sensors at their latest reading and apply the results to their alarms;
    open out-of-range device faults. Returns the number of alarm changes (opened, level changed, cleared).

    Set-based: the number of queries does not grow with the number of sensors (history through
    `rules.compute_metrics`, one bulk update for antecedent indexes and one for alarms whose level holds);
    only alarms that open or change level are written one by one, with their events. `sensors` may hold the
    sensors already read in this transaction (by ingest's checks), to save reading them again."""
    now = now or timezone.now()
    evaluated = set(sensor_ids)
    ids = evaluated | {s.pk for s, _p in out_of_range}
    if not ids:
        return 0
    if not transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return evaluate_sensors(evaluated, now=now, out_of_range=out_of_range, sensors=sensors)
    known = sensors or {}
    missing = [sid for sid in evaluated if sid not in known]
    if missing:
        known = {**known, **{s.pk: s for s in _sensors().filter(pk__in=missing)}}
    sensors = [known[sid] for sid in sorted(evaluated) if sid in known]  # a fixed order: alarms lock in it
    latest = SensorLatest.objects.in_bulk([s.pk for s in sensors])
    evaluations = compute_metrics(sensors, latest)
    book = ThresholdBook(sensors, directory.thresholds())
    active = {(a.sensor_id, a.rule): a for a in Alarm.objects.select_for_update(of=("self",)).filter(
        sensor_id__in=ids, status__in=ACTIVE_STATUSES).select_related("sensor", "station", "region")
        .defer("region__boundary").order_by("pk")}  # locked in id order, like every batch of alarms
    rules_of: dict[int, set[str]] = {}
    for (sid, rule), a in active.items():
        if a.kind == AlarmKind.THRESHOLD:
            rules_of.setdefault(sid, set()).add(rule)
    changes = 0
    quiet: dict[int, Alarm] = {}
    antecedents: list[SensorLatest] = []
    for s in sensors:
        ev = evaluations.get(s.pk)
        if ev is None:
            continue
        if ev.antecedent_changed:
            lt = latest[s.pk]
            lt.antecedent_index, lt.antecedent_hour = ev.antecedent, ev.antecedent_hour
            antecedents.append(lt)
        for a in assess_sensor(s, ev, book, rules_of.get(s.pk, frozenset())):
            alarm, changed = _apply(s, a, active.get((s.pk, a.rule)), ev.metrics, ev.at, now, quiet)
            if alarm is not None:
                active[(s.pk, a.rule)] = alarm
            changes += changed
        if ev.stuck is not None:
            n, same = ev.stuck
            if same:
                changes += _fault(s, Rule.STUCK, active, value=n, threshold=n, at=ev.at, now=now, quiet=quiet)
            else:
                changes += _clear_fault(active.get((s.pk, Rule.STUCK)), ev.at)
        changes += _clear_fault(active.get((s.pk, Rule.NO_DATA)), ev.at)
        changes += _clear_fault(active.get((s.pk, Rule.OUT_OF_RANGE)), ev.at)
    for s, p in out_of_range:
        bound = s.valid_max if s.valid_max is not None and p.value > s.valid_max else s.valid_min
        changes += _fault(s, Rule.OUT_OF_RANGE, active, value=p.value, threshold=bound, at=p.ts, now=now)
    if antecedents:
        save_antecedents([(lt.pk, lt.antecedent_index, lt.antecedent_hour) for lt in antecedents])
    if quiet:
        Alarm.objects.bulk_update(list(quiet.values()), QUIET_FIELDS, batch_size=1000)
    _refresh_alarm_levels(ids, active, latest)
    return changes


def check_no_data(*, now: datetime | None = None) -> int:
    """Open a device-fault alarm for every active sensor silent for N reporting intervals; returns how many."""
    now = now or timezone.now()
    n = conf("SENSING_NO_DATA_INTERVALS")
    stale = []
    for sid, interval, created, received in Sensor.objects.filter(retired=False).values_list(
            "pk", "interval_s", "created_at", "latest__received_at"):
        last = received or created
        if interval and (now - last).total_seconds() > n * interval:
            stale.append((sid, (now - last).total_seconds(), n * interval))
    if not stale:
        return 0
    opened = 0
    with transaction.atomic():
        sensors = Sensor.objects.select_related("station", "region").in_bulk([sid for sid, _g, _t in stale])
        active = {(a.sensor_id, a.rule): a for a in Alarm.objects.select_for_update(of=("self",)).filter(
            sensor_id__in=list(sensors), rule=Rule.NO_DATA, status__in=ACTIVE_STATUSES).select_related(
            "sensor", "station", "region").defer("region__boundary").order_by("pk")}
        for sid, gap, limit in stale:
            opened += _fault(sensors[sid], Rule.NO_DATA, active, value=round(gap), threshold=limit, at=now, now=now)
    return opened


# ---- people act on alarms --------------------------------------------------------------------------------------

def _locked(alarm) -> Alarm:
    pk = alarm.pk if isinstance(alarm, Alarm) else alarm
    return Alarm.objects.select_for_update(of=("self",)).select_related("sensor", "station", "region").get(pk=pk)


def _acknowledge(actor, alarm: Alarm, note: str, at: datetime, **extra) -> None:
    """The per-alarm part of acknowledging, for one alarm or a station's: the caller has locked the alarm,
    checked scope and that it is open. Each alarm gets its own event: the live pages and the audit trail
    follow alarms, not batches."""
    alarm.status = AlarmStatus.ACKNOWLEDGED
    alarm.acknowledged_by, alarm.acknowledged_at = actor, at
    alarm.acknowledged_note = (note or "").strip()[:2000]
    alarm.save()
    _emit("acknowledged", alarm, actor=actor, note=alarm.acknowledged_note, **extra)


def acknowledge_alarm(actor, alarm, note: str = "") -> Alarm:
    """A person confirms they have seen an open alarm (and what they are doing about it)."""
    with transaction.atomic():
        alarm = _locked(alarm)
        check_write(actor, alarm.region)
        if alarm.status != AlarmStatus.OPEN:
            raise ServiceError({"status": [_("只有未确认的告警可以确认")]})
        _acknowledge(actor, alarm, note, timezone.now())
    return alarm


def _shown(seen) -> dict[int, str]:
    """The guard of a station acknowledgement, (alarm id, level) pairs, as {id: level}; malformed → ServiceError."""
    shown: dict[int, str] = {}
    try:
        for pk, level in seen:
            pk = int(pk)
            if level not in LEVEL_RANK or shown.get(pk, level) != level:
                raise ValueError(level)
            shown[pk] = level
    except (TypeError, ValueError) as exc:
        raise ServiceError({"seen": [_("应为页面所显示的每条未确认告警的编号与等级")]}) from exc
    return shown


def acknowledge_station_alarms(actor, place: Station | Sensor, note: str = "", *, seen) -> int:
    """Acknowledge every open alarm of one station at once (确认该站全部告警), or of one stand-alone device (a
    sensor's alarms without a station): the groups of the per-station view. Returns how many.

    On a typhoon night a station carries two or three open rules and the duty officer acknowledges hundreds;
    one by one is not workable. But a batch must not acknowledge what the officer never saw: `seen` is the
    (alarm id, level) of every open alarm the page showed, and if the station now has an open alarm not among
    them (opened since, or an acknowledged one re-opened by an escalation) or at another level, nothing changes
    and a ServiceError on `seen` asks them to look again. Alarms shown but since acknowledged or closed by
    someone else are simply no longer open. All or nothing on scope too: every alarm's region is checked (a
    station that moved keeps its old alarms where they opened), and one outside the actor's write scope
    raises ScopeError before anything changes. Alarms are locked in id order, like every batch of alarms."""
    check_role(actor)
    if isinstance(place, Sensor):
        mine = Q(sensor_id=place.pk, station__isnull=True)
    else:
        mine = Q(station_id=place.pk)
    with transaction.atomic():
        alarms = list(Alarm.objects.select_for_update(of=("self",)).filter(mine, status=AlarmStatus.OPEN)
                      .select_related("sensor", "station", "region").defer("region__boundary").order_by("pk"))
        for alarm in alarms:
            check_write(actor, alarm.region)
        shown = _shown(seen)
        stale = []
        if any(alarm.pk not in shown for alarm in alarms):
            stale.append(_("有新的未确认告警(在页面显示之后产生,或已确认的告警升级后重新待确认),请核对后再确认"))
        if any(alarm.pk in shown and shown[alarm.pk] != alarm.level for alarm in alarms):
            stale.append(_("有告警的等级在页面显示之后发生了变化,请核对后再确认"))
        if stale:
            raise ServiceError({"seen": stale})
        if not alarms:
            raise ServiceError({"status": [_("该站没有未确认的告警")]})
        now = timezone.now()
        for alarm in alarms:
            _acknowledge(actor, alarm, note, now, together=len(alarms))
    return len(alarms)


def close_alarm(actor, alarm, note: str = "") -> Alarm:
    """A person closes an alarm with a note on how it was handled; a still-active condition opens a new one
    at the next evaluation."""
    note = (note or "").strip()
    with transaction.atomic():
        alarm = _locked(alarm)
        check_write(actor, alarm.region)
        if alarm.status == AlarmStatus.CLOSED:
            raise ServiceError({"status": [_("告警已关闭")]})
        if not note:
            raise ServiceError({"note": [_("关闭告警须填写处置说明")]})
        alarm.status = AlarmStatus.CLOSED
        alarm.closed_by, alarm.closed_at, alarm.closed_note = actor, timezone.now(), note[:2000]
        alarm.save()
        _emit("closed", alarm, actor=actor, note=alarm.closed_note)
        active = {(a.sensor_id, a.rule): a for a in Alarm.objects.filter(sensor_id=alarm.sensor_id,
                                                                          status__in=ACTIVE_STATUSES)}
        _refresh_alarm_levels([alarm.sensor_id], active)
    return alarm


# ---- thresholds ------------------------------------------------------------------------------------------------

def set_threshold(actor, *, rule: str, metric: str, sensor_type: str, station=None, soil: str = "any",
                  levels: dict | None = None, enabled: bool = True, source: str = "") -> Threshold:
    """Create or change a threshold: district writers change type defaults, a station's writers its overrides."""
    if station is not None:
        check_write(actor, station.region)
    else:
        prefix = write_prefix(actor)
        if prefix is None or len(prefix) > 6:
            raise ScopeError(_("只有区级用户可以修改默认阈值"))
    errors: dict[str, list] = {}
    for name, value in (("rule", rule), ("metric", metric), ("sensor_type", sensor_type), ("soil", soil)):
        if value not in {v for v, _label in Threshold._meta.get_field(name).flatchoices}:
            errors.setdefault(name, []).append(_("不是有效的选项"))
    levels = {k: levels.get(k) for k in ("blue", "yellow", "orange", "red")} if levels else {}
    previous = None
    for name in ("blue", "yellow", "orange", "red"):
        value = levels.get(name)
        if value is None:
            continue
        if previous is not None and value < previous:
            errors.setdefault(name, []).append(_("高等级的阈值不应低于低等级的阈值"))
        previous = value
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        obj, created = Threshold.objects.select_for_update().get_or_create(
            rule=rule, metric=metric, sensor_type=sensor_type, soil=soil, station=station,
            defaults={**levels, "enabled": enabled, "source": source})
        if not created:
            for name, value in levels.items():
                setattr(obj, name, value)
            obj.enabled = enabled
            obj.source = source or obj.source
            obj.save()
        emit("sensing.threshold.changed", actor=actor, region=station.region if station else None,
             subject=f"threshold:{obj.pk}",
             payload={"rule": rule, "metric": metric, "sensor_type": sensor_type, "soil": soil,
                      "station": station.code if station else None, **obj.values(), "enabled": obj.enabled})
    return obj
