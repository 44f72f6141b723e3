"""One reading per MQTT message: sustained messages/second of one `tianmu ingest` process, and publish → alarm
latency at a steady offered rate.

    /tmp/setup/venv/bin/python bench/sensing_mqtt.py                    # both brokers (about 4 minutes)
    /tmp/setup/venv/bin/python bench/sensing_mqtt.py --broker shared     # only the local Mosquitto as configured
    /tmp/setup/venv/bin/python bench/sensing_mqtt.py --latency-rate 1000 --latency-seconds 20 --py-spy

Set-up: a fresh PostgreSQL bench database (`tianmu_bench_sensing_mqtt` at 127.0.0.1, dropped at the end unless
--keep) with the district's 480-sensor fleet plus dedicated gas detectors used as alarm triggers. Per broker:

* `shared` — the local Mosquitto at 127.0.0.1:1883 as it is configured (max_inflight_messages 20,
  max_queued_messages 1000: the defaults);
* `tuned` — a private `mosquitto` the bench starts on a free loopback port with the `max_*` settings of
  deploy/mosquitto/tianmu.conf (the broker configuration the project ships: `max_inflight_messages 1000`,
  `max_queued_messages 200000`), so the worker's own capacity shows.

The worker is the real `python -m tianmu.cli ingest` subprocess (production settings, DEBUG off, default
batching: 500 readings / 200 ms), with its own topic prefix and client id, so nothing reaches other sessions'
workers on the shared broker. The publisher is a separate process (paho-mqtt, QoS 1, up to 1,000 messages in
flight, clean session) sending `{prefix}/{station}/{sensor}/data` with `{"ts": <publish time, epoch seconds
with microseconds>, "value": …}` round-robin over the fleet.

1. Warm-up: one message per fleet sensor, waited for in the database.
2. Throughput: `--messages` messages as fast as the publisher can; the parent samples `count(*)` of the readings
   table every 0.25 s; sustained = readings stored per second between 10 % and 90 % of what arrived (the
   broker may drop what exceeds its queue: reported).
3. Latency: a steady `--latency-rate` (2,000/s) for `--latency-seconds`; every `--trigger-every`-th message goes
   to a fresh gas detector with 60 %LEL (red alarm). A poller in the parent reads new alarm rows every 10 ms.
   Latency = time the alarm row was first seen committed − the publish time in the payload (an upper bound,
   including up to 10 ms polling); also the alarm's own `opened_at` (stamped at the start of its batch's
   transaction) − publish time. Triggers never seen within the drain time count as lost.

Goals from the issue: ≥ 5,000 messages/s sustained; p99 publish → alarm < 1 s at 2,000 messages/s. Prints a table
and writes bench/results/<time>-sensing-mqtt.json. Only 127.0.0.1 is used; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sensing_common import (  # noqa: E402
    ROOT,
    BenchError,
    check_loopback,
    child_env,
    drop_db,
    git_rev,
    loadavg,
    log,
    machine_info,
    migrate,
    percentile,
    sample_value,
    save_result,
    seed_fleet,
    seed_storm,
    setup_django,
    storm_value,
)

DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tianmu_bench_sensing_mqtt"
SHARED = ("127.0.0.1", 1883)
TUNED_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "tianmu.conf"
THROUGHPUT_GOAL = 5000.0
WORKER_APP = "tianmu-bench-ingest"  # the worker's PostgreSQL application_name, to find its backends
BROKER_PID: list[int | None] = [None]  # the private broker's process, for its CPU per message
P99_GOAL_S = 1.0
TRIGGER_VALUE = 60.0  # gas %LEL: red


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ publisher

def publisher(spec_path: str) -> dict:
    """The load generator (its own process): QoS 1, many messages in flight, paced or as fast as possible."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    spec = json.loads(Path(spec_path).read_text())
    fleet, triggers = spec["fleet"], list(spec["triggers"])
    prefix, rate, total = spec["prefix"], spec["rate"], spec["count"]
    every = spec.get("trigger_every") or 0
    acked = [0]
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:10]}",
                         clean_session=True, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(spec.get("inflight", 1000))
    client.max_queued_messages_set(0)
    client.on_connect = lambda c, u, f, rc, p: connected.set()

    def on_publish(c, u, mid, rc, p):
        acked[0] += 1

    client.on_publish = on_publish
    client.connect(spec["host"], spec["port"], keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit("publisher: broker did not answer")
    topics = [f"{prefix}/{st}/{code}/data" for code, st, _t in fleet]
    sent_triggers = []
    t0 = time.time()
    max_behind = 0.0
    k0 = spec.get("round", 0)
    j = 0  # fleet position
    for i in range(total):
        if rate:
            due = t0 + i / rate
            now = time.time()
            if due > now:
                time.sleep(due - now)
            else:
                max_behind = max(max_behind, now - due)
        if every and triggers and i % every == every - 1:
            code, st = triggers.pop(0)
            now = time.time()
            client.publish(f"{prefix}/{st}/{code}/data",
                           json.dumps({"ts": round(now, 6), "value": TRIGGER_VALUE}).encode(), qos=1)
            sent_triggers.append((code, round(now, 6)))
            continue
        code, _st, stype = fleet[j]
        if spec.get("storm"):  # every gauge reporting storm values that keep the open alarms at their level
            value = storm_value(stype, j, k0 + i // len(fleet))
        else:
            value = sample_value(stype, j, k0 + i // len(fleet))
            if stype == "rainfall":
                value = 0.1 if (i // len(fleet)) % 10 == 0 else 0.0  # a trace, never a rainstorm
        now = time.time()
        client.publish(topics[j], json.dumps({"ts": round(now, 6), "value": value}).encode(), qos=1)
        j = (j + 1) % len(fleet)
    t_last = time.time()
    deadline = time.time() + 60
    while acked[0] < total and time.time() < deadline:
        time.sleep(0.01)
    t_acked = time.time()
    client.disconnect()
    client.loop_stop()
    return {"published": total, "acked": acked[0], "t_first": t0, "t_last": t_last, "t_all_acked": t_acked,
            "publish_rate": total / (t_last - t0) if t_last > t0 else 0.0, "max_behind_schedule_s": max_behind,
            "triggers": sent_triggers}


def run_publisher(work: Path, name: str, spec: dict, timeout: float) -> subprocess.Popen:
    path = work / f"pub-{name}.json"
    path.write_text(json.dumps(spec))
    return subprocess.Popen([sys.executable, __file__, "--publisher", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def publisher_result(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"publisher failed ({proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")
    return json.loads(line.split(" ", 1)[1])


# ----------------------------------------------------------------------------------------- brokers

class PrivateBroker:
    """A Mosquitto of our own on a free loopback port, tuned as docs/sensing.md advises for large networks."""

    def __init__(self, work: Path):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise BenchError("mosquitto is not installed (Debian package `mosquitto`)")
        self.port = free_port()
        conf = work / "mosquitto-bench.conf"
        tuning = [line for line in TUNED_CONF.read_text().splitlines() if line.startswith("max_")]
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        + "\n".join(tuning) + "\n")
        self._log = open(work / "mosquitto-bench.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 10
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                raise BenchError("the private mosquitto did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def clean_session(host: str, port: int, client_id: str) -> None:
    """Remove the worker's persistent session from the broker (connect once with clean_session=True)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
    try:
        c.connect(host, port)
        c.loop_start()
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()
    except OSError:
        pass


# -------------------------------------------------------------------------------------------- worker

def worker_shim(experiment: str) -> None:
    """EXPERIMENT only (--experiment): the same `ingest` command with part of the path switched off, to see
    what that part costs. Never used for the goal figures."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from tianmu.sensing.services import readings

    if experiment == "no-rules":
        readings._evaluate_guarded = lambda *args, **kwargs: 0
    call_command("ingest")


class Worker:
    """`python -m tianmu.cli ingest` against the bench database, in its own process group."""

    def __init__(self, env: dict, log_path: Path, experiment: str | None = None):
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.log_path = log_path
        cmd = ([sys.executable, __file__, "--worker-shim", experiment] if experiment
               else [sys.executable, "-m", "tianmu.cli", "ingest"])
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.log_path.read_text(errors="replace")[-3000:]


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) a process has used so far, from /proc; 0 if it is gone."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by the worker process and by its PostgreSQL backends between start() and stop(): the figures that
    do not depend on what else the shared machine is doing. The backends (the worker's connection pool: a batch
    may run on any of them) are found by the application name the worker connects with (PGAPPNAME)."""

    def __init__(self, worker: Worker, db: Db, broker_pid: int | None = None):
        self.worker, self.db, self.broker_pid = worker, db, broker_pid
        self.pg0: dict[int, float] = {}

    def backends(self) -> dict[int, float]:
        rows = self.db.conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                    (WORKER_APP,)).fetchall()
        return {pid: proc_cpu(pid) for (pid,) in rows}

    def start(self) -> None:
        self.t0, self.w0, self.pg0 = time.time(), proc_cpu(self.worker.proc.pid), self.backends()
        self.b0 = proc_cpu(self.broker_pid)

    def stop(self, messages: int, until: float | None = None) -> dict:
        w = proc_cpu(self.worker.proc.pid) - self.w0
        pgc = sum(cpu - self.pg0.get(pid, 0.0) for pid, cpu in self.backends().items())
        broker = proc_cpu(self.broker_pid) - self.b0 if self.broker_pid else None
        wall = (until or time.time()) - self.t0
        return {"worker_cpu_s": w, "postgres_cpu_s": pgc, "wall_s": wall,
                "broker_us_per_msg": 1e6 * broker / messages if broker is not None and messages else None,
                "worker_cpu_share": w / wall if wall > 0 else 0.0,
                "worker_us_per_msg": 1e6 * w / messages if messages else 0.0,
                "postgres_us_per_msg": 1e6 * pgc / messages if messages else 0.0,
                "msgs_per_worker_cpu_s": messages / w if w > 0 else 0.0,
                "msgs_per_cpu_s_with_postgres": messages / (w + pgc) if w + pgc > 0 else 0.0}


# ------------------------------------------------------------------------------------------- database

class Db:
    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM sensing_reading").fetchone()[0]

    def reset(self) -> None:
        self.conn.execute("TRUNCATE sensing_reading, sensing_hourly, sensing_sensorlatest")
        self.conn.execute("DELETE FROM sensing_alarm")
        self.conn.execute("DELETE FROM core_event WHERE type LIKE 'sensing.%%'")
        self.conn.execute("DELETE FROM core_deadletter")

    def dead_letters(self) -> int:
        return self.conn.execute("SELECT count(*) FROM core_deadletter").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def wait_count(db: Db, target: int, timeout: float, stall: float = 15.0) -> tuple[int, list[tuple[float, int]]]:
    """Sample count(*) every 0.25 s until it reaches target, stalls for `stall` seconds, or times out."""
    samples = []
    deadline = time.time() + timeout
    last_change, last = time.time(), -1
    while time.time() < deadline:
        n = db.count()
        now = time.time()
        samples.append((now, n))
        if n != last:
            last, last_change = n, now
        if n >= target or now - last_change > stall:
            break
        time.sleep(0.25)
    return last, samples


def sustained_rate(samples: list[tuple[float, int]], base: int) -> float:
    """Readings per second between 10 % and 90 % of what was stored in this phase."""
    pts = [(t, n - base) for t, n in samples]
    final = pts[-1][1] if pts else 0
    if final <= 0:
        return 0.0
    lo = next(((t, n) for t, n in pts if n >= 0.1 * final), None)
    hi = next(((t, n) for t, n in pts if n >= 0.9 * final), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


class CountSampler(threading.Thread):
    """Samples count(*) of the readings every 0.25 s from before the publisher starts (on its own connection), so
    the sustained rate also sees what was stored while the publisher was still sending."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            n = self.conn.execute("SELECT count(*) FROM sensing_reading").fetchone()[0]
            self.samples.append((time.time(), n))
            self.stopping.wait(0.25)
        self.conn.close()

    def stop(self) -> list[tuple[float, int]]:
        self.stopping.set()
        self.join(10)
        return self.samples


class AlarmPoller(threading.Thread):
    """Reads new alarm rows every 10 ms; remembers when each was first seen (wall clock)."""

    def __init__(self, url: str, prefix_code: str):
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.like = prefix_code + "%"
        self.seen: dict[str, tuple[float, float, float]] = {}  # code -> (seen, opened_at, observed_at)
        self.last_id = 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            rows = self.conn.execute(
                "SELECT a.id, s.code, extract(epoch FROM a.opened_at), extract(epoch FROM a.observed_at) "
                "FROM sensing_alarm a JOIN sensing_sensor s ON s.id = a.sensor_id "
                "WHERE a.id > %s AND s.code LIKE %s ORDER BY a.id", (self.last_id, self.like)).fetchall()
            now = time.time()
            for aid, code, opened, observed in rows:
                self.last_id = max(self.last_id, aid)
                self.seen.setdefault(code, (now, float(opened), float(observed)))
            time.sleep(0.01)
        self.conn.close()


# ------------------------------------------------------------------------------------------ one broker

def storm_state(seeded: list, prefix: str) -> int:
    """Storm state before the worker starts (untimed): 3 hours of storm values for the whole fleet through
    `ingest_messages`, ending a minute ago, plus the alarms a storm leaves open (sensing_common.seed_storm)."""
    from datetime import timedelta

    from django.db import connections

    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    times = [end - timedelta(minutes=5) * (35 - k) for k in range(36)]
    n = seed_storm(seeded, times, prefix)
    connections.close_all()
    return n


def bench_broker(name: str, host: str, port: int, args, fleet, triggers, db: Db, work: Path,
                 storm: list | None = None) -> dict:
    tag = uuid.uuid4().hex[:10]
    prefix = f"bench-sensing/{tag}"
    client_id = f"bench-ingest-{tag}"
    out: dict = {"broker": name, "host": host, "port": port, "prefix": prefix, "state": "storm" if storm else "quiet"}
    db.reset()
    if storm:
        log(f"{name}: storm state — 3 h of storm readings and the alarms a storm leaves open")
        out["open_alarms_at_start"] = storm_state(storm, prefix)
        out["open_alarms_at_start"] = db.conn.execute(
            "SELECT count(*) FROM sensing_alarm WHERE status IN ('open', 'acknowledged')").fetchone()[0]
        log(f"{name}: {out['open_alarms_at_start']} open alarms")
    env = child_env(args.db_url, work, TIANMU_MQTT_URL=f"mqtt://{host}:{port}", TIANMU_MQTT_TOPIC_PREFIX=prefix,
                    TIANMU_MQTT_CLIENT_ID=client_id, TIANMU_LOG_LEVEL="WARNING", TIANMU_MQTT_SHARE_GROUP="",
                    PGAPPNAME=WORKER_APP,
                    **dict(e.split("=", 1) for e in args.env))
    worker = Worker(env, work / f"ingest-{name}.log", args.experiment)
    base_spec = {"host": host, "port": port, "prefix": prefix, "fleet": fleet, "triggers": [], "inflight": 1000,
                 "storm": bool(storm)}
    try:
        # 1. warm-up: one reading per fleet sensor (also proves the worker is subscribed)
        log(f"{name}: warm-up ({len(fleet)} messages)")
        # Counted from what is stored before it: in the storm state the table already holds the storm's history,
        # and a warm-up that looked at the whole count went on before the worker had subscribed, so the start of
        # the throughput phase went to a broker with no subscriber yet (acknowledged to the publisher, delivered to
        # nobody: 2,000–3,500 "lost" readings in the storm rows of earlier runs, a bench fault, not the worker's).
        deadline = time.time() + 60
        while True:
            before = db.count()
            proc = run_publisher(work, f"{name}-warm", {**base_spec, "rate": 0, "count": len(fleet), "round": 0}, 60)
            publisher_result(proc, 90)
            n, _ = wait_count(db, before + len(fleet), 10, stall=5)
            if n - before >= len(fleet) // 2 or time.time() > deadline or not worker.alive():
                break  # the first messages may precede the subscription; those are lost (clean publisher)
        if not worker.alive():
            raise BenchError(f"ingest worker exited:\n{worker.stop()}")
        wait_count(db, before + len(fleet), 20, stall=5)

        # 2. throughput
        base = db.count()
        log(f"{name}: throughput — {args.messages} messages as fast as the publisher can")
        meter = CpuMeter(worker, db, BROKER_PID[0])
        meter.start()
        sampler = CountSampler(args.db_url)
        sampler.start()
        proc = run_publisher(work, f"{name}-tp", {**base_spec, "rate": 0, "count": args.messages, "round": 10}, 600)
        spy = None
        if args.py_spy:
            spy_out = work.parent / f"sensing-mqtt-{name}-pyspy.txt"
            exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy = subprocess.Popen([exe, "record", "--pid", str(worker.proc.pid), "--rate", "200", "--format",
                                    "raw", "--duration", str(args.py_spy_seconds), "--output", str(spy_out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out["py_spy_raw"] = str(spy_out)
        pub = publisher_result(proc, 600)
        n, samples = wait_count(db, base + args.messages, args.drain_seconds, stall=10)
        samples = sorted(sampler.stop() + samples)
        if spy is not None:
            spy.wait(args.py_spy_seconds + 30)
        stored = n - base
        t_done = next((t for t, c in samples if c == n), samples[-1][0])
        cpu = meter.stop(stored, t_done)
        out["open_alarms_after_throughput"] = db.conn.execute(
            "SELECT count(*) FROM sensing_alarm WHERE status IN ('open', 'acknowledged')").fetchone()[0]
        out["throughput"] = {
            "published": pub["published"], "publish_rate": pub["publish_rate"], "stored": stored,
            "lost": pub["published"] - stored, "sustained_rate": sustained_rate(samples, base),
            "overall_rate": stored / (t_done - pub["t_first"]) if t_done > pub["t_first"] else 0.0,
            "seconds_first_publish_to_last_stored": t_done - pub["t_first"],
            "dead_letters": db.dead_letters(),
            "cpu": cpu,
        }
        tp_window = (pub["t_first"], pub["t_last"])  # every reading of the phase is stamped with its publish time
        tp = out["throughput"]
        log(f"{name}: published {pub['published']} at {pub['publish_rate']:,.0f}/s; stored {stored} "
            f"(sustained {tp['sustained_rate']:,.0f}/s, overall {tp['overall_rate']:,.0f}/s, lost {tp['lost']})")
        log(f"{name}: worker CPU {cpu['worker_us_per_msg']:.0f} µs/message ({cpu['msgs_per_worker_cpu_s']:,.0f} "
            f"messages per CPU-second; it had {cpu['worker_cpu_share']:.0%} of a core), its PostgreSQL backends "
            f"{cpu['postgres_us_per_msg']:.0f} µs/message, the broker "
            + (f"{cpu['broker_us_per_msg']:.0f} µs/message" if cpu["broker_us_per_msg"] is not None else "–"))

        # 3. latency at a steady rate
        count = int(args.latency_rate * args.latency_seconds)
        n_trig = count // args.trigger_every
        mine, rest = triggers[:n_trig], triggers[n_trig:]
        triggers[:] = rest
        poller = AlarmPoller(args.db_url, "GT-")
        poller.start()
        base = db.count()
        log(f"{name}: latency — {args.latency_rate:g} messages/s for {args.latency_seconds:g}s, "
            f"{len(mine)} alarm triggers")
        proc = run_publisher(work, f"{name}-lat", {**base_spec, "rate": args.latency_rate, "count": count,
                                                   "round": 1000, "triggers": mine,
                                                   "trigger_every": args.trigger_every}, 600)
        pub = publisher_result(proc, args.latency_seconds + 120)
        sent = dict((code, ts) for code, ts in pub["triggers"])
        deadline = time.time() + args.drain_seconds
        last_n, last_change = -1, time.time()
        while time.time() < deadline and len(set(poller.seen) & set(sent)) < len(sent):
            time.sleep(0.5)
            now_n = db.count()
            if now_n != last_n:
                last_n, last_change = now_n, time.time()
            elif time.time() - last_change > 10:
                break  # nothing more arrives: the rest was dropped by the broker
        n, _ = wait_count(db, base + count, 10, stall=5)
        poller.stopping.set()
        poller.join(5)
        seen_lat, opened_lat = [], []
        for code, ts in sent.items():
            if code in poller.seen:
                seen, opened, observed = poller.seen[code]
                seen_lat.append(seen - ts)
                opened_lat.append(opened - ts)
        seen_lat.sort()
        opened_lat.sort()

        def stats(v):
            return {"n": len(v), "p50_ms": percentile(v, 50) * 1000 if v else None,
                    "p90_ms": percentile(v, 90) * 1000 if v else None,
                    "p99_ms": percentile(v, 99) * 1000 if v else None, "max_ms": v[-1] * 1000 if v else None}

        out["latency"] = {
            "offered_rate": args.latency_rate, "seconds": args.latency_seconds, "published": pub["published"],
            "publish_rate": pub["publish_rate"], "publisher_max_behind_schedule_ms": pub["max_behind_schedule_s"] * 1000,
            "stored": n - base, "triggers": len(sent), "alarms_seen": len(seen_lat),
            "lost_triggers": len(sent) - len(seen_lat), "seen": stats(seen_lat), "opened_at": stats(opened_lat),
        }
        lat = out["latency"]
        log(f"{name}: alarms {lat['alarms_seen']}/{lat['triggers']}; publish → seen p50 "
            f"{lat['seen']['p50_ms'] or float('nan'):.0f} ms, p99 {lat['seen']['p99_ms'] or float('nan'):.0f} ms")

        # What the throughput phase's drain missed but arrived later (redelivered after the broker's ack_wait, or
        # stored after the drain gave up): stored late is not lost.
        tp["stored_by_end"] = db.conn.execute(
            "SELECT count(*) FROM sensing_reading r JOIN sensing_sensor s ON s.id = r.sensor_id WHERE r.ts BETWEEN "
            "to_timestamp(%s) AND to_timestamp(%s) AND s.code NOT LIKE 'GT-%%'", tp_window).fetchone()[0]
        tp["lost_by_end"] = tp["published"] - tp["stored_by_end"]
        if tp["lost"]:
            log(f"{name}: of the throughput phase's {tp['published']}, {tp['stored_by_end']} stored by the end "
                f"of the latency phase ({tp['lost_by_end']} never)")

        # 4. backlog after an outage: the worker is away while the devices go on publishing; the broker queues
        # for its persistent session; then a fresh worker process drains the backlog.
        if args.backlog:
            log(f"{name}: backlog — worker stopped, {args.backlog} messages queued at the broker")
            worker.stop()
            base = db.count()
            proc = run_publisher(work, f"{name}-backlog", {**base_spec, "rate": 0, "count": args.backlog,
                                                           "round": 2000}, 600)
            pub = publisher_result(proc, 600)
            worker = Worker(env, work / f"ingest-{name}-backlog.log", args.experiment)
            t_start = time.time()
            meter = CpuMeter(worker, db, BROKER_PID[0])
            meter.start()
            n, samples = wait_count(db, base + pub["published"], args.drain_seconds + 60, stall=20)
            t_done = next((t for t, c in samples if c == n), samples[-1][0])
            first = next((t for t, c in samples if c > base), None)
            cpu = meter.stop(n - base, t_done)
            out["backlog"] = {"published": pub["published"], "stored": n - base, "lost": pub["published"] - (n - base),
                              "seconds_from_worker_start": t_done - t_start,
                              "seconds_from_first_stored": (t_done - first) if first else None,
                              "drain_rate": (n - base) / (t_done - first) if first and t_done > first else 0.0,
                              "cpu": cpu}
            b = out["backlog"]
            log(f"{name}: backlog of {b['published']} drained in {b['seconds_from_worker_start']:.1f} s from the "
                f"worker's start ({b['drain_rate']:,.0f}/s once storing; lost {b['lost']})")
    finally:
        tail = worker.stop()
        out["worker_log_tail"] = tail[-1500:]
        clean_session(host, port, client_id)
    return out


# ------------------------------------------------------------------------------------------------ main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db-url", default=DEFAULT_DB_URL, help=f"PostgreSQL bench database (default {DEFAULT_DB_URL})")
    p.add_argument("--broker", choices=["nats", "tuned", "shared", "both", "all"], default="nats",
                   help="nats: NATS JetStream's MQTT listener as deploy/nats/tianmu.conf ships it (the crash-safe set-up, "
                   "the default); tuned: a private Mosquitto with deploy/mosquitto/tianmu.conf's limits; shared: the "
                   "local Mosquitto at 1883 as configured; both: tuned + shared; all: the three")
    p.add_argument("--state", choices=["quiet", "storm", "both"], default="both",
                   help="quiet weather, the storm state (≥ 1,000 open alarms, every gauge reporting storm values), "
                   "or both, one after the other per broker (default both)")
    p.add_argument("--messages", type=int, default=60000, help="messages in the throughput phase (default 60000)")
    p.add_argument("--latency-rate", type=float, default=2000, help="offered messages/s (default 2000)")
    p.add_argument("--latency-seconds", type=float, default=30, help="length of the latency phase (default 30)")
    p.add_argument("--trigger-every", type=int, default=100, help="one alarm trigger per N messages (default 100)")
    p.add_argument("--drain-seconds", type=float, default=120, help="wait at most this long for the worker "
                   "to catch up after a phase (default 120)")
    p.add_argument("--backlog", type=int, default=60000, help="messages queued at the broker while the worker is "
                   "stopped, then drained by a fresh worker (default 60000; 0 skips the phase)")
    p.add_argument("--py-spy", action="store_true", help="sample the worker with py-spy during the throughput phase")
    p.add_argument("--py-spy-seconds", type=int, default=10)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the worker (repeatable), e.g. TIANMU_INGEST_BATCH=1000")
    p.add_argument("--experiment", choices=["no-rules"],
                   help="EXPERIMENT: run the worker with rule evaluation switched off (what the rules cost)")
    p.add_argument("--keep", action="store_true", help="keep the bench database")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--publisher", help=argparse.SUPPRESS)
    p.add_argument("--worker-shim", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if any("=" not in e for e in args.env):
        p.error("--env takes KEY=VALUE")
    if not 1000 <= args.messages <= 500_000 or not 10 <= args.latency_rate <= 20000 \
            or not 1 <= args.latency_seconds <= 120 or not 5 <= args.drain_seconds <= 300 \
            or not 0 <= args.backlog <= 500_000:
        p.error("bounded: --messages 1000..500000, --latency-rate 10..20000, --latency-seconds 1..120, "
                "--drain-seconds 5..300, --backlog 0..500000")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.publisher:
        print("RESULT " + json.dumps(publisher(args.publisher)), flush=True)
        return 0
    if args.worker_shim:
        worker_shim(args.worker_shim)
        return 0
    check_loopback(args.db_url)
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    brokers = {"both": ["shared", "tuned"], "all": ["nats", "tuned", "shared"]}.get(args.broker, [args.broker])
    result = {"bench": "sensing_mqtt", "started": started.isoformat(), "git": git_rev(), "machine": machine_info(),
              "loadavg_start": loadavg(), "config": {k: v for k, v in vars(args).items() if k != "out"},
              "brokers": {}}
    if "shared" in brokers and not port_open(*SHARED):
        print("bench: no Mosquitto at 127.0.0.1:1883 (use --broker tuned)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="tianmu-bench-mqtt-"))
    private = None
    try:
        log("migrating a fresh bench database")
        migrate(args.db_url, work)
        setup_django(args.db_url, work)
        per_run = int(args.latency_rate * args.latency_seconds) // args.trigger_every
        states = ["quiet", "storm"] if args.state == "both" else [args.state]
        seeded = seed_fleet(extra_gas=per_run * len(brokers) * len(states) + 10)
        fleet = [[code, st, t] for _pk, code, st, t in seeded["sensors"] if not code.startswith("GT-")]
        storm_fleet = [tuple(row) for row in seeded["sensors"] if not row[1].startswith("GT-")]
        triggers = [[code, st] for _pk, code, st, _t in seeded["sensors"] if code.startswith("GT-")]
        log(f"fleet: {len(fleet)} sensors, {len(triggers)} trigger gas detectors")
        from django.db import connections

        connections.close_all()
        db = Db(args.db_url)
        for name in brokers:
            if name == "tuned":
                private = PrivateBroker(work)
                host, port = "127.0.0.1", private.port
                BROKER_PID[0] = private.proc.pid
            elif name == "nats":
                from broker_durability import Nats

                private = Nats(work)
                private.start()
                host, port = "127.0.0.1", private.port
                BROKER_PID[0] = private.proc.pid
            else:
                host, port = SHARED
                BROKER_PID[0] = None
            for state in states:
                key = name if state == "quiet" else f"{name}-storm"
                result["brokers"][key] = bench_broker(name, host, port, args, fleet, triggers, db, work,
                                                      storm_fleet if state == "storm" else None)
            if private is not None:
                private.stop()
                private = None
        db.close()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if private is not None:
            private.stop()
        if not args.keep:
            try:
                drop_db(args.db_url)
            except Exception as exc:  # noqa: BLE001
                print(f"bench: could not drop {args.db_url}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = loadavg()
    result["wall_s"] = round(time.perf_counter() - t_start, 1)

    m = result["machine"]
    experiment = bool(args.experiment or args.env)
    print()
    if experiment:
        print(f"EXPERIMENT: {args.experiment or ''} env {args.env}")
    print(f"Sensing MQTT ingest (one reading per message) — git {result['git']}, {m['nproc']} CPU {m['cpu_model']}; "
          f"load average {result['loadavg_start']} → {result['loadavg_end']}")
    print()
    print(f"{'broker':<14} {'open':>5} {'published':>9} {'pub/s':>7} {'stored':>8} {'lost':>6} {'sustained/s':>12} "
          f"{'overall/s':>10}   goal ≥ {THROUGHPUT_GOAL:,.0f}/s   (lost = not stored by the end of the drain; "
          "open = active alarms at the start)")
    goals = {}
    for name, r in result["brokers"].items():
        tp = r["throughput"]
        ok = tp["sustained_rate"] >= THROUGHPUT_GOAL and tp["lost"] == 0
        goals[f"{name}_throughput_5000_per_s"] = ok
        print(f"{name:<14} {r.get('open_alarms_at_start', 0):>5} {tp['published']:>9} {tp['publish_rate']:>7,.0f} "
              f"{tp['stored']:>8} {tp['lost']:>6} "
              f"{tp['sustained_rate']:>12,.0f} {tp['overall_rate']:>10,.0f}   {'MET' if ok else 'NOT MET'}")
    print()
    print(f"Latency at {args.latency_rate:,.0f} messages/s for {args.latency_seconds:g}s "
          f"(ms; 'seen' = first seen committed by a 10 ms poller − publish time; 'opened_at' = the alarm's stamp)")
    print(f"{'broker':<14} {'stored':>8} {'alarms':>9} {'seen p50':>9} {'p90':>7} {'p99':>7} {'max':>7} "
          f"{'opened p50':>11} {'p99':>7}   goal p99 < 1 s")
    for name, r in result["brokers"].items():
        lat = r["latency"]
        s, o = lat["seen"], lat["opened_at"]
        ok = bool(s["n"]) and s["p99_ms"] < P99_GOAL_S * 1000 and lat["lost_triggers"] == 0
        goals[f"{name}_latency_p99_under_1s"] = ok

        def f(x):
            return f"{x:,.0f}" if x is not None else "–"

        print(f"{name:<14} {lat['stored']:>8} {lat['alarms_seen']:>4}/{lat['triggers']:<4} {f(s['p50_ms']):>9} "
              f"{f(s['p90_ms']):>7} {f(s['p99_ms']):>7} {f(s['max_ms']):>7} {f(o['p50_ms']):>11} {f(o['p99_ms']):>7}"
              f"   {'MET' if ok else 'NOT MET'}")
    print()
    print("Worker CPU in the throughput phase (the figures that do not depend on what else the machine runs) and the "
          "backlog drain")
    print(f"{'broker':<14} {'µs/msg':>7} {'msgs per CPU-s':>15} {'share of a core':>16} {'PG µs/msg':>10} "
          f"{'backlog':>8} {'drained in':>11} {'drain/s':>8} {'lost':>5}")
    for name, r in result["brokers"].items():
        cpu, b = r["throughput"].get("cpu", {}), r.get("backlog")
        drained = (f"{b['published']:>8} {b['seconds_from_worker_start']:>10.1f}s {b['drain_rate']:>8,.0f} "
                   f"{b['lost']:>5}") if b else f"{'–':>8}"
        print(f"{name:<14} {cpu.get('worker_us_per_msg', 0):>7.0f} {cpu.get('msgs_per_worker_cpu_s', 0):>15,.0f} "
              f"{cpu.get('worker_cpu_share', 0):>16.0%} {cpu.get('postgres_us_per_msg', 0):>10.0f} {drained}")
    result["goals"] = goals
    print()
    print("Goals: " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}" for k, v in goals.items()))
    path = save_result("sensing-mqtt" + ("-exp" if experiment else ""), result, started, args.out)
    print(f"results: {path}  (wall {result['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
