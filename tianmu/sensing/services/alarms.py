"""Alarms: rule evaluation and device-fault checks open, escalate, de-escalate and clear them; people
acknowledge and close them through the alarm's lifecycle (sensing/lifecycles.py). Each change is saved with
its event (`sensing.alarm.opened`, `….escalated`, `….deescalated`, `….cleared`, `….acknowledged`, `….closed`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ServiceError
from tianmu.core.events import emit
from tianmu.core.scope import check

from ..choices import (
    ACTIVE_STATUSES,
    LEVEL_RANK,
    AlarmKind,
    AlarmStatus,
    Level,
    Rule,
    level_rank,
    max_level,
)
from ..conf import conf
from ..lifecycles import ALARM
from ..models import Alarm, Sensor, SensorLatest, Station
from ..parsing import ParsedReading
from ..rules import Assessment, Point, assess_sensor, compute_series
from ..storage import Span, hour_of, latest_rows, save_antecedents, span_rows
from .directory import _sensors, directory, disabled_rules

__all__ = ["evaluate_sensors", "check_no_data", "acknowledge_alarm", "acknowledge_station_alarms", "close_alarm",
           "refresh_sensor_level"]


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


# What evaluation reads of the active alarms: their state, not their people's fields or related rows. An alarm is
# locked and read in full only when it is about to change with an event (`_lock`), so a batch does not lock or
# build every open alarm of the sensors it touches (in a storm, a thousand of them).
STATE_FIELDS = ("pk", "kind", "rule", "metric", "sensor_id", "level", "peak_level", "status", "calm_evaluations",
                "cleared_at")


class _State:
    """An active alarm's state as evaluation reads it (one tuple per alarm: no model instance, no lock)."""

    __slots__ = (*STATE_FIELDS, "_locked")

    def __init__(self, row):
        (self.pk, self.kind, self.rule, self.metric, self.sensor_id, self.level, self.peak_level, self.status,
         self.calm_evaluations, self.cleared_at) = row  # STATE_FIELDS, in order
        self._locked = False


def _active_states(ids) -> dict[tuple[int, str], _State]:
    rows = Alarm.objects.filter(sensor_id__in=ids, status__in=ACTIVE_STATUSES).order_by("pk").values_list(
        *STATE_FIELDS)
    return {(st.sensor_id, st.rule): st for st in map(_State, rows)}


def _write_dirty(dirty: dict[int, Alarm | _State]) -> None:
    """The calm counts and cleared marks that changed without an event, in one bulk update."""
    if dirty:
        Alarm.objects.bulk_update([Alarm(pk=a.pk, calm_evaluations=a.calm_evaluations, cleared_at=a.cleared_at)
                                   for a in dirty.values()], DIRTY_FIELDS, batch_size=1000)


def _lock(alarm: Alarm, dirty: dict[int, Alarm]) -> Alarm | None:
    """The alarm locked (FOR UPDATE) and read in full, with the calm count this batch already gave it; None if it
    was closed meanwhile."""
    if getattr(alarm, "_locked", False):
        return alarm
    fresh = (Alarm.objects.select_for_update(of=("self",)).select_related("sensor", "station", "region")
             .defer("region__boundary").get(pk=alarm.pk))
    if fresh.status not in ACTIVE_STATUSES:
        dirty.pop(alarm.pk, None)
        return None
    if alarm.pk in dirty:
        fresh.calm_evaluations, fresh.cleared_at = alarm.calm_evaluations, alarm.cleared_at
    fresh._locked = True
    return fresh


def _needs_lock(a: Assessment, alarm: Alarm, revisit: bool) -> bool:
    """Whether this assessment changes the alarm with an event (escalation, de-escalation, clearing)."""
    current = level_rank(alarm.level)
    if a.level is not None and level_rank(a.level) > current:
        return True
    if revisit or (alarm.cleared_at is not None and a.calm_level is None) or level_rank(a.calm_level) >= current:
        return False
    return alarm.calm_evaluations + 1 >= conf("SENSING_DEESCALATE_AFTER")


