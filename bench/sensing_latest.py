"""The latest value of every sensor (what the map asks for) with ≥ 50 million readings stored, on PostgreSQL.

    /tmp/setup/venv/bin/python bench/sensing_latest.py                  # 50.5 M readings (about 10 minutes)
    /tmp/setup/venv/bin/python bench/sensing_latest.py --interval 300    # 101 M: two years at 5-minute intervals
    /tmp/setup/venv/bin/python bench/sensing_latest.py --keep            # keep `tianmu_bench_sensing_latest`
    /tmp/setup/venv/bin/python bench/sensing_latest.py --reuse           # measure a kept database again

One run: (re)create `tianmu_bench_sensing_latest` at 127.0.0.1, migrate, create the district's 480-sensor fleet,
create the monthly partitions, and generate `--days` (730) of history for every sensor at `--interval` seconds
(default 600: 480 × 105,120 = 50.5 M rows; the issue's "two years at 5 minutes" would be 101 M, `--interval 300`)
with server-side ``INSERT … SELECT … generate_series`` straight into each month's partition (two sessions in
parallel, `synchronous_commit off` for those sessions only), then ``VACUUM (ANALYZE)`` as autovacuum would have
left a table this old (and a database-wide ``ANALYZE`` after the tail below). The last 2 hours then arrive through the application's own path
(`ingest_messages`, gateway batches of ≤ 5,000 readings: parse, store, hourly aggregates, latest values, rules),
which fills `SensorLatest` and shows batched ingest into the big table.

Measured (one untimed warm-up, then `--runs` timed runs, median / p95 / max):

* app — `latest_values(actor)` of tianmu/sensing/queries.py for a district commander, evaluated into model
  instances as the API does (one query over `SensorLatest`, one row per sensor);
* app — its SQL alone (cursor, no model instances);
* app — `GET /api/v1/sensing/latest` through Django's full request stack (bearer token, JSON for 480 sensors);
* app — when present, `map_sensor_rows(actor)` (the command map's sensor layer: one `values_list` over sensors
  with their latest value) and `GET /api/v1/map/sensors`;
* contrast, over the raw readings table: `DISTINCT ON (sensor_id) … ORDER BY sensor_id, ts DESC`, a
  `max(ts) … GROUP BY sensor_id` join, and a `LATERAL (… ORDER BY ts DESC LIMIT 1)` per sensor (the best one can
  do without a latest-value table). Naive ones run `--naive-runs` (3) times under a statement timeout.

Goal from the issue: "latest value of every sensor (what the map asks for)" under 50 ms with ≥ 50 M readings,
judged on the p95 of the map's sensor layer and of the latest-values API. The database is dropped at the end
unless --keep. Writes bench/results/<time>-sensing-latest.json. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sensing_common import (  # noqa: E402
    BenchError,
    check_loopback,
    git_rev,
    loadavg,
    log,
    machine_info,
    migrate,
    percentile,
    sample_value,
    save_result,
    seed_fleet,
    setup_django,
)

DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tianmu_bench_sensing_latest"
GOAL_MS = 50.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
PREFIX = "bench/v1"
TAIL = timedelta(hours=2)  # the last two hours go through the application's ingest path

VALUE_SQL = """CASE s.sensor_type
    WHEN 'rainfall' THEN CASE WHEN random() < 0.1 THEN round((random() * 2)::numeric, 1)::float8 ELSE 0 END
    WHEN 'water_level' THEN 1.5 + random()
    WHEN 'displacement' THEN random() * 5
    WHEN 'soil_moisture' THEN 20 + random() * 10
    WHEN 'gas' THEN random() * 2
    ELSE random() * 8 END"""


def months(start: datetime, end: datetime) -> list[tuple[int, int]]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def grid_start(t: datetime, step: int) -> datetime:
    """The first point of the step grid (aligned to the epoch) at or after t."""
    epoch = t.timestamp()
    return datetime.fromtimestamp(-(-epoch // step) * step, UTC)


def generate(url: str, start: datetime, end: datetime, step: int, jobs: int) -> dict:
    """History [start, end) on the step grid for every sensor, straight into the monthly partitions."""
    import psycopg

    from tianmu.sensing.storage import month_start, partition_name

    plan = []
    for y, m in months(start, end):
        lo = max(start, month_start(y, m))
        nxt = month_start(y + 1, 1) if m == 12 else month_start(y, m + 1)
        hi = min(end, nxt) - timedelta(microseconds=1)
        lo = grid_start(lo, step)
        if lo <= hi:
            plan.append((partition_name(y, m), lo, hi))

    def load(part):
        name, lo, hi = part
        t0 = time.perf_counter()
        with psycopg.connect(url, autocommit=False) as conn:
            conn.execute("SET synchronous_commit TO off")
            cur = conn.execute(
                f"INSERT INTO {name} (sensor_id, ts, value) "
                f"SELECT s.id, t.ts, {VALUE_SQL} "
                "FROM generate_series(%s::timestamptz, %s::timestamptz, make_interval(secs => %s)) AS t(ts) "
                "CROSS JOIN sensing_sensor s", (lo, hi, step))
            rows = cur.rowcount
            conn.commit()
        return name, rows, time.perf_counter() - t0

    total, t0 = 0, time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for name, rows, secs in pool.map(load, plan):
            total += rows
            log(f"  {name}: {rows:,} rows in {secs:.0f}s")
    return {"rows": total, "partitions": len(plan), "seconds": time.perf_counter() - t0}


def timed(fn, runs: int) -> dict:
    fn()  # warm-up, not counted
    secs = []
    rows = None
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = fn()
        secs.append(time.perf_counter() - t0)
    secs.sort()
    return {"runs": runs, "rows": rows, "median_ms": statistics.median(secs) * 1000,
            "p95_ms": percentile(secs, 95) * 1000, "max_ms": secs[-1] * 1000, "min_ms": secs[0] * 1000}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db-url", default=DEFAULT_DB_URL, help=f"bench database (default {DEFAULT_DB_URL})")
    p.add_argument("--days", type=int, default=730, help="days of history (default 730)")
    p.add_argument("--interval", type=int, default=600, help="seconds between readings (default 600)")
    p.add_argument("--jobs", type=int, default=2, help="parallel generating sessions (default 2)")
    p.add_argument("--runs", type=int, default=50, help="timed runs of each app query (default 50)")
    p.add_argument("--naive-runs", type=int, default=3, help="timed runs of each raw-table query (default 3)")
    p.add_argument("--statement-timeout", type=int, default=300, help="seconds, for raw-table queries (default 300)")
    p.add_argument("--gc-freeze", action="store_true", help="EXPERIMENT: gc.freeze() before timing (shows what "
                   "the cyclic garbage collector adds to the outliers)")
    p.add_argument("--keep", action="store_true", help="keep the database (it is dropped by default)")
    p.add_argument("--reuse", action="store_true", help="measure an existing database kept by --keep")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not 1 <= args.days <= 1100 or not 60 <= args.interval <= 86400 or not 1 <= args.jobs <= 4 \
            or not 1 <= args.runs <= 1000 or not 1 <= args.naive_runs <= 10:
        p.error("bounded: --days 1..1100, --interval 60..86400, --jobs 1..4, --runs 1..1000, --naive-runs 1..10")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    check_loopback(args.db_url)
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    result = {"bench": "sensing_latest", "started": started.isoformat(), "git": git_rev(),
              "machine": machine_info(), "loadavg_start": loadavg(),
              "config": {k: v for k, v in vars(args).items() if k not in ("out", "db_url")}}
    work = Path(tempfile.mkdtemp(prefix="tianmu-bench-latest-"))
    import psycopg

    try:
        if not args.reuse:
            log("migrating a fresh bench database")
            migrate(args.db_url, work)
        setup_django(args.db_url, work)
        from django.db import connection, transaction
        from django.test import Client

        from tianmu.core.models import ApiToken, User
        from tianmu.sensing.models import Sensor, SensorLatest
        from tianmu.sensing.queries import latest_values
        from tianmu.sensing.services import ingest_messages
        from tianmu.sensing.storage import ensure_partitions

        end = (datetime.now(UTC) - TAIL).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=args.days)
        if args.reuse:
            commander = User.objects.get(username="bench-commander")
            gateway = User.objects.get(username="bench-gateway")
            key = ApiToken.new_key()
            ApiToken.objects.create(user=gateway, name="bench-reuse", prefix=key[:8], key_hash=ApiToken.hash_key(key))
            sensors = list(Sensor.objects.values_list("pk", "code", "station__code", "sensor_type"))
            result["generate"] = {"reused": True}
        else:
            seeded = seed_fleet()
            commander = User.objects.get(pk=seeded["commander_id"])
            key, sensors = seeded["token"], seeded["sensors"]
            with transaction.atomic():
                ensure_partitions([month_start for month_start in
                                   (datetime(y, m, 1, tzinfo=UTC) for y, m in months(start, datetime.now(UTC)))])
            expected = len(sensors) * len(range(int(grid_start(start, args.interval).timestamp()),
                                                int(end.timestamp()), args.interval))
            log(f"generating {expected:,} readings: {len(sensors)} sensors × {args.days} days every "
                f"{args.interval}s, {args.jobs} sessions")
            result["generate"] = generate(args.db_url, start, end, args.interval, args.jobs)
            g = result["generate"]
            log(f"generated {g['rows']:,} rows in {g['seconds']:.0f}s ({g['rows'] / g['seconds']:,.0f} rows/s)")
            t0 = time.perf_counter()
            with psycopg.connect(args.db_url, autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) sensing_reading")
            g["vacuum_analyze_s"] = time.perf_counter() - t0
            log(f"VACUUM (ANALYZE) in {g['vacuum_analyze_s']:.0f}s")

            # The last two hours through the application's own ingest path (fills SensorLatest).
            times, t = [], end
            while t <= datetime.now(UTC) - timedelta(minutes=1):
                times.append(t)
                t += timedelta(seconds=args.interval)
            items = [{"sensor": code, "ts": ts.astimezone(SHANGHAI).isoformat(), "value": sample_value(st, i, k)}
                     for k, ts in enumerate(times) for i, (_pk, code, _stc, st) in enumerate(sensors)]
            bodies = [json.dumps({"readings": items[i:i + 5000]}).encode() for i in range(0, len(items), 5000)]
            t0 = time.perf_counter()
            for body in bodies:
                ingest_messages([(f"{PREFIX}/gw-bench/batch", body)], prefix=PREFIX)
            secs = time.perf_counter() - t0
            result["tail_ingest"] = {"readings": len(items), "batches": len(bodies), "seconds": secs,
                                     "rate": len(items) / secs}
            log(f"ingested the last {len(times)} intervals ({len(items):,} readings) through ingest_messages in "
                f"{secs:.1f}s ({len(items) / secs:,.0f} readings/s)")
            with psycopg.connect(args.db_url, autocommit=True) as conn:
                conn.execute("ANALYZE")  # planner statistics for the small tables too, as in a database in use

        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM sensing_reading")
            total = cur.fetchone()[0]
            cur.execute("SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                        "WHERE inhparent = 'sensing_reading'::regclass")
            size = int(cur.fetchone()[0] or 0)
            cur.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'sensing_reading'::regclass")
            parts = cur.fetchone()[0]
        result["readings_stored"] = total
        result["readings_bytes"] = size
        result["partitions"] = parts
        result["sensor_latest_rows"] = SensorLatest.objects.count()
        log(f"{total:,} readings in {parts} partitions, {size / 2**30:.1f} GiB with indexes; "
            f"{result['sensor_latest_rows']} SensorLatest rows")
        if total < 50_000_000:
            log("WARNING: fewer than 50 million readings: the goal needs at least that many")

        # ---- measure -------------------------------------------------------------------------------------
        def app_orm():
            rows = list(latest_values(commander))
            for r in rows:  # what the API touches per row
                _ = (r.sensor.code, r.sensor.station.code if r.sensor.station_id else None, r.sensor.region.code)
            return len(rows)

        qs_sql, qs_params = latest_values(commander).query.sql_with_params()

        def app_sql():
            with connection.cursor() as cur:
                cur.execute(qs_sql, qs_params)
                return len(cur.fetchall())

        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")

        def app_api():
            resp = client.get("/api/v1/sensing/latest")
            if resp.status_code != 200:
                raise BenchError(f"GET /api/v1/sensing/latest → {resp.status_code}")
            return len(resp.json())

        naive = {
            "raw: LATERAL (… ORDER BY ts DESC LIMIT 1) per sensor":
                "SELECT s.id, r.ts, r.value FROM sensing_sensor s CROSS JOIN LATERAL (SELECT ts, value FROM "
                "sensing_reading WHERE sensor_id = s.id ORDER BY ts DESC LIMIT 1) r",
            "raw: DISTINCT ON (sensor_id) over all readings":
                "SELECT DISTINCT ON (sensor_id) sensor_id, ts, value FROM sensing_reading ORDER BY sensor_id, ts DESC",
            "raw: max(ts) GROUP BY sensor_id, joined back":
                "SELECT r.sensor_id, r.ts, r.value FROM sensing_reading r JOIN (SELECT sensor_id, max(ts) AS ts FROM "
                "sensing_reading GROUP BY sensor_id) m ON m.sensor_id = r.sensor_id AND m.ts = r.ts",
        }
        queries = {}
        if args.gc_freeze:  # EXPERIMENT: are the slow outliers the cyclic GC walking a big heap?
            import gc

            gc.collect()
            gc.freeze()
        log(f"timing the app's latest values ({args.runs} runs each)")
        queries["app: latest_values() → model instances"] = timed(app_orm, args.runs)
        queries["app: its SQL alone"] = timed(app_sql, args.runs)
        queries["app: GET /api/v1/sensing/latest (full API)"] = timed(app_api, args.runs)
        from tianmu.sensing import queries as sensing_queries

        if hasattr(sensing_queries, "map_sensor_rows"):  # the command map's sensor layer (values_list rows)
            queries["app: map_sensor_rows() (the map's sensor layer)"] = timed(
                lambda: len(sensing_queries.map_sensor_rows(commander)), args.runs)

            def map_api():
                resp = client.get("/api/v1/map/sensors")
                if resp.status_code != 200:
                    raise BenchError(f"GET /api/v1/map/sensors → {resp.status_code}")
                return len(resp.json()["features"])

            try:
                queries["app: GET /api/v1/map/sensors (full API)"] = timed(map_api, args.runs)
            except BenchError as exc:
                log(f"skipped the map endpoint: {exc}")
        plans = {}
        with psycopg.connect(args.db_url, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = '{args.statement_timeout}s'")
            for label, sql in naive.items():
                log(f"timing {label} ({args.naive_runs} runs + warm-up)")
                try:
                    queries[label] = timed(lambda sql=sql: len(conn.execute(sql).fetchall()), args.naive_runs)
                except psycopg.errors.QueryCanceled:
                    queries[label] = {"timeout_s": args.statement_timeout}
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql).fetchall()
                plans[label] = [r[0] for r in plan][:12] + [r[0] for r in plan if "Execution Time" in r[0]]
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + connection.ops.compose_sql(qs_sql, qs_params)).fetchall()
            plans["app"] = [r[0] for r in plan]
        result["queries"] = queries
        result["plans"] = plans
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        if not args.keep:
            parts = urlsplit(args.db_url)
            with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
            log("bench database dropped (--keep keeps it)")

    result["loadavg_end"] = loadavg()
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    app_ms = result["queries"]["app: latest_values() → model instances"]["median_ms"]
    enough = result["readings_stored"] >= 50_000_000
    # The goal is about what clients ask for: the map's sensor layer and the latest-values API. The model
    # instances of latest_values() (the HTML list's path) are shown for reference.
    goals = {}
    for key, label in (("latest_api_p95_under_50ms_with_50M", "app: GET /api/v1/sensing/latest (full API)"),
                       ("map_sensor_rows_p95_under_50ms_with_50M", "app: map_sensor_rows() (the map's sensor layer)"),
                       ("map_api_p95_under_50ms_with_50M", "app: GET /api/v1/map/sensors (full API)")):
        if label in result["queries"]:
            goals[key] = enough and result["queries"][label]["p95_ms"] < GOAL_MS
    result["goals"] = goals
    m = result["machine"]
    print()
    print(f"Sensing latest values — git {result['git']}, {m['nproc']} CPU {m['cpu_model']}, {m['mem_gib']} GiB; "
          f"load average {result['loadavg_start']} → {result['loadavg_end']}")
    print(f"{result['readings_stored']:,} readings ({result['partitions']} monthly partitions, "
          f"{result['readings_bytes'] / 2**30:.1f} GiB), {result['sensor_latest_rows']} sensors")
    if "rows" in result.get("generate", {}):
        g = result["generate"]
        print(f"generated in {g['seconds']:.0f}s ({g['rows'] / g['seconds']:,.0f} rows/s), VACUUM (ANALYZE) "
              f"{g['vacuum_analyze_s']:.0f}s; last 2 h through ingest_messages: "
              f"{result['tail_ingest']['readings']:,} readings at {result['tail_ingest']['rate']:,.0f}/s")
    print()
    print(f"{'query':<52} {'runs':>5} {'median ms':>10} {'p95 ms':>9} {'max ms':>9} {'rows':>6} {'÷ app':>8}")
    for label, q in result["queries"].items():
        if "timeout_s" in q:
            print(f"{label:<52} timed out after {q['timeout_s']} s")
            continue
        print(f"{label:<52} {q['runs']:>5} {q['median_ms']:>10.1f} {q['p95_ms']:>9.1f} {q['max_ms']:>9.1f} "
              f"{q['rows']:>6} {q['median_ms'] / app_ms:>7.1f}×")
    print()
    print("Goals (p95 of the query, in-process): " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}"
                                                           for k, v in goals.items()))
    path = save_result("sensing-latest" + ("-exp" if args.gc_freeze else ""), result, started, args.out)
    print(f"results: {path}  (wall {result['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
