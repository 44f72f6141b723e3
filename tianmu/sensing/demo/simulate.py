"""Simulated monitoring data: a typhoon rain event over the sensors in the registry (`tianmu simulate typhoon`).

The storm (like Lekima 2019) comes from the south-east: a rain band crosses the district toward the
west-north-west, strengthens as the typhoon's core arrives and slows down over the western mountains, where
orographic lift makes the rain heaviest (龙岗镇, 岛石镇). Behind the band it keeps raining more lightly; ahead
of it outer bands drizzle. Convective cells embedded in the band give local peaks well above 50 mm/h.

* rain gauges report every 5 minutes (加报) the rain of those 5 minutes;
* water-level stations rise with the rain on their catchment (the gauges within 15 km, upstream = west of
  them) through a linear reservoir whose runoff coefficient grows as the soil wets; rivers answer within
  hours, reservoirs more slowly; each station rises in proportion to its own warning margin;
* one slope (the displacement station with the most rain) creeps faster and faster; the others barely move;
* gas detectors read their usual near-zero values.

Readings are stamped in simulated time: `speed` simulated seconds pass per real second, and the timeline
is laid so that it **catches up with the wall clock at the end** (readings are never in the future, which
the ingest refuses, and never before the sensors' newest stored reading). When the sensors already report
up to now (e.g. right after `tianmu demo`), only the time from their newest reading to the end of the run is
free, so the run goes as fast as the clock allows. Same seed, same storm.

`run_typhoon` sends the readings either to the MQTT broker (devices' topics, QoS 1; the ingest worker stores
them) or straight through `services.ingest_messages`, the worker's own path (rules run, alarms open).
"""

from __future__ import annotations

import json
import math
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from ..choices import ACTIVE_STATUSES, AlarmKind, SensorType, StationType
from ..conf import conf
from ..models import Alarm, Sensor, SensorLatest

__all__ = ["STEP", "SimSensor", "Typhoon", "load_sensors", "timeline_start", "run_typhoon", "RunReport",
           "DirectSink", "MqttSink", "broker_reachable", "active_alarm_levels"]

STEP = timedelta(minutes=5)
SIMULATED = (SensorType.RAINFALL, SensorType.WATER_LEVEL, SensorType.DISPLACEMENT, SensorType.GAS,
             SensorType.WIND)

# A local kilometre frame around the district's middle.
LON0, LAT0 = 119.36, 30.16
KX, KY = 111.320 * math.cos(math.radians(LAT0)), 110.574
# The band moves toward the west-north-west (bearing 310°): s is the distance along its motion, t across it.
UX, UY = math.sin(math.radians(310)), math.cos(math.radians(310))
VX, VY = UY, -UX
S_START, S_END = -45.0, 34.0  # band centre (km along s) at the start and at the end of the storm
PEAK_MM_H = 22.0  # core intensity before orography, cells and noise
SIGMA_KM = 14.0  # half-width of the core
TRAIL, TRAIL_KM = 0.25, 35.0  # rain behind the band, as a share of the core, and its decay
AHEAD, AHEAD_KM = 0.08, 25.0  # drizzle of the outer bands ahead of it
CATCHMENT_KM = 15.0
OROGRAPHY = (0.7, 0.3, 1.1)  # base, west slope, hotspot
HOTSPOT = ((119.03 - LON0) * KX, (30.25 - LAT0) * KY)  # orographic hotspot between 龙岗镇 and 岛石镇
HOTSPOT_KM = 6.0  # its radius (1 sigma): "record short, local rainstorms" (facts.md, Lekima) [U]
SLOPE_FINAL_MM = 60.0  # the creeping slope's movement over the whole storm


def _km(lon: float, lat: float) -> tuple[float, float]:
    return (lon - LON0) * KX, (lat - LAT0) * KY


def _smoothstep(v: float) -> float:
    v = max(0.0, min(1.0, v))
    return v * v * (3 - 2 * v)