def _apply(sensor: Sensor, a: Assessment, alarm: Alarm | None, at: datetime, now: datetime,
           dirty: dict[int, Alarm], *, revisit: bool = False) -> tuple[Alarm | None, bool]:
    """One rule's assessment at one observation time applied to its active alarm: open, escalate at once, hold,
    or de-escalate (to the level still reached with the hysteresis margin) after N calm evaluations in a row.

    An alarm whose state does not change is not written at all: its value, threshold and data time are those of
    its last change. One whose calm count or cleared mark changes without an event goes into `dirty`, written
    with one bulk update per batch. A `revisit` (a time at or before the sensor's newest reading before this
    batch, re-evaluated because a late reading changed its windows) may open or escalate an alarm, never calm
    or clear one: those times were already counted, and counting them twice would de-escalate early."""
    if alarm is not None and _needs_lock(a, alarm, revisit):
        alarm = _lock(alarm, dirty)
    if alarm is None:
        if a.level is None:
            return None, False
        return _open(sensor, kind=AlarmKind.THRESHOLD, rule=a.rule, metric=a.metric, level=a.level, value=a.value,
                     threshold=a.threshold, at=at, now=now), True
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
        dirty.pop(alarm.pk, None)
        _emit("escalated", alarm, from_level=before)
        return alarm, True
    if revisit:
        return alarm, False
    if alarm.cleared_at is not None and a.calm_level is None:
        return alarm, False  # still below every level: nothing more to count
    if level_rank(a.calm_level) >= current:
        if alarm.calm_evaluations or alarm.cleared_at is not None:
            alarm.calm_evaluations, alarm.cleared_at = 0, None
            dirty[alarm.pk] = alarm
        return alarm, False
    alarm.calm_evaluations += 1
    if alarm.calm_evaluations < conf("SENSING_DEESCALATE_AFTER"):
        dirty[alarm.pk] = alarm
        return alarm, False
    alarm.calm_evaluations = 0
    if a.calm_level is not None:
        before = alarm.level
        alarm.level, alarm.metric = a.calm_level, a.calm_metric
        alarm.value, alarm.threshold = a.calm_value, a.calm_threshold
        alarm.last_level_change = now
        alarm.observed_at = at
        alarm.save()
        dirty.pop(alarm.pk, None)
        _emit("deescalated", alarm, from_level=before)
        return alarm, True
    if alarm.cleared_at is None:
        alarm.cleared_at = at
        alarm.value, alarm.observed_at = a.value, at
        alarm.save()
        dirty.pop(alarm.pk, None)
        _emit("cleared", alarm)
        return alarm, True
    dirty[alarm.pk] = alarm  # the calm count went back to 0
    return alarm, False


def _fault(sensor: Sensor, rule: str, active: dict, *, value, threshold, at, now,
           dirty: dict[int, Alarm] | None = None) -> bool:
    alarm = active.get((sensor.pk, rule))
    if alarm is not None:
        if dirty is None:  # out of range, no data: the fault's value is the newest bad reading or gap
            alarm.cleared_at = None
            Alarm.objects.filter(pk=alarm.pk).update(value=value, observed_at=at, cleared_at=None)
        elif alarm.cleared_at is not None:  # stuck again: only the cleared mark changes
            alarm.cleared_at = None
            dirty[alarm.pk] = alarm
        return False
    level = conf("SENSING_FAULT_LEVELS").get(rule, Level.BLUE)
    active[(sensor.pk, rule)] = _open(sensor, kind=AlarmKind.DEVICE_FAULT, rule=rule, metric=rule, level=level,
                                      value=value, threshold=threshold, at=at, now=now)
    return True


def _clear_fault(alarm: Alarm | None, at, dirty: dict[int, Alarm]) -> bool:
    if alarm is None or alarm.cleared_at is not None:
        return False
    light, alarm = alarm, _lock(alarm, dirty)
    light.cleared_at = at
    if alarm is None or alarm.cleared_at is not None:
        return False
    alarm.cleared_at = at
    alarm.save(update_fields=["cleared_at"])
    _emit("cleared", alarm)
    return True


DIRTY_FIELDS = ["calm_evaluations", "cleared_at"]


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


def _points(sensors: list[Sensor], readings: dict[int, list[Point]], previous: dict[int, datetime]
            ) -> dict[int, list[tuple[datetime, float, bool]]]:
    """The observation times at which each sensor is evaluated, in time order, each with its value and whether it
    is a revisit (at or before the sensor's newest reading before the batch). Every new reading is one, unless it
    is older than that newest reading by more than SENSING_LATE_LOOKBACK_HOURS (stored, never evaluated). A late
    reading within the look-back also re-evaluates every stored reading of its sensor from it up to that newest
    reading: the windows it changed. Those are read in one query for the whole batch."""
    lookback = timedelta(hours=conf("SENSING_LATE_LOOKBACK_HOURS"))
    out: dict[int, dict[datetime, tuple[float, bool]]] = {}
    late: list[Span] = []
    for s in sensors:
        prev = previous.get(s.pk)
        pts = out[s.pk] = {}
        oldest = None
        for ts, value in readings.get(s.pk, ()):
            if prev is None or ts > prev:
                pts[ts] = (value, False)
            elif ts >= prev - lookback:
                pts[ts] = (value, True)
                oldest = ts if oldest is None or ts < oldest else oldest
        if oldest is not None:
            late.append(Span(s.pk, oldest, prev))
    for span, rows in zip(late, span_rows(late), strict=True):
        pts = out[span.sensor_id]
        for ts, value in rows:
            pts.setdefault(ts, (value, True))
    return {sid: [(ts, v, r) for ts, (v, r) in sorted(pts.items())] for sid, pts in out.items()}


