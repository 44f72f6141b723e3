"""Batched sensor ingest: the full path (parse, validate, dedupe, store, evaluate rules) in readings/second,
against a raw bulk load of the same rows into the same table, measured in the same run, on PostgreSQL and SQLite.

    /tmp/setup/venv/bin/python bench/sensing_ingest.py                 # both databases (about 3 minutes)
    /tmp/setup/venv/bin/python bench/sensing_ingest.py --no-sqlite     # PostgreSQL only
    /tmp/setup/venv/bin/python bench/sensing_ingest.py --intervals 50 --repeat 5

One run, per database: (re)create the bench database (PostgreSQL `tianmu_bench_sensing` at 127.0.0.1, or a
temporary SQLite file), migrate, create the district's 480-sensor fleet, then build N = 480 × `--intervals`
readings at 5-minute intervals (ISO 8601 with +08:00, as gateways send them) in batches of `--batch` (5,000, the
API and MQTT maximum). Each trial starts from empty readings, hourly-aggregate, latest-value and alarm tables
and times, in-process (a child process per database, DEBUG off; the PostgreSQL database is dropped at the end
unless --keep):

* raw baseline — PostgreSQL: one `COPY sensing_reading FROM STDIN` of all (sensor_id, ts, value) tuples in one
  transaction, and one COPY + commit per batch; SQLite: `executemany(INSERT …)` in one transaction, and per batch.
  Rows are already Python tuples: no parsing, no checks, no aggregates, no rules;
* `store_readings` only: tuples in, per batch (dedupe, partitions, temp table + INSERT … ON CONFLICT RETURNING,
  hourly aggregates, latest values) — the storage layer without parsing or rules;
* MQTT gateway batch: `ingest_messages()` with one `…/batch` message per batch (JSON bytes → readings → dead
  letters → store → rule evaluation), exactly what the worker calls per batch;
* HTTP batch: `POST /api/v1/sensing/readings` through Django's full request stack (test client, bearer token,
  ninja validation, `submit_readings`, rules), per batch;
* CSV history: `import_readings_csv(dry_run=False)` of one file with all rows (rules are not evaluated for
  history, by design);
* contrast: the MQTT gateway batch with rule evaluation switched off (monkeypatched in the bench process), to
  show what the rules cost. Not a goal row.

Trials are interleaved (rep 1 of every path, then rep 2, …) so machine noise spreads evenly; the table shows the
median. Goal from the issue: the full path ≥ 50 % of the raw baseline (the single-transaction one, the stricter).
Writes bench/results/<time>-sensing-ingest.json. No timings live in the tests.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sensing_common import (  # noqa: E402
    BenchError,
    check_loopback,
    db_label,
    drop_db,
    fmt_int,
    git_rev,
    loadavg,
    log,
    machine_info,
    migrate,
    run_child,
    sample_value,
    save_result,
    seed_fleet,
    seed_storm,
    setup_django,
    storm_value,
    window,
)

DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tianmu_bench_sensing"
GOAL_RATIO = 0.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
PREFIX = "bench/v1"

PATHS = {
    "raw": "raw bulk load (1 transaction)",
    "raw_batches": "raw bulk load (commit per batch)",
    "store": "store_readings only (per batch)",
    "mqtt": "MQTT gateway batch (full path)",
    "http": "HTTP POST /readings (full path)",
    "csv": "CSV import (no rules)",
    "mqtt_no_rules": "contrast: MQTT batch, rules skipped",
    "mqtt_storm": "STORM: MQTT gateway batch (full path)",
    "http_storm": "STORM: HTTP POST /readings (full path)",
    "worker": "MQTT worker's batches (1 reading per message, --worker-batch per batch)",
    "worker_storm": "STORM: MQTT worker's batches (1 reading per message)",
}
FULL_PATHS = ("mqtt", "http", "worker")
STORM_PATHS = ("mqtt_storm", "http_storm", "worker_storm")


# --------------------------------------------------------------------------------------------- child

def child(args) -> dict:
    setup_django(args.db_url, Path(args.var_dir))
    from django.db import connection, transaction
    from django.test import Client

    from tianmu.core.models import DeadLetter, Event, User
    from tianmu.sensing.models import Alarm
    from tianmu.sensing.services import import_readings_csv, ingest_messages
    from tianmu.sensing.storage import ensure_partitions, store_readings

    fleet = seed_fleet()
    sensors = fleet["sensors"]
    gateway = User.objects.get(pk=fleet["gateway_id"])
    times = window(args.intervals)
    rows, items = [], []
    for k, ts in enumerate(times):
        local = ts.astimezone(SHANGHAI).isoformat()
        for i, (sid, code, _st, stype) in enumerate(sensors):
            v = sample_value(stype, i, k)
            rows.append((sid, ts, v))
            items.append({"sensor": code, "ts": local, "value": v})
    n = len(rows)
    chunks = [(rows[i:i + args.batch], items[i:i + args.batch]) for i in range(0, n, args.batch)]
    bodies = [json.dumps({"readings": it}, ensure_ascii=False).encode() for _r, it in chunks]
    # The storm state: the same times, storm values, after STORM_WARMUP_INTERVALS of storm and ≥ 1,000 open alarms.
    storm_items = [{"sensor": code, "ts": ts.astimezone(SHANGHAI).isoformat(), "value": storm_value(stype, i, k)}
                   for k, ts in enumerate(times) for i, (_sid, code, _st, stype) in enumerate(sensors)]
    storm_bodies = [json.dumps({"readings": storm_items[i:i + args.batch]}, ensure_ascii=False).encode()
                    for i in range(0, n, args.batch)]
    # The worker's shape: one `{prefix}/{station}/{sensor}/data` message per reading, in time order, as
    # `tianmu ingest` batches them (without the broker and paho: their cost is bench/sensing_mqtt.py's).
    def singles(value_of):
        msgs = [(f"{PREFIX}/{st}/{code}/data",
                 json.dumps({"ts": ts.timestamp(), "value": value_of(stype, i, k)}).encode())
                for k, ts in enumerate(times) for i, (_sid, code, st, stype) in enumerate(sensors)]
        size = args.worker_batch
        return [msgs[i:i + size] for i in range(0, len(msgs), size)]
    worker_batches, worker_storm_batches = singles(sample_value), singles(storm_value)
    warm_times = [times[0] - timedelta(minutes=5) * (args.storm_warmup - k) for k in range(args.storm_warmup)]
    warm_n = len(warm_times) * len(sensors)
    csv_bytes = ("sensor,ts,value\n" + "".join(f"{it['sensor']},{it['ts']},{it['value']}\n" for it in items)).encode()
    vendor = connection.vendor
    with transaction.atomic():  # partitions exist before any trial (the raw COPY would need them too)
        ensure_partitions(times)

    def reset():
        with connection.cursor() as cur:
            if vendor == "postgresql":
                cur.execute("TRUNCATE sensing_reading, sensing_hourly, sensing_sensorlatest")
            else:
                for t in ("sensing_reading", "sensing_hourly", "sensing_sensorlatest"):
                    cur.execute(f"DELETE FROM {t}")
        Alarm.objects.all().delete()
        Event.objects.filter(type__startswith="sensing.").delete()
        DeadLetter.objects.all().delete()
        if vendor == "sqlite":
            with connection.cursor() as cur:
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def raw(batches: bool):
        groups = [r for r, _i in chunks] if batches else [rows]
        if vendor == "postgresql":
            for group in groups:
                with transaction.atomic(), connection.cursor() as cur:
                    with cur.cursor.copy("COPY sensing_reading (sensor_id, ts, value) FROM STDIN") as copy:
                        for row in group:
                            copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            for group in groups:
                with transaction.atomic():
                    connection.ensure_connection()
                    connection.connection.executemany(
                        "INSERT INTO sensing_reading (sensor_id, ts, value) VALUES (?, ?, ?)",
                        [(sid, adapt(ts), v) for sid, ts, v in group])

    def store():
        for group, _i in chunks:
            with transaction.atomic():
                store_readings(group)

    def mqtt(source=bodies):
        for body in source:
            ingest_messages([(f"{PREFIX}/gw-bench/batch", body)], prefix=PREFIX)

    def mqtt_no_rules():
        """What the rules cost: the same path with rule evaluation switched off (a contrast, not a goal)."""
        from tianmu.sensing.services import readings

        real = readings._evaluate_guarded
        readings._evaluate_guarded = lambda *args, **kwargs: 0
        try:
            mqtt()
        finally:
            readings._evaluate_guarded = real

    def worker(source=worker_batches):
        for batch in source:
            ingest_messages(batch, prefix=PREFIX)

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {fleet['token']}")

    def http(source=bodies):
        for body in source:
            resp = client.post("/api/v1/sensing/readings", data=body, content_type="application/json")
            if resp.status_code != 200:
                raise BenchError(f"POST /readings → {resp.status_code}: {resp.content[:300]!r}")

    def csv():
        report = import_readings_csv(gateway, io.BytesIO(csv_bytes), dry_run=False)
        if report.errors:
            raise BenchError(f"CSV import refused rows: {report.errors[:3]}")

    funcs = {"raw": lambda: raw(False), "raw_batches": lambda: raw(True), "store": store, "mqtt": mqtt,
             "http": http, "csv": csv, "mqtt_no_rules": mqtt_no_rules,
             "mqtt_storm": lambda: mqtt(storm_bodies), "http_storm": lambda: http(storm_bodies),
             "worker": worker, "worker_storm": lambda: worker(worker_storm_batches)}
    paths = [p for p in PATHS if p not in args.skip]
    samples: dict[str, list[dict]] = {p: [] for p in paths}
    # One untimed warm-up of each path (imports, caches, first-query planning), then interleaved reps.
    for rep in range(args.repeat + 1):
        for p in paths:
            reset()
            open_alarms = None
            if p in STORM_PATHS:
                open_alarms = seed_storm(sensors, warm_times, PREFIX)
            profiler = None
            if rep and p == args.profile and args.cprofile:
                here = str(Path(__file__).resolve().parent)  # bench/profile.py would shadow the standard library's
                saved, sys.path[:] = sys.path[:], [x for x in sys.path if x not in ("", here)]
                try:
                    import cProfile
                finally:
                    sys.path[:] = saved
                profiler = cProfile.Profile()
                profiler.enable()
            elif rep and p == args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
            t0, c0 = time.perf_counter(), time.process_time()
            funcs[p]()
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            if profiler is not None:
                prof_path = Path(args.var_dir).parent / f"sensing-ingest-{vendor}-{p}-rep{rep}.txt"
                if args.cprofile:
                    import pstats

                    profiler.disable()
                    with prof_path.open("w") as fh:
                        stats = pstats.Stats(profiler, stream=fh).sort_stats("tottime")
                        stats.print_stats(60)
                        stats.sort_stats("cumulative").print_stats("tianmu", 40)
                else:
                    profiler.stop()
                    prof_path.write_text(profiler.output_text(unicode=True, show_all=args.profile_all))
                log(f"  profile written to {prof_path}")
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM sensing_reading")
                stored = cur.fetchone()[0]
            expected = n + (warm_n if p in STORM_PATHS else 0)
            if stored != expected:
                raise BenchError(f"{p}: {stored} readings stored, expected {expected}")
            if rep:
                samples[p].append({"seconds": dt, "rate": n / dt, "cpu_us_per_reading": 1e6 * cpu / n, "alarms": Alarm.objects.count(),
                                   "open_at_start": open_alarms, "dead_letters": DeadLetter.objects.count()})
                log(f"  {vendor} rep {rep} {p:<12} {dt:6.2f}s  {n / dt:>10,.0f} readings/s  "
                    f"{1e6 * cpu / n:6.0f} µs of this process's CPU per reading")
    out = {"vendor": vendor, "readings": n, "sensors": len(sensors), "intervals": args.intervals,
           "batch": args.batch, "batches": len(chunks), "paths": {}}
    for p, ss in samples.items():
        rates = sorted(s["rate"] for s in ss)
        out["paths"][p] = {"label": PATHS[p], "median_rate": statistics.median(rates), "min_rate": rates[0],
                           "max_rate": rates[-1], "median_s": statistics.median(s["seconds"] for s in ss),
                           "median_cpu_us_per_reading": statistics.median(s["cpu_us_per_reading"] for s in ss),
                           "alarms": ss[-1]["alarms"], "open_at_start": ss[-1]["open_at_start"],
                           "dead_letters": ss[-1]["dead_letters"], "samples": ss}
    return out


# --------------------------------------------------------------------------------------------- parent

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db-url", default=DEFAULT_DB_URL, help=f"PostgreSQL bench database (default {DEFAULT_DB_URL})")
    p.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    p.add_argument("--no-postgresql", action="store_true", help="skip PostgreSQL")
    p.add_argument("--intervals", type=int, default=100, help="5-minute intervals of the 480 sensors (default 100)")
    p.add_argument("--batch", type=int, default=5000, help="readings per batch (default 5000, the API maximum)")
    p.add_argument("--worker-batch", type=int, default=500, help="messages per batch of the worker paths (default "
                   "500, the worker's SENSING_BATCH_MAX_READINGS when it is behind)")
    p.add_argument("--repeat", type=int, default=3, help="timed repetitions per path (default 3)")
    p.add_argument("--storm-warmup", type=int, default=36, help="5-minute intervals of storm before the storm "
                   "paths' timed readings (untimed; default 36 = 3 h: every rain rule red)")
    p.add_argument("--skip", action="append", default=[], choices=list(PATHS), help="leave a path out")
    p.add_argument("--profile", choices=list(PATHS), help="profile this path's timed runs with pyinstrument "
                   "(text report in the temp directory's parent, path logged; timings then include the profiler)")
    p.add_argument("--cprofile", action="store_true", help="with --profile: cProfile, functions by their own time")
    p.add_argument("--profile-all", action="store_true", help="with --profile: show library frames too")
    p.add_argument("--keep", action="store_true", help="keep the PostgreSQL bench database (dropped by default)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--var-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.intervals <= 400 or not 1 <= args.repeat <= 10 or not 1 <= args.batch <= 5000:
        p.error("bounded: --intervals 1..400, --repeat 1..10, --batch 1..5000")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return 0
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    result = {"bench": "sensing_ingest", "started": started.isoformat(), "git": git_rev(),
              "machine": machine_info(), "loadavg_start": loadavg(),
              "config": {"intervals": args.intervals, "batch": args.batch, "repeat": args.repeat,
                         "skip": args.skip}, "databases": {}}
    targets = []
    if not args.no_postgresql:
        targets.append(args.db_url)
    if not args.no_sqlite:
        targets.append("sqlite")
    try:
        for target in targets:
            with tempfile.TemporaryDirectory(prefix="tianmu-bench-sensing-") as tmp:
                url = f"sqlite:///{tmp}/bench.sqlite3" if target == "sqlite" else target
                check_loopback(url)
                log(f"{db_label(url)}: migrating a fresh bench database")
                secs = migrate(url, Path(tmp))
                log(f"{db_label(url)}: migrated in {secs:.0f}s; running trials")
                child_args = ["--child", "--db-url", url, "--var-dir", tmp, "--intervals", str(args.intervals),
                              "--batch", str(args.batch), "--repeat", str(args.repeat),
                              "--storm-warmup", str(args.storm_warmup), "--worker-batch", str(args.worker_batch)]
                for s in args.skip:
                    child_args += ["--skip", s]
                if args.profile:
                    child_args += ["--profile", args.profile] + (["--profile-all"] if args.profile_all else []) \
                        + (["--cprofile"] if args.cprofile else [])
                result["databases"][db_label(url)] = run_child(Path(__file__), child_args, timeout=1800)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.no_postgresql and not args.keep:
            drop_db(args.db_url)
    result["loadavg_end"] = loadavg()
    result["wall_s"] = round(time.perf_counter() - t_start, 1)

    goals = {}
    m = result["machine"]
    print()
    print(f"Sensing batched ingest — git {result['git']}, {m['nproc']} CPU {m['cpu_model']}, {m['mem_gib']} GiB; "
          f"load average {result['loadavg_start']} → {result['loadavg_end']}")
    for label, d in result["databases"].items():
        raw = d["paths"].get("raw", {}).get("median_rate")
        print()
        print(f"{label}: {fmt_int(d['readings'])} readings ({d['sensors']} sensors × {d['intervals']} intervals), "
              f"{d['batches']} batches of ≤{d['batch']}; median of {args.repeat}; ratio = rate ÷ raw (1 transaction)")
        print(f"{'path':<38} {'seconds':>8} {'readings/s':>11} {'min–max':>19} {'÷ raw':>7} {'alarms':>7} "
              f"{'open at start':>13}")
        for r in d["paths"].values():
            ratio = r["median_rate"] / raw if raw else float("nan")
            r["ratio_vs_raw"] = ratio
            print(f"{r['label']:<38} {r['median_s']:>8.2f} {r['median_rate']:>11,.0f} "
                  f"{fmt_int(r['min_rate']):>9}–{fmt_int(r['max_rate']):<9} {ratio:>6.0%} {r['alarms']:>7} "
                  f"{r['open_at_start'] if r['open_at_start'] is not None else '':>13}")
        for p in FULL_PATHS:
            if p in d["paths"] and raw:
                goals[f"{label}_{p}_at_least_50pct_of_raw"] = d["paths"][p]["ratio_vs_raw"] >= GOAL_RATIO
            storm = d["paths"].get(f"{p}_storm")
            if storm and p in d["paths"]:
                storm["storm_vs_quiet"] = storm["median_rate"] / d["paths"][p]["median_rate"]
                print(f"  storm ÷ quiet, {p}: {storm['storm_vs_quiet']:.0%}")
    result["goals"] = goals
    print()
    print("Goals: " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}" for k, v in goals.items()))
    path = save_result("sensing-ingest", result, started, args.out)
    print(f"results: {path}  (wall {result['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
