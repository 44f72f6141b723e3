"""Which broker set-up keeps what it acknowledged through a broker `kill -9`, and what that costs (issue 9, point 3).

    .venv/bin/python bench/broker_durability.py                      # every set-up found on the machine
    .venv/bin/python bench/broker_durability.py --setups mosquitto-60s,nats-jetstream --crash 3000

Each set-up is a private broker the bench starts on free loopback ports with its own data directory (never the
machine's shared brokers), all in the same run, so the figures are ratios against `mosquitto-60s`, the
configuration shipped before (deploy/mosquitto/tianmu.conf: persistence true, autosave_interval 60):

* `mosquitto-60s`          — the old deploy/mosquitto/tianmu.conf (the baseline);
* `mosquitto-every-change` — the same with `autosave_on_changes true` + `autosave_interval 1` (the whole
                             in-memory database is rewritten to disk after every change);
* `nats-jetstream`         — nats-server with JetStream and its MQTT listener (deploy/nats/tianmu.conf);
* `rabbitmq-classic`       — a private RabbitMQ node with rabbitmq_mqtt, durable classic session queues,
                             `mqtt.prefetch = 1000` (deploy/rabbitmq/rabbitmq.conf);
* `rabbitmq-quorum`        — the same with `mqtt.durable_queue_type = quorum`.

Phases per set-up (the subscriber stands in for `tianmu ingest`: clean_session=False, fixed client id, QoS 1):

1. online throughput: the subscriber is connected and acknowledges at once; `--messages` QoS 1 messages as fast
   as one publisher can (1,000 in flight); msgs/s = messages / time to the last PUBACK (capped at `--cap` s);
   deliv/s = messages the subscriber received / time to the last one. One Python publisher is the ceiling of
   the fast set-ups on a small machine: their ratio near 1 means "not slower than the publisher".
2. backlog throughput: the same with the subscriber away, so every message is queued in its session (a worker
   outage in a storm); capped at `--cap` s, the count reached is reported.
3. publish latency: `--rate` messages/s for `--seconds` s with the subscriber online; publish → PUBACK p50/p99.
4. crash: the subscriber away, `--crash` messages published and PUBACKed, the broker killed with SIGKILL right
   after the last PUBACK and restarted on the same data directory; the subscriber then reconnects and drains
   its session until it has everything or nothing new came for `--stall` s. Lost = published − distinct received.

5. with `--ingest`: the real `tianmu ingest` worker behind each broker (except mosquitto-every-change, whose
   publishing alone is too slow), measured by bench/sensing_mqtt.py's own phases (imported, not changed):
   sustained readings/s stored from `--ingest-messages` messages, and publish → alarm p50/p99 at
   `--ingest-rate` (2,000) messages/s for `--ingest-seconds` s, on a fresh PostgreSQL bench database (`--db-url`, dropped at the end).

Prints a table (ratios to mosquitto-60s) and writes bench/results/<time>-broker-durability.json. The machine is
shared: only ratios within one run compare.
"""

from __future__ import annotations

import argparse
import getpass
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