def evaluate_sensors(sensor_ids: Iterable[int], *, now: datetime | None = None,
                     out_of_range: list[tuple[Sensor, ParsedReading]] = (),
                     sensors: dict[int, Sensor] | None = None,
                     readings: dict[int, list[Point]] | None = None,
                     previous: dict[int, datetime] | None = None) -> int:
    """Evaluate every rule of these sensors and apply the results to their alarms; open out-of-range device
    faults. Returns the number of alarm changes (opened, level changed, cleared).

    With `readings` (each sensor's new (ts, value) readings of the batch) and `previous` (each sensor's newest
    reading time before the batch), rules are evaluated at every new reading's own time, in time order per
    sensor, whatever the batch's shape or arrival order; a late reading re-evaluates the stored readings after it
    within the look-back (`_points`). Without them, at each sensor's latest reading only.

    Set-based: the number of queries grows neither with the number of sensors nor with the readings per sensor
    (history through `rules.compute_series`, one bulk update for antecedent indexes and one for alarms whose calm
    count changed). Alarms whose state holds are not written; only alarms that open or change level are written
    one by one, with their events. `sensors` may hold the sensors already read in this transaction (by ingest's
    checks), to save reading them again."""
    now = now or timezone.now()
    evaluated = set(sensor_ids)
    ids = evaluated | {s.pk for s, _p in out_of_range}
    if not ids:
        return 0
    if not transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return evaluate_sensors(evaluated, now=now, out_of_range=out_of_range, sensors=sensors,
                                    readings=readings, previous=previous)
    known = sensors or {}
    missing = [sid for sid in evaluated if sid not in known]
    if missing:
        known = {**known, **{s.pk: s for s in _sensors().filter(pk__in=missing)}}
    sensors = [known[sid] for sid in sorted(evaluated) if sid in known]  # a fixed order: alarms lock in it
    latest = latest_rows([s.pk for s in sensors])
    revisits: dict[int, set[datetime]] = {}
    changed_since: dict[int, datetime] = {}
    if readings is None:
        evaluations = compute_series(sensors, latest)
    else:
        previous = previous or {}
        points = _points(sensors, readings, previous)
        for sid, rows in readings.items():
            if rows:
                changed_since[sid] = min(ts for ts, _v in rows)
        revisits = {sid: {ts for ts, _v, r in pts if r} for sid, pts in points.items()}
        evaluations = compute_series(sensors, latest, {sid: [(ts, v) for ts, v, _r in pts]
                                                      for sid, pts in points.items()}, changed_since)
    book = directory.book()
    zones = directory.representation()  # the rules that belong to hazard zones, and which gauges represent them
    close_after = timedelta(hours=float(conf("SENSING_AUTO_CLOSE_AFTER_HOURS")))
    active = _active_states(ids)  # state only; locked and read in full one by one when they change (`_lock`)
    rules_of: dict[int, set[str]] = {}
    for (sid, rule), a in active.items():
        if a.kind == AlarmKind.THRESHOLD:
            rules_of.setdefault(sid, set()).add(rule)
    changes = 0
    dirty: dict[int, Alarm] = {}
    antecedents: dict[int, tuple[float, float, datetime]] = {}
    for s in sensors:
        sid = s.id
        lt = latest.get(sid)
        again = revisits.get(sid, ())
        for ev in evaluations.get(sid, ()):
            if ev.antecedent_changed and lt is not None and ev.antecedent_hour == hour_of(lt.ts):
                antecedents[sid] = (*ev.antecedent_whole, ev.antecedent_hour)
            revisit = ev.at in again
            disabled = disabled_rules(s, zones)  # zone rules (geohazard, flash flood) of a gauge representing none
            for a in assess_sensor(s, ev, book, rules_of.get(sid, frozenset()), disabled):
                alarm, changed = _apply(s, a, active.get((sid, a.rule)), ev.at, now, dirty, revisit=revisit)
                if alarm is not None:
                    active[(sid, a.rule)] = alarm
                    rules_of.setdefault(sid, set()).add(a.rule)
                else:
                    active.pop((sid, a.rule), None)  # none, or closed by a person meanwhile
                changes += changed
            if revisit:
                continue  # device faults follow the sensor's newest data only
            if ev.stuck is not None:
                n, same = ev.stuck
                if same:
                    changes += _fault(s, Rule.STUCK, active, value=n, threshold=n, at=ev.at, now=now, dirty=dirty)
                else:
                    changes += _clear_fault(active.get((sid, Rule.STUCK)), ev.at, dirty)
            changes += _clear_fault(active.get((sid, Rule.NO_DATA)), ev.at, dirty)
            changes += _clear_fault(active.get((sid, Rule.OUT_OF_RANGE)), ev.at, dirty)
        evs = evaluations.get(sid)
        if evs and close_after:
            changes += _auto_close(s, active, rules_of.get(sid, ()), evs[-1].at, close_after, now, dirty)
    for s, p in out_of_range:
        bound = s.valid_max if s.valid_max is not None and p.value > s.valid_max else s.valid_min
        changes += _fault(s, Rule.OUT_OF_RANGE, active, value=p.value, threshold=bound, at=p.ts, now=now)
    if antecedents:
        save_antecedents([(sid, *values) for sid, values in antecedents.items()])
    _write_dirty(dirty)
    _refresh_alarm_levels(ids, active, latest)
    return changes


