"""Replaying a past storm (`tianmu replay`) into a separate **scenario database**, so it can be studied — alarms,
rainfall products, the map — without touching live alarms.

Why a separate database rather than historical rows in the live one: every alarm, count, map colour and
event stream of the live system would have to tell the two apart, and a replayed alarm would compete with a live
one for the one-active-alarm-per-sensor-and-rule rule. In a scenario database nothing replayed can ever be shown
as live, and it is studied with the same pages (`TIANMU_DATABASE_URL=<scenario> tianmu runserver`).

Steps: (1) the series is read and checked in the live process — a CSV file (`sensor,ts,value` or
传感器编码/时间/数值, UTF-8 or GBK; every bad row listed, nothing replayed unless all pass) or the readings stored
in the live database for a period; (2) the scenario database is migrated and receives a copy of the regions,
hazard sources, stations, sensors and thresholds (and, with --with-users, the accounts); (3) a child process
bound to the scenario database stores the antecedent history (readings before the storm, through
`storage.store_readings`, no rules: they only feed the soil state and effective rainfall) and then feeds the
storm through the ingest worker's own path (`services.ingest_messages`, gateway batch messages) in time order,
one step of `--batch-minutes` at a time, each step received at its own data time, with progress.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from .conf import conf
from .parsing import ParseError, parse_ts

__all__ = ["SeriesError", "read_csv", "stored_series", "prepare_scenario", "feed", "same_database",
           "REGISTRY_MODELS"]

REGISTRY_MODELS = ["core.Region", "registry.HazardSource", "sensing.Station", "sensing.Sensor", "sensing.Threshold"]
COLUMNS = {"sensor": ("sensor", "传感器编码", "传感器"), "ts": ("ts", "时间", "观测时间"), "value": ("value", "数值", "读数")}
MAX_ERRORS = 200

Row = tuple[str, datetime, float]


class SeriesError(Exception):
    """The series cannot be replayed; `errors` lists every bad row (line, column, message)."""

    def __init__(self, errors: list[tuple[int, str, str]]):
        super().__init__(f"{len(errors)} bad rows")
        self.errors = errors


def read_csv(path: Path) -> list[Row]:
    """Every row of a readings CSV, checked; raises SeriesError with every bad row (up to MAX_ERRORS)."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SeriesError([(0, "file", "not UTF-8 or GBK text")])
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    index = {}
    for name, aliases in COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in aliases]
        if not found:
            raise SeriesError([(1, name, f"missing column {name} ({' / '.join(aliases)})")])
        index[name] = found[0]
    rows, errors = [], []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        cell = {name: (cells[i].strip() if i < len(cells) else "") for name, i in index.items()}
        if not cell["sensor"]:
            errors.append((line, "sensor", "empty"))
        try:
            ts = parse_ts(cell["ts"])
        except (ParseError, ValueError) as exc:
            errors.append((line, "ts", str(getattr(exc, "message", exc))))
            ts = None
        try:
            value = float(cell["value"])
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("not a finite number")
        except ValueError as exc:
            errors.append((line, "value", str(exc)))
            value = None
        if ts is not None and value is not None and cell["sensor"]:
            rows.append((cell["sensor"], ts, value))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise SeriesError(errors)
    return rows


def stored_series(start: datetime, end: datetime) -> list[Row]:
    """The readings stored in the (live) database with start < ts <= end, every sensor: a reading is the rain of the
    interval ending at its time, so a storm "from 20:00 to 02:00" (as `tianmu demo` prints it) is the readings of
    (20:00, 02:00], and the history before it those up to 20:00 — the rule windows' own convention. (It was
    [start, end): the storm's last step was left out, and the replay ended with fewer alarms than the storm.)"""
    from .models import Reading

    return [(code, ts, value) for code, ts, value in Reading.objects.filter(ts__gt=start, ts__lte=end)
            .values_list("sensor__code", "ts", "value").order_by("ts").iterator(chunk_size=20000)]


def same_database(url: str) -> bool:
    import dj_database_url

    other = dj_database_url.parse(url)
    live = settings.DATABASES["default"]
    return (other["ENGINE"] == live["ENGINE"] and str(other.get("NAME")) == str(live.get("NAME"))
            and (other.get("HOST") or "") == (live.get("HOST") or "")
            and str(other.get("PORT") or "") == str(live.get("PORT") or ""))


def _child(url: str, *args: str, stdout=None) -> None:
    env = {**os.environ, "TIANMU_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "tianmu.cli", *args], env=env, check=True, stdout=stdout)


def prepare_scenario(url: str, *, with_users: bool, workdir: Path) -> Path:
    """Dump the registry the replay needs from the live database into a fixture; the child loads it."""
    models = (["core.User"] if with_users else []) + REGISTRY_MODELS
    fixture = workdir / "registry.json"
    call_command("dumpdata", *models, output=str(fixture), verbosity=0)
    return fixture


def write_series(rows: Iterable[Row], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for code, ts, value in rows:
            fh.write(json.dumps([code, ts.astimezone(UTC).isoformat(), value]) + "\n")
            n += 1
    return n


def read_series(path: Path) -> list[Row]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            code, ts, value = json.loads(line)
            out.append((code, datetime.fromisoformat(ts), float(value)))
    return out


@dataclass
class Progress:
    steps: int = 0
    readings: int = 0
    stored: int = 0
    dead: int = 0
    alarms: dict[str, int] = field(default_factory=dict)


def feed(rows: list[Row], *, start: datetime, batch: timedelta, history: list[Row] = (),
         report: Callable[[datetime, Progress], None] | None = None, every: int = 12) -> Progress:
    """Store `history` without rules, then feed `rows` (the storm, ts >= start) through the ingest worker's
    path one step of `batch` at a time, in time order, each received at its step's end. Runs against the
    current default database (the scenario's, in the child process)."""
    from django.db import transaction

    from .models import Sensor
    from .services.readings import ingest_messages
    from .storage import store_readings

    prefix = conf("SENSING_MQTT_TOPIC_PREFIX")
    ids = dict(Sensor.objects.values_list("code", "pk"))
    progress = Progress()
    hist = [(ids[c], ts, v) for c, ts, v in history if c in ids]
    for i in range(0, len(hist), 20000):
        with transaction.atomic():
            store_readings(hist[i:i + 20000], received_at=start)
    rows = sorted((r for r in rows if r[1] >= start), key=lambda r: r[1])
    step_start, i = start, 0
    while i < len(rows):
        step_end = step_start + batch
        chunk = []
        while i < len(rows) and rows[i][1] <= step_end:  # a step is (its start, its end], like a reading
            chunk.append(rows[i])
            i += 1
        if chunk:
            for k in range(0, len(chunk), 5000):  # the gateway batch limit
                part = chunk[k:k + 5000]
                body = {"readings": [{"sensor": c, "ts": ts.isoformat(), "value": v} for c, ts, v in part]}
                topic = f"{prefix}/replay/batch"
                outcome = ingest_messages([(topic, json.dumps(body).encode())], prefix=prefix,
                                          now=max(ts for _c, ts, _v in part))
                progress.stored += outcome.stored
                progress.dead += outcome.dead_letters
            progress.readings += len(chunk)
        progress.steps += 1
        if report and (progress.steps % every == 0 or i >= len(rows)):
            from .demo.simulate import active_alarm_levels

            progress.alarms = active_alarm_levels()
            report(min(step_end, rows[-1][1]), progress)
        step_start = step_end
    return progress


def local(ts: datetime) -> str:
    return timezone.localtime(ts).strftime("%Y-%m-%d %H:%M")


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tianmu-replay-"))