from sensing_common import BenchError, git_rev, loadavg, log, machine_info, percentile, save_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETUPS = ("mosquitto-60s", "mosquitto-every-change", "nats-jetstream", "rabbitmq-classic", "rabbitmq-quorum")
BASELINE = "mosquitto-60s"
OLD_MOSQUITTO = """persistence true
autosave_interval 60
max_inflight_messages 1000
max_queued_messages 200000
max_queued_bytes 0
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def deploy_lines(path: Path, keep) -> str:
    """The settings of a shipped config that matter for durability and capacity (not listeners, auth, paths)."""
    return "".join(line + "\n" for line in path.read_text().splitlines() if keep(line.strip()))


# ----------------------------------------------------------------------------------------------- brokers

class Broker:
    """A private broker process: start(), kill() (SIGKILL to its process group), start() again on the same data."""

    name = ""
    boot_timeout = 30.0

    def __init__(self, work: Path):
        self.dir = work / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log = None

    def command(self) -> tuple[list[str], dict | None]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> float:
        cmd, env = self.command()
        if not shutil.which(cmd[0]) and not Path(cmd[0]).exists():
            raise BenchError(f"{cmd[0]} is not installed")
        self._log = open(self.dir / "broker.log", "ab")  # noqa: SIM115 - closed in kill()/stop()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() - t0 > self.boot_timeout:
                self.kill()
                raise BenchError(f"{self.name} did not start; see {self.dir / 'broker.log'}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            deadline = time.monotonic() + 30  # the group's other processes (the Erlang VM) die a little later
            while port_open(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._log:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        self.kill()


class Mosquitto(Broker):
    extra = ""

    def command(self):
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
                        f"persistence_location {self.dir}/\n" + self.settings())
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)], None

    def settings(self) -> str:
        return OLD_MOSQUITTO


class MosquittoEveryChange(Mosquitto):
    name = "mosquitto-every-change"

    def settings(self) -> str:
        return OLD_MOSQUITTO.replace("autosave_interval 60", "autosave_on_changes true\nautosave_interval 1")


class MosquittoBaseline(Mosquitto):
    name = "mosquitto-60s"


class Nats(Broker):
    name = "nats-jetstream"

    def command(self):
        conf = self.dir / "nats.conf"
        shipped = deploy_lines(DEPLOY / "nats" / "tianmu.conf",
                               lambda s: s.startswith(("max_ack_pending", "ack_wait", "sync_interval")))
        conf.write_text(f"server_name: tianmu-bench-{self.port}\nlisten: 127.0.0.1:{free_port()}\n"
                        f'jetstream {{\n  store_dir: "{self.dir}/js"\n}}\n'
                        f"mqtt {{\n  listen: 127.0.0.1:{self.port}\n{shipped}}}\n")
        return [shutil.which("nats-server") or "/usr/sbin/nats-server", "-c", str(conf)], None


class Rabbit(Broker):
    """A private RabbitMQ node: deploy/rabbitmq/rabbitmq.conf's mqtt settings with quorum session queues."""

    name = "rabbitmq-quorum"
    queue_type = "quorum"
    boot_timeout = 120.0

    def __init__(self, work: Path):
        super().__init__(work)
        self.node = f"tianmu{self.port}@localhost"
        self.amqp, self.dist = free_port(), free_port()

    def command(self):
        shipped = deploy_lines(DEPLOY / "rabbitmq" / "rabbitmq.conf",
                               lambda s: s.startswith(("mqtt.prefetch", "mqtt.subscription_ttl")))
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp}\n"
            f"mqtt.listeners.tcp.1 = 127.0.0.1:{self.port}\nmqtt.allow_anonymous = true\n"
            f"loopback_users = none\nmqtt.durable_queue_type = {self.queue_type}\n" + shipped)
        (self.dir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.amqp),
               "RABBITMQ_DIST_PORT": str(self.dist), "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
               "RABBITMQ_LOG_BASE": str(self.dir / "log"), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
               "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"), "ERL_EPMD_ADDRESS": "127.0.0.1",
               "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump")}
        # The node itself, as the current user (Debian's /usr/sbin/rabbitmq-server switches to `rabbitmq`).
        return ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env


class RabbitClassic(Rabbit):
    """The same with durable classic session queues: what deploy/rabbitmq/rabbitmq.conf ships."""

    name = "rabbitmq-classic"
    queue_type = "classic"


BROKERS = {cls.name: cls for cls in (MosquittoBaseline, MosquittoEveryChange, Nats, Rabbit, RabbitClassic)}


# ------------------------------------------------------------------------------------------------ clients

def client(client_id: str, clean: bool, **kw):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    return mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                       protocol=mqtt.MQTTv311, **kw)