AUTO_CLOSE_NOTE = _("条件已解除满 %(hours)s 小时(按监测数据时间),系统自动关闭")


def _auto_close(sensor: Sensor, active: dict, rules: Iterable[str], at: datetime, after: timedelta, now: datetime,
                dirty: dict[int, Alarm]) -> int:
    """Close the sensor's threshold alarms whose condition has been cleared for `after` of its own data time
    (up to `at`, its newest evaluated reading), unless they ever reached a level above
    SENSING_AUTO_CLOSE_MAX_LEVEL: a person closes those. Closed with the reason as the note, no person, and a
    `sensing.alarm.autoclosed` event. Data time, not the wall clock, so a replayed storm closes its alarms as the
    live one would. `rules`: the sensor's threshold rules with an active alarm (only those are looked at, so the
    cost does not grow with the other sensors' open alarms)."""
    ceiling = level_rank(conf("SENSING_AUTO_CLOSE_MAX_LEVEL"))
    closed = 0
    sid = sensor.pk
    for rule in list(rules):
        state = active.get((sid, rule))
        if (state is None or state.kind != AlarmKind.THRESHOLD or state.cleared_at is None
                or at - state.cleared_at < after or level_rank(state.peak_level) > ceiling):
            continue
        alarm = _lock(state, dirty)
        if alarm is None or alarm.cleared_at is None:
            continue
        hours = f"{after.total_seconds() / 3600:g}"
        alarm.status, alarm.closed_at = AlarmStatus.CLOSED, now
        alarm.closed_note = str(AUTO_CLOSE_NOTE % {"hours": hours})
        alarm.save(update_fields=["status", "closed_at", "closed_note", "calm_evaluations", "cleared_at"])
        dirty.pop(alarm.pk, None)
        active.pop((sid, rule), None)
        _emit("autoclosed", alarm, reason="cleared", calm_hours=round((at - alarm.cleared_at).total_seconds() / 3600, 2))
        closed += 1
    return closed


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

def acknowledge_alarm(actor, alarm, note: str = "") -> Alarm:
    """A person confirms they have seen an open alarm (and what they are doing about it): the lifecycle's
    "acknowledge" transition (sensing/lifecycles.py)."""
    return ALARM.perform(actor, alarm, "acknowledge", note=note)


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
    check(actor, ALARM.action("acknowledge"))
    if isinstance(place, Sensor):
        mine = Q(sensor_id=place.pk, station__isnull=True)
    else:
        mine = Q(station_id=place.pk)
    with transaction.atomic():
        alarms = list(Alarm.objects.select_for_update(of=("self",)).filter(mine, status=AlarmStatus.OPEN)
                      .select_related("sensor", "station", "region").defer("region__boundary").order_by("pk"))
        steps = [ALARM.check(actor, alarm, "acknowledge", note=note) for alarm in alarms]
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
        now = steps[0].at
        for alarm, step in zip(alarms, steps, strict=True):
            step.at = now  # one moment for the whole station
            step.extra["together"] = len(alarms)  # each alarm its own event: pages and the audit follow alarms
            ALARM.apply(alarm, step)
    return len(alarms)


def close_alarm(actor, alarm, note: str = "") -> Alarm:
    """A person closes an alarm with a note on how it was handled (the lifecycle's "close" transition); a
    still-active condition opens a new one at the next evaluation."""
    return ALARM.perform(actor, alarm, "close", note=note)


def refresh_sensor_level(sensor_id: int) -> None:
    """One sensor's map colour from its active alarms (after a person closed one)."""
    active = {(a.sensor_id, a.rule): a for a in Alarm.objects.filter(sensor_id=sensor_id,
                                                                      status__in=ACTIVE_STATUSES)}
    _refresh_alarm_levels([sensor_id], active)