@dataclass
class SimSensor:
    """What the simulator needs to know of one sensor."""

    pk: int
    code: str
    station: str  # station code for the topic, "-" for a stand-alone device
    sensor_type: str
    station_type: str
    x: float
    y: float
    start: float | None = None  # latest stored value
    newest: datetime | None = None  # latest stored observation time
    warning: float | None = None
    guaranteed: float | None = None
    valid_max: float | None = None


def load_sensors(queryset=None) -> list[SimSensor]:
    """Every active sensor the simulator can drive, ordered by code."""
    qs = queryset if queryset is not None else Sensor.objects.all()
    qs = qs.filter(retired=False, sensor_type__in=SIMULATED).select_related("station").order_by("code")
    latest = {row.pk: row for row in SensorLatest.objects.filter(sensor__in=qs)}
    out = []
    for s in qs:
        st = s.station if s.station_id else None
        x, y = _km(s.lon, s.lat)
        lt = latest.get(s.pk)
        out.append(SimSensor(pk=s.pk, code=s.code, station=st.code if st else "-", sensor_type=s.sensor_type,
                             station_type=st.station_type if st else "", x=x, y=y,
                             start=lt.value if lt else None, newest=lt.ts if lt else None,
                             warning=st.warning_level_m if st else None,
                             guaranteed=st.guaranteed_level_m if st else None, valid_max=s.valid_max))
    return out