class Subscriber:
    """The stand-in for the ingest worker: persistent session, QoS 1, acknowledges on receipt."""

    def __init__(self, port: int, client_id: str, topic: str):
        self.port, self.client_id, self.topic = port, client_id, topic
        self.seen: set[bytes] = set()
        self.received = 0
        self.last = time.monotonic()
        self.subscribed = threading.Event()
        self.c = None

    def connect(self, timeout: float = 30) -> None:
        self.subscribed.clear()
        c = client(self.client_id, False)

        def on_connect(cl, u, flags, rc, p):
            if not rc.is_failure:
                cl.subscribe(self.topic, qos=1)

        def on_message(cl, u, msg):
            self.received += 1
            self.seen.add(bytes(msg.payload))
            self.last = time.monotonic()

        c.on_connect = on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = on_message
        c.connect_async("127.0.0.1", self.port, keepalive=30)
        c.loop_start()
        self.c = c
        if not self.subscribed.wait(timeout):
            raise BenchError(f"subscriber did not subscribe on port {self.port}")

    def disconnect(self) -> None:
        if self.c is not None:
            self.c.disconnect()
            self.c.loop_stop()
            self.c = None


def publish(port: int, prefix: str, n: int, *, rate: float = 0, cap: float = 60.0, tag: str = "m") -> dict:
    """n QoS 1 messages (paced at `rate`/s, or as fast as possible); wait for every PUBACK (at most `cap` s)."""
    # No lock of our own around paho's calls: on_publish runs under paho's mutexes, and publish() takes them.
    acked_at: dict[int, float] = {}
    done = threading.Event()

    def on_publish(c, u, mid, rc, p):
        acked_at[mid] = time.monotonic()
        if len(acked_at) >= n:
            done.set()

    c = client(f"bench-pub-{uuid.uuid4().hex[:8]}", True)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    t0 = time.monotonic()
    deadline = t0 + cap
    sent: list[tuple[int, float]] = []
    for i in range(min(n, 60000)):  # message ids wrap at 65,535
        if rate:
            due = t0 + i / rate
            while (now := time.monotonic()) < due:
                time.sleep(min(due - now, 0.01))
        if time.monotonic() > deadline:
            break
        payload = json.dumps({"ts": time.time(), "value": 0.5, "id": f"{tag}-{i}"}).encode()
        t = time.monotonic()
        sent.append((c.publish(f"{prefix}/ST-1/RG-{i % 500}/data", payload, qos=1).mid, t))
    n = len(sent)
    if len(acked_at) >= n:
        done.set()
    done.wait(max(0.0, deadline - time.monotonic()) + (5 if rate else 0))
    elapsed = (max(acked_at.values()) if acked_at else time.monotonic()) - t0
    c.disconnect()
    c.loop_stop()
    lat = sorted(acked_at[mid] - t for mid, t in sent if mid in acked_at)
    return {"published": n, "acked": len(lat), "seconds": round(elapsed, 3),
            "msgs_per_s": round(len(lat) / elapsed, 1) if elapsed else None,
            "capped": len(lat) < n,
            "p50_ms": round(percentile(lat, 50) * 1000, 2) if lat else None,
            "p99_ms": round(percentile(lat, 99) * 1000, 2) if lat else None}


