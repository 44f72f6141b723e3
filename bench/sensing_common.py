"""Shared pieces of the sensing benchmarks (bench/sensing_*.py): a benchmark database, a district's sensor
fleet, the Django set-up of a child process, and result printing.

The fleet is ~480 sensors of the kinds a district runs (rain gauges, water-level gauges, GNSS/crack meters,
soil moisture, gas detectors, anemometers), one station each, in one district region; thresholds are the seeded
defaults. Only 127.0.0.1 is ever used; PostgreSQL databases must have "bench" in their name (run.py refuses
anything else before dropping it).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from run import (  # noqa: E402 - the existing benchmark's helpers (machine, git, database reset)
    BenchError,
    app_env,
    git_rev,
    loadavg,
    machine_info,
    percentile,
    reset_postgres,
)

__all__ = ["BenchError", "app_env", "git_rev", "loadavg", "machine_info", "percentile", "reset_postgres",
           "FLEET", "DISTRICT", "log", "child_env", "migrate", "setup_django", "seed_fleet", "sample_value",
           "save_result", "db_label", "check_loopback", "run_child", "fmt_int"]

DISTRICT = "330112"  # Lin'an

# (sensor type, station type, count, code prefix, valid range)
FLEET = [
    ("rainfall", "rain", 200, "RG", (0.0, 200.0)),
    ("water_level", "water_level", 100, "WL", (-5.0, 50.0)),
    ("displacement", "displacement", 80, "DS", (-1000.0, 1000.0)),
    ("soil_moisture", "soil_moisture", 40, "SM", (0.0, 100.0)),
    ("gas", "gas", 30, "GS", (0.0, 100.0)),
    ("wind", "wind", 30, "WS", (0.0, 75.0)),
]  # 480 sensors


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%SZ', time.gmtime())}] {msg}", flush=True)


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def db_label(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgresql"


def check_loopback(url: str) -> None:
    if url.startswith("sqlite:"):
        return
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"refusing a database that is not on this machine: {parts.hostname}")
    if "bench" not in parts.path:
        raise BenchError("the benchmark database's name must contain 'bench'")


def child_env(db_url: str, var_dir: Path, **extra: str) -> dict:
    """Production-mode environment (DEBUG off: no query log) for a child process on the bench database."""
    env = app_env(db_url, var_dir)
    env.update(extra)
    return env


def drop_db(url: str) -> None:
    """Drop a bench database (PostgreSQL), closing any connections still open to it."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def migrate(db_url: str, var_dir: Path) -> float:
    """(Re)create the database and migrate it; returns seconds."""
    t0 = time.perf_counter()
    if not db_url.startswith("sqlite:"):
        reset_postgres(db_url)
    proc = subprocess.run([sys.executable, "-m", "tianmu.cli", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                          env=child_env(db_url, var_dir), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise BenchError(f"migrate failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - t0


def setup_django(db_url: str, var_dir: Path) -> None:
    """Configure this process for the bench database (call once, before importing models)."""
    os.environ.update(child_env(db_url, var_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tianmu.settings"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_fleet(extra_gas: int = 0, extra_prefix: str = "GT") -> dict:
    """Create the district, a gateway user with an API token, a district commander, and the fleet (plus
    `extra_gas` gas detectors used as alarm triggers). Returns ids and codes. Needs setup_django() first."""
    from django.db import transaction

    from tianmu.core.models import ApiToken, Region, User
    from tianmu.sensing.models import Sensor, Station

    with transaction.atomic():
        district = Region.objects.create(code=DISTRICT, name="临安区", level="district", lon=119.72, lat=30.23,
                                         min_lon=118.85, min_lat=29.93, max_lon=119.87, max_lat=30.47)
        gateway = User.objects.create(username="bench-gateway", role="api_client", region=district)
        commander = User.objects.create(username="bench-commander", role="commander", region=district)
        key = ApiToken.new_key()
        ApiToken.objects.create(user=gateway, name="bench", prefix=key[:8], key_hash=ApiToken.hash_key(key))
        plan = [(stype, sttype, n, prefix, rng) for stype, sttype, n, prefix, rng in FLEET]
        if extra_gas:
            plan.append(("gas", "gas", extra_gas, extra_prefix, (0.0, 100.0)))
        stations, sensors = [], []
        rnd = random.Random(7)
        for stype, sttype, n, prefix, (lo, hi) in plan:
            for i in range(1, n + 1):
                lon, lat = 118.9 + rnd.random() * 0.9, 29.95 + rnd.random() * 0.5
                extra = {"warning_level_m": 3.0, "guaranteed_level_m": 4.0} if stype == "water_level" else {}
                st = Station(code=f"ST-{prefix}-{i:04d}", name=f"站{prefix}{i}", region=district, lon=lon, lat=lat,
                             station_type=sttype, **extra)
                stations.append(st)
                sensors.append(Sensor(code=f"{prefix}-{i:04d}", name=f"{prefix}{i}", region=district, lon=lon,
                                      lat=lat, sensor_type=stype, valid_min=lo, valid_max=hi, interval_s=300))
        Station.objects.bulk_create(stations, batch_size=1000)
        for st, s in zip(stations, sensors, strict=True):
            s.station = st
            s.unit = {"rainfall": "mm", "water_level": "m", "displacement": "mm", "gas": "%LEL",
                      "soil_moisture": "%", "wind": "m/s"}[s.sensor_type]
        Sensor.objects.bulk_create(sensors, batch_size=1000)
    out = [(s.pk, s.code, s.station.code, s.sensor_type) for s in sensors]
    return {"token": key, "gateway_id": gateway.pk, "commander_id": commander.pk, "sensors": out}


def sample_value(sensor_type: str, i: int, k: int) -> float:
    """A plausible, non-alarming and never-constant value for reading k of sensor i."""
    h = (i * 7919 + k * 104729) % 1000 / 1000.0
    if sensor_type == "rainfall":
        return round(0.5 * h, 2) if (i + k) % 4 == 0 else 0.0  # light rain now and then
    if sensor_type == "water_level":
        return round(1.5 + 0.5 * math.sin(k / 40) + 0.01 * h, 3)
    if sensor_type == "displacement":
        return round(0.01 * k + 0.2 * h, 3)
    if sensor_type == "soil_moisture":
        return round(25 + 5 * math.sin(k / 50) + h, 2)
    if sensor_type == "gas":
        return round(2 * h, 2)
    return round(3 + 4 * h, 2)  # wind


def save_result(name: str, result: dict, started: datetime, out: Path | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = out or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def run_child(script: Path, args: list[str], env: dict | None = None, timeout: float = 1800) -> dict:
    """Run a child benchmark process; its last stdout line starting with RESULT is JSON."""
    proc = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env or os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)
    sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
    for line in proc.stdout.splitlines():
        if not line.startswith("RESULT "):
            print(line, flush=True)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"{script.name} {' '.join(args)} failed ({proc.returncode})")
    return json.loads(line.split(" ", 1)[1])


def utc_now() -> datetime:
    return datetime.now(UTC)


def window(intervals: int, step_s: int = 300, end_ago: timedelta = timedelta(hours=1)) -> list[datetime]:
    """`intervals` timestamps step_s apart, ending `end_ago` before now, aligned to the step."""
    end = utc_now() - end_ago
    end = end.replace(second=0, microsecond=0) - timedelta(minutes=end.minute % max(1, step_s // 60))
    return [end - timedelta(seconds=step_s * (intervals - 1 - k)) for k in range(intervals)]


# ---- the storm state (issue 9): every gauge reporting alarming values, ≥ 1,000 open alarms --------------------

STORM_WARMUP_INTERVALS = 36  # 3 hours of storm before the timed readings: every rain rule red


def storm_value(sensor_type: str, i: int, k: int) -> float:
    """A storm reading for reading k of sensor i that keeps its alarms at their level (never constant, so no
    stuck faults): 6 mm per 5 minutes (72 mm/h), rivers above their guaranteed level, gas and wind red."""
    h = (i * 7919 + k * 104729) % 1000 / 1000.0
    if sensor_type == "rainfall":
        return round(6.0 + 0.5 * h, 2)
    if sensor_type == "water_level":
        return round(4.5 + 0.01 * (k % 3) + 0.005 * h, 3)
    if sensor_type == "gas":
        return round(60 + 2 * h, 2)
    if sensor_type == "wind":
        return round(35 + 2 * h, 2)
    return sample_value(sensor_type, i, k)


def seed_storm(sensors: list, times: list[datetime], prefix: str = "bench/v1") -> int:
    """Bring a fresh bench database into the storm state (untimed): the fleet reports storm values at `times`
    through the real ingest path (alarms open and escalate as they would), and the alarms a storm leaves open
    that no reading changes any more are added directly: displacement and rise-rate alarms whose condition has
    cleared, and acknowledged no-data faults of the slope and soil sensors. Returns the number of active alarms."""
    from django.db import transaction
    from django.utils import timezone

    from tianmu.sensing.choices import ACTIVE_STATUSES
    from tianmu.sensing.models import Alarm, Sensor
    from tianmu.sensing.services import ingest_messages

    items = [{"sensor": code, "ts": ts.isoformat(), "value": storm_value(stype, i, k)}
             for k, ts in enumerate(times) for i, (_sid, code, _st, stype) in enumerate(sensors)]
    for j in range(0, len(items), 5000):
        ingest_messages([(f"{prefix}/gw-storm/batch", json.dumps({"readings": items[j:j + 5000]}).encode())],
                        prefix=prefix)
    now = timezone.now()
    extra = []
    with transaction.atomic():
        for s in Sensor.objects.filter(sensor_type__in=["water_level", "displacement", "soil_moisture"]):
            rules = {"water_level": [("threshold", "rise_rate", "rise_rate_1h")],
                     "displacement": [("threshold", "displacement", "displacement_rate_24h"),
                                      ("device_fault", "no_data", "no_data")],
                     "soil_moisture": [("device_fault", "no_data", "no_data")]}[s.sensor_type]
            for kind, rule, metric in rules:
                extra.append(Alarm(kind=kind, rule=rule, metric=metric, sensor=s, station_id=s.station_id,
                                   region_id=s.region_id, level="blue", peak_level="blue", value=0.0, threshold=0.0,
                                   status="acknowledged" if kind == "device_fault" else "open", opened_at=now,
                                   observed_at=times[-1], last_level_change=now, cleared_at=times[-1]))
        Alarm.objects.bulk_create(extra, batch_size=1000)
    return Alarm.objects.filter(status__in=ACTIVE_STATUSES).count()