class Typhoon:
    """The storm over a set of sensors, advanced one 5-minute step at a time (`readings(k)` in order)."""

    def __init__(self, sensors: list[SimSensor], *, duration: timedelta, seed: int = 330112):
        self.sensors = sensors
        self.steps = max(1, int(duration / STEP))
        self.dt_h = STEP.total_seconds() / 3600
        self.rng = random.Random(f"typhoon-{seed}")
        rng = self.rng
        # Convective cells along the band (km across it, width, strength), spread so they never pile up.
        self.cells = [(-40 + 16 * i + rng.uniform(-5, 5), rng.uniform(5, 9), rng.uniform(0.1, 0.3)) for i in range(6)]
        self.gauges = [s for s in sensors if s.sensor_type == SensorType.RAINFALL]
        self.gauge_factor = {s.pk: rng.uniform(0.85, 1.15) for s in self.gauges}
        self.last_rain: dict[int, float] = {s.pk: 0.0 for s in self.gauges}  # mm/h of the last step
        self.catchment = {s.pk: self._catchment(s) for s in sensors if s.sensor_type == SensorType.WATER_LEVEL}
        self.runoff = {pk: 0.0 for pk in self.catchment}
        self.wet = {pk: 0.0 for pk in self.catchment}  # rain fallen on the catchment so far (mm)
        slopes = [s for s in sensors if s.sensor_type == SensorType.DISPLACEMENT]
        self.creeping = max(slopes, key=lambda s: (self.expected_total(s.x, s.y), s.code)).pk if slopes else None
        self.slope_value = {s.pk: s.start if s.start is not None else 10.0 for s in slopes}

    # ---- the rain field ----------------------------------------------------------------------------------
    def band_centre(self, f: float) -> float:
        """Where the band's core is (km along its motion) at storm fraction f: it slows down at the end."""
        return S_START + (S_END - S_START) * (1 - (1 - f) ** 2)

    def intensity(self, x: float, y: float, f: float) -> float:
        """Rain rate (mm/h) at a point and storm fraction, without the gauges' own scatter."""
        s, t = x * UX + y * UY, x * VX + y * VY
        d = s - self.band_centre(f)
        core = math.exp(-0.5 * (d / SIGMA_KM) ** 2)
        core *= 1 + sum(a * math.exp(-0.5 * ((t - tc) / w) ** 2) for tc, w, a in self.cells)
        behind = 1 / (1 + math.exp(d / 4))
        rest = TRAIL * behind * math.exp(min(d, 0) / TRAIL_KM) + AHEAD * (1 - behind) * math.exp(-max(d, 0) / AHEAD_KM)
        envelope = 0.5 + 0.5 * _smoothstep(f / 0.65)
        hx, hy = x - HOTSPOT[0], y - HOTSPOT[1]
        orography = OROGRAPHY[0] + OROGRAPHY[1] * max(0.0, min(1.0, (45 - x) / 90)) + OROGRAPHY[2] * math.exp(-(hx * hx + hy * hy) / (2 * HOTSPOT_KM ** 2))
        return PEAK_MM_H * envelope * orography * (core + rest)

    def expected_total(self, x: float, y: float) -> float:
        """Storm rain (mm) at a point, roughly: for choosing the slope that gets the most."""
        n = 48
        hours = self.steps * self.dt_h
        return sum(self.intensity(x, y, (i + 0.5) / n) for i in range(n)) * hours / n

    def _catchment(self, station: SimSensor) -> list[int]:
        near = sorted(self.gauges, key=lambda g: (g.x - station.x) ** 2 + (g.y - station.y) ** 2)
        upstream = [g.pk for g in near if math.hypot(g.x - station.x, g.y - station.y) <= CATCHMENT_KM
                    and g.x <= station.x + 3]
        return upstream if len(upstream) >= 3 else [g.pk for g in near[:3]]

    # ---- one step ----------------------------------------------------------------------------------------
    def readings(self, k: int) -> list[tuple[SimSensor, float]]:
        """The readings of step k (0-based; observation time = start + (k + 1) × 5 min)."""
        f = (k + 1) / self.steps
        rng = self.rng
        out = []
        for s in self.gauges:
            rate = self.intensity(s.x, s.y, f) * self.gauge_factor[s.pk] * rng.uniform(0.8, 1.2)
            value = round(rate * self.dt_h, 1)
            if s.valid_max is not None:
                value = min(value, s.valid_max)
            self.last_rain[s.pk] = value / self.dt_h
            out.append((s, value))
        for s in self.sensors:
            if s.sensor_type == SensorType.WATER_LEVEL:
                out.append((s, self._water(s, rng)))
            elif s.sensor_type == SensorType.DISPLACEMENT:
                out.append((s, self._slope(s, f, rng)))
            elif s.sensor_type == SensorType.GAS:
                out.append((s, round(max(0.0, rng.gauss(0.6, 0.4)), 1)))
            elif s.sensor_type == SensorType.WIND:
                d = s.x * UX + s.y * UY - self.band_centre(f)
                gust = (0.5 + 0.5 * _smoothstep(f / 0.65)) * (6 + 16 * math.exp(-0.5 * (d / 30) ** 2))
                out.append((s, round(max(0.0, gust + rng.gauss(0, 1.5)), 1)))
        return out

    def _water(self, s: SimSensor, rng: random.Random) -> float:
        rain = sum(self.last_rain.get(pk, 0.0) for pk in self.catchment[s.pk]) / max(1, len(self.catchment[s.pk]))
        self.wet[s.pk] += rain * self.dt_h
        coefficient = 0.25 + 0.55 * (1 - math.exp(-self.wet[s.pk] / 60))
        reservoir = s.station_type == StationType.RESERVOIR
        lag_h, reference = (8.0, 6.0) if reservoir else (2.5, 10.0)
        self.runoff[s.pk] += (coefficient * rain - self.runoff[s.pk]) * self.dt_h / lag_h
        start = s.start if s.start is not None else ((s.warning or 12.5) - 2.5)
        margin = s.warning - start if s.warning is not None and s.warning - start > 0.3 else 2.5
        return round(start + margin * self.runoff[s.pk] / reference + rng.gauss(0, 0.004), 3)

    def _slope(self, s: SimSensor, f: float, rng: random.Random) -> float:
        start = s.start if s.start is not None else 10.0
        if s.pk == self.creeping:
            value = start + SLOPE_FINAL_MM * (math.exp(4 * f) - 1) / (math.exp(4) - 1)
        else:
            self.slope_value[s.pk] += (0.01 + 0.002 * self.intensity(s.x, s.y, f)) * self.dt_h
            value = self.slope_value[s.pk]
        return round(value + rng.gauss(0, 0.12), 2)


# ---- time ----------------------------------------------------------------------------------------------------