def clean(port: int, client_id: str) -> None:
    c = client(client_id, True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.disconnect()
    c.loop_stop()


# ------------------------------------------------------------------------------------------------ phases

def bench_setup(name: str, work: Path, args) -> dict:
    broker = BROKERS[name](work)
    out: dict = {"setup": name}
    try:
        out["boot_s"] = round(broker.start(), 2)
        prefix = f"bench/{uuid.uuid4().hex[:8]}"
        topic = f"{prefix}/+/+/data"

        log(f"{name}: online throughput ({args.messages} messages)")
        sub = Subscriber(broker.port, f"bench-sub-{uuid.uuid4().hex[:8]}", topic)
        sub.connect()
        t_start = time.monotonic()
        out["online"] = publish(broker.port, prefix, args.messages, cap=args.cap, tag="on")
        while sub.received < out["online"]["acked"] and time.monotonic() - sub.last < args.stall:
            time.sleep(0.05)
        out["online"]["delivered"] = sub.received
        out["online"]["delivered_per_s"] = round(sub.received / (sub.last - t_start), 1) if sub.received else None
        log(f"  {out['online']}")

        log(f"{name}: publish latency at {args.rate}/s for {args.seconds}s")
        out["latency"] = publish(broker.port, prefix, int(args.rate * args.seconds), rate=args.rate,
                                 cap=args.seconds * 3, tag="lat")
        log(f"  {out['latency']}")
        sub.disconnect()
        clean(broker.port, sub.client_id)

        log(f"{name}: backlog throughput (subscriber away, {args.messages} messages)")
        away = Subscriber(broker.port, f"bench-away-{uuid.uuid4().hex[:8]}", topic)
        away.connect()
        away.disconnect()
        out["backlog"] = publish(broker.port, prefix, args.messages, cap=args.cap, tag="bl")
        log(f"  {out['backlog']}")
        clean(broker.port, away.client_id)

        log(f"{name}: crash ({args.crash} messages queued, then SIGKILL after the last PUBACK)")
        crash = Subscriber(broker.port, f"bench-crash-{uuid.uuid4().hex[:8]}", topic)
        crash.connect()
        crash.disconnect()
        pub = publish(broker.port, prefix, args.crash, cap=max(args.cap, 120), tag="cr")
        broker.kill()
        restart = broker.start()
        try:
            crash.connect(timeout=120)
        except BenchError as exc:
            out["crash"] = {"acked": pub["acked"], "error": f"after the restart: {exc}"}
            log(f"  {out['crash']}")
            return out
        while len(crash.seen) < pub["acked"] and time.monotonic() - crash.last < args.stall:
            time.sleep(0.05)
        crash.disconnect()
        lost = pub["acked"] - len({p for p in crash.seen if b'"cr-' in p})
        out["crash"] = {"acked": pub["acked"], "received": crash.received, "lost": lost,
                        "publish_s": pub["seconds"], "restart_s": round(restart, 2)}
        log(f"  {out['crash']}")
    finally:
        broker.stop()
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--messages", type=int, default=20000, help="messages per throughput phase")
    p.add_argument("--cap", type=float, default=60.0, help="seconds at most per throughput phase")
    p.add_argument("--rate", type=float, default=2000.0, help="offered rate of the latency phase (msgs/s)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration of the latency phase")
    p.add_argument("--crash", type=int, default=3000, help="messages queued before the broker is killed")
    p.add_argument("--stall", type=float, default=10.0, help="drain ends after this long without a message")
    p.add_argument("--ingest", action="store_true", help="also run the real ingest worker behind each broker")
    p.add_argument("--ingest-messages", type=int, default=30000)
    p.add_argument("--ingest-seconds", type=float, default=20.0)
    p.add_argument("--ingest-rate", type=float, default=2000.0, help="offered rate of the ingest latency phase")
    p.add_argument("--db-url", default="postgresql://postgres@127.0.0.1:5432/tianmu_bench_broker_durability")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def ingest_phase(names: list[str], work: Path, args) -> dict:
    """bench/sensing_mqtt.py's throughput and latency phases (the real worker, PostgreSQL) per broker."""
    import sensing_mqtt as sm
    from sensing_common import check_loopback, drop_db, migrate, seed_fleet, setup_django

    check_loopback(args.db_url)
    ns = argparse.Namespace(db_url=args.db_url, messages=args.ingest_messages, latency_rate=args.ingest_rate,
                            latency_seconds=args.ingest_seconds, trigger_every=100, drain_seconds=120.0,
                            py_spy=False, py_spy_seconds=10, env=[], experiment=None)
    names = [n for n in names if n not in ("mosquitto-every-change", "rabbitmq-quorum")]
    out = {}
    try:
        log("ingest: migrating a fresh bench database")
        migrate(args.db_url, work)
        setup_django(args.db_url, work)
        seeded = seed_fleet(extra_gas=int(args.ingest_rate * args.ingest_seconds) // 100 * len(names) + 10)
        fleet = [[code, st, t] for _pk, code, st, t in seeded["sensors"] if not code.startswith("GT-")]
        triggers = [[code, st] for _pk, code, st, _t in seeded["sensors"] if code.startswith("GT-")]
        from django.db import connections

        connections.close_all()
        db = sm.Db(args.db_url)
        for name in names:
            broker = BROKERS[name](work / "ingest")
            try:
                broker.start()
                r = sm.bench_broker(name, "127.0.0.1", broker.port, ns, fleet, triggers, db, work)
                out[name] = {"throughput": r["throughput"], "latency": r["latency"]}
            except BenchError as exc:
                out[name] = {"error": str(exc)}
            finally:
                broker.stop()
        db.close()
    finally:
        drop_db(args.db_url)
    return out


def ratio(x, base):
    return round(x / base, 3) if x is not None and base else None


def main(argv=None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    names = [s for s in args.setups.split(",") if s]
    unknown = set(names) - set(BROKERS)
    if unknown:
        raise SystemExit(f"unknown set-ups: {sorted(unknown)}")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    work = Path(tempfile.mkdtemp(prefix="tianmu-broker-bench-"))
    results, ingest = [], {}
    try:
        for name in names:
            try:
                results.append(bench_setup(name, work, args))
            except BenchError as exc:
                log(f"{name}: {exc}")
                results.append({"setup": name, "error": str(exc)})
        if args.ingest:
            ingest = ingest_phase(names, work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = next((r for r in results if r["setup"] == BASELINE and "error" not in r), None)
    if base is None:
        raise SystemExit("the baseline set-up failed; nothing to compare")
    print()
    print(f"{'set-up':24} {'online/s':>9} {'×':>6} {'deliv/s':>8} {'backlog/s':>9} {'×':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99 ×':>6} {'crash lost':>11}")
    for r in results:
        if "error" in r:
            print(f"{r['setup']:24} error: {r['error']}")
            continue
        on, bl, lat, cr = r["online"], r["backlog"], r["latency"], r["crash"]
        r["ratios"] = {"online": ratio(on["msgs_per_s"], base["online"]["msgs_per_s"]),
                       "backlog": ratio(bl["msgs_per_s"], base["backlog"]["msgs_per_s"]),
                       "p99": ratio(lat["p99_ms"], base["latency"]["p99_ms"])}
        print(f"{r['setup']:24} {on['msgs_per_s']:>9} {r['ratios']['online']:>6} {on['delivered_per_s']:>8} "
              f"{bl['msgs_per_s']:>9}{'*' if bl['capped'] else ' '}{r['ratios']['backlog']:>5} "
              f"{lat['p50_ms']:>7} {lat['p99_ms']:>7} {r['ratios']['p99']:>6} "
              + (f"{cr['lost']:>5} of {cr['acked']}" if "lost" in cr else f"  {cr.get('error', '?')}"))
    print("* capped: the phase hit --cap before every message was acknowledged (the rate is what it reached)")
    if ingest:
        bi = ingest.get(BASELINE, {})
        print()
        print(f"{'ingest worker behind':24} {'sustained/s':>11} {'×':>6} {'lost':>6} {'alarm p50 ms':>12} "
              f"{'p99 ms':>8} {'p99 ×':>6}")
        for name, r in ingest.items():
            if "error" in r:
                print(f"{name:24} error: {r['error']}")
                continue
            tp, lat = r["throughput"], r["latency"]["seen"]
            r["ratios"] = {"sustained": ratio(tp["sustained_rate"], bi.get("throughput", {}).get("sustained_rate")),
                           "p99": ratio(lat["p99_ms"], bi.get("latency", {}).get("seen", {}).get("p99_ms"))}
            print(f"{name:24} {tp['sustained_rate']:>11,.0f} {r['ratios']['sustained']!s:>6} {tp['lost']:>6} "
                  f"{lat['p50_ms'] or 0:>12,.0f} {lat['p99_ms'] or 0:>8,.0f} {r['ratios']['p99']!s:>6}")
    result = {"bench": "broker_durability", "git": git_rev(), "machine": machine_info(), "load": loadavg(),
              "args": {k: str(v) for k, v in vars(args).items()}, "results": results, "ingest": ingest}
    path = save_result("broker-durability", result, started, args.out)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