def _floor(ts: datetime) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((ts - epoch) // STEP) * STEP


def timeline_start(wall: datetime, duration: timedelta, speed: float | None,
                   newest: datetime | None) -> datetime:
    """When simulated time begins: late enough that `speed`× never runs ahead of the clock (the run ends at
    the wall clock), and after the newest stored reading. A whole 5 minutes."""
    lead = duration if not speed else duration * max(0.0, 1 - 1 / speed)
    start = _floor(wall - lead) if speed else _floor(wall) - duration
    if newest is not None and start < newest:
        start = _floor(newest) + (STEP if _floor(newest) < newest else timedelta(0))
    return start


# ---- where readings go ---------------------------------------------------------------------------------------

def _messages(batch: list[list[tuple[SimSensor, float]]], times: list[datetime], prefix: str) -> list[tuple]:
    """One message per sensor for a batch of steps: a device sends what it has not sent yet in one go."""
    zone = ZoneInfo(settings.TIME_ZONE)
    per_sensor: dict[int, tuple[SimSensor, list]] = {}
    for readings, ts in zip(batch, times, strict=True):
        stamp = ts.astimezone(zone).isoformat(timespec="seconds")
        for s, value in readings:
            per_sensor.setdefault(s.pk, (s, []))[1].append({"ts": stamp, "value": value})
    out = []
    for s, items in per_sensor.values():
        body = items[0] if len(items) == 1 else {"readings": items}
        out.append((f"{prefix}/{s.station}/{s.code}/data", json.dumps(body, separators=(",", ":")).encode()))
    return out


class DirectSink:
    """Straight into the store through the ingest worker's own service (`services.ingest_messages`)."""

    mode = "direct"

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix or conf("SENSING_MQTT_TOPIC_PREFIX")

    def send(self, messages: list[tuple], report: RunReport, at: datetime | None = None) -> None:
        """`at`: when catching up on the past as fast as possible, the batch counts as received at its
        simulated time, so alarms carry the time the rain fell rather than the second the demo was built."""
        from ..services.readings import ingest_messages

        outcome = ingest_messages(messages, prefix=self.prefix, now=at or timezone.now())
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        report.dead_letters += outcome.dead_letters
        report.alarm_changes += outcome.alarm_changes

    def close(self) -> None:
        """Writing straight into the store holds no connection of its own: nothing to close."""


def broker_reachable(url: str | None = None, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the broker succeeds."""
    from ..ingest import broker_address

    address = broker_address(url or settings.MQTT_URL)
    try:
        with socket.create_connection((address["host"], address["port"]), timeout=timeout):
            return True
    except OSError:
        return False


class MqttSink:
    """To the broker, as the devices would: their own topics, QoS 1, waiting for every PUBACK."""

    mode = "mqtt"

    def __init__(self, url: str | None = None, prefix: str | None = None, timeout: float = 10.0):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from ..ingest import broker_address

        self.prefix = prefix or conf("SENSING_MQTT_TOPIC_PREFIX")
        self.address = broker_address(url or settings.MQTT_URL)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tianmu-sim-{uuid.uuid4().hex[:10]}",
                             clean_session=True, protocol=mqtt.MQTTv311)
        if self.address["username"]:
            client.username_pw_set(self.address["username"], self.address["password"])
        if self.address["tls"]:
            client.tls_set()
        client.max_inflight_messages_set(200)
        client.connect(self.address["host"], self.address["port"], keepalive=30)
        client.loop_start()
        self.client = client
        self.timeout = timeout

    def send(self, messages: list[tuple], report: RunReport, at: datetime | None = None) -> None:
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=self.timeout)
        report.published += sum(1 for info in infos if info.is_published())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- running -------------------------------------------------------------------------------------------------

@dataclass
class RunReport:
    mode: str = ""
    start: datetime | None = None  # simulated time of the storm's beginning
    end: datetime | None = None
    steps: int = 0
    readings: int = 0
    published: int = 0  # MQTT messages acknowledged by the broker
    stored: int = 0  # direct mode: readings stored, …
    duplicates: int = 0
    dead_letters: int = 0
    alarm_changes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_typhoon(*, sink, duration: timedelta = timedelta(hours=6), speed: float | None = 60, seed: int = 330112,
                batch_minutes: int = 30, sensors: list[SimSensor] | None = None,
                progress: Callable[[RunReport, datetime], None] | None = None,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                wall: Callable[[], datetime] = timezone.now) -> RunReport:
    """Run the storm: each 5-minute step is sent once its simulated time has come (`speed`× the real clock,
    never ahead of it; `speed` None or 0 = as fast as possible). Steps that are due together go out in
    batches of up to `batch_minutes` simulated minutes."""
    sensors = load_sensors() if sensors is None else sensors
    storm = Typhoon(sensors, duration=duration, seed=seed)
    newest = max((s.newest for s in sensors if s.newest is not None), default=None)
    wall0, t0 = wall(), clock()
    start = timeline_start(wall0, duration, speed, newest)
    report = RunReport(mode=sink.mode, start=start, end=start + storm.steps * STEP)
    per_batch = max(1, int(timedelta(minutes=batch_minutes) / STEP))

    def due(k: int) -> float:
        offset = (k + 1) * STEP
        paced = offset.total_seconds() / speed if speed else 0.0
        return max(paced, (start + offset - wall0).total_seconds())

    k, hour_mark = 0, None
    while k < storm.steps:
        elapsed = clock() - t0
        if due(k) > elapsed:
            sleep(min(due(k) - elapsed, 1.0))
            continue
        batch, times = [], []
        while k < storm.steps and due(k) <= elapsed and len(batch) < per_batch:
            batch.append(storm.readings(k))
            times.append(start + (k + 1) * STEP)
            k += 1
        sink.send(_messages(batch, times, sink.prefix), report, at=None if speed else times[-1])
        report.steps = k
        report.readings += sum(len(b) for b in batch)
        report.seconds = clock() - t0
        if progress is not None and (hour_mark is None or times[-1] - hour_mark >= timedelta(minutes=30)
                                     or k == storm.steps):
            hour_mark = times[-1]
            progress(report, times[-1])
    report.seconds = clock() - t0
    return report


def active_alarm_levels(sensor_ids=None) -> dict[str, int]:
    """Active threshold alarms by level (for the command's summary)."""
    qs = Alarm.objects.filter(status__in=ACTIVE_STATUSES, kind=AlarmKind.THRESHOLD)
    if sensor_ids is not None:
        qs = qs.filter(sensor_id__in=list(sensor_ids))
    return dict(qs.values_list("level").annotate(n=Count("id")).order_by())


def newest_reading(sensor_ids) -> datetime | None:
    return SensorLatest.objects.filter(pk__in=list(sensor_ids)).aggregate(m=Max("ts"))["m"]


def demo_storm(seed: int = 330112) -> str:
    """The end of the demo build: the demo's storm hours up to now, written directly (a few seconds), so the
    first look already shows open alarms. Returns what `tianmu demo` prints."""
    from .network import DEMO_STORM_HOURS

    sensors = load_sensors()
    report = run_typhoon(sink=DirectSink(), duration=timedelta(hours=DEMO_STORM_HOURS), speed=None, seed=seed,
                         batch_minutes=60, sensors=sensors)
    levels = active_alarm_levels([s.pk for s in sensors])
    local = timezone.localtime
    return (f"监测: 台风模拟 {local(report.start):%H:%M}–{local(report.end):%H:%M} 写入 {report.stored} 条读数, "
            f"当前告警 红 {levels.get('red', 0)} / 橙 {levels.get('orange', 0)} / 黄 {levels.get('yellow', 0)} / "
            f"蓝 {levels.get('blue', 0)} ({report.seconds:.0f} s)\n"
            "  实时演示 (live): while `tianmu run` is up, run `tianmu simulate typhoon --mqtt` in another terminal "
            "to publish the storm to the broker and watch the alarm list and map update")


def demo_storm_step(ctx) -> str:
    """The demo step "sensing.storm" (a replay step, after the build): the storm's last hours up to now."""
    return demo_storm(ctx.seed)
