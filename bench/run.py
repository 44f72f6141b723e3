"""End-to-end performance benchmark: the demo dataset on PostgreSQL behind the production server (uvicorn).

    .venv/bin/python bench/run.py                      # PostgreSQL at 127.0.0.1 (database tianmu_bench)
    .venv/bin/python bench/run.py --sqlite             # the embedded SQLite database, for comparison
    .venv/bin/python bench/run.py --db-url postgresql://postgres@127.0.0.1:5432/other_bench

One run: (re)create the database, build the Lin'an demo (`tianmu demo --no-serve`), collect static files,
start `uvicorn tianmu.asgi:application --workers 2` in production mode on a free loopback port, wait for
/api/v1/health, then measure

* the command map's page load: GET /api/v1/map/layers, then every /api/v1/map/layers/{slug} (all ~9,000
  features), sequentially and over 6 parallel connections like a browser; wall time per page load, next to the
  same request pattern against /api/v1/health;
* with wrk (a separate load-generator process, so the client doesn't share the server's CPU time through the
  Python GIL): 32 connections for a fixed duration per endpoint — the bare JSON health endpoint as baseline,
  the registry list (GET /api/v1/{slug}/?page_size=50) and detail (GET /api/v1/{slug}/{id}) rotating over all
  kinds, per-kind rows, the map layers under load, and the baseline once more at the end as a drift check.

It stops the server, prints a table (requests, p50/p95/p99, req/s, p95 ÷ baseline p95) and writes the figures
to bench/results/<timestamp>-<db>.json. Only 127.0.0.1 is ever targeted; every load run is bounded in time.
No timings live in the tests: this is the place for them (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
LUA = BENCH / "rotate.lua"
HOST = "127.0.0.1"
DEFAULT_DB_URL = "postgresql://postgres@127.0.0.1:5432/tianmu_bench"
KINDS = ["hazards", "sites", "teams", "experts", "warehouses", "shelters", "equipment"]
TOKEN_RE = re.compile(r"API token for water-dept \(shown once\): (tm_\S+)")

# Goals from the issue.
MAP_LOAD_GOAL_S = 1.0
API_P95_GOAL_MS = 150.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------- environment

def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit(
            "bench: `wrk` is not installed.\n"
            "  It is the load generator: a separate C process, so the client does not compete with the server\n"
            "  for the Python GIL and its latency percentiles are not skewed by the client. Install it with\n"
            "      apt-get install wrk        (Debian package `wrk`)\n"
            "  and run `make bench` again."
        )
    return wrk


def machine_info() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def loadavg() -> str:
    """1/5/15-minute load averages: other work on the machine shows here (the figures are then noisier)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def reset_postgres(url: str) -> None:
    """Drop and recreate the benchmark database (only a loopback one whose name says it is for benchmarks)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"refusing to use a database that is not on this machine: {parts.hostname}")
    if not name or "bench" not in name:
        raise BenchError(f"refusing to drop database {name!r}: the benchmark database's name must contain 'bench'")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_connections(url: str) -> int:
    """Server connections to the benchmark database right now (a leak shows as a number near max_connections)."""
    import psycopg

    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                            (parts.path.lstrip("/"),)).fetchone()[0]


def analyze(db_url: str) -> None:
    """Refresh planner statistics after the bulk load, as a database in service has them.

    Right after `tianmu demo` PostgreSQL has none (autovacuum analyzes only after a minute or so), estimates
    `region.code LIKE '330112%'` at one row and picks a sort-everything plan; autovacuum may then analyze in
    the middle of the run. ANALYZE first makes the run steady and the figures those of a database in use."""
    if db_url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")
        return
    import psycopg

    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("ANALYZE")


def app_env(db_url: str, var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.update({
        "TIANMU_ENV": "production",
        "TIANMU_SECRET_KEY": secrets.token_urlsafe(48)[:64],
        "TIANMU_DEBUG": "0",
        "TIANMU_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TIANMU_DATABASE_URL": db_url,
        "TIANMU_VAR_DIR": str(var_dir),
        "TIANMU_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def manage(env: dict, *args: str, timeout: int = 600) -> str:
    proc = subprocess.run([sys.executable, "-m", "tianmu.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"`tianmu {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------- server

class Server:
    def __init__(self, env: dict, workers: int, log_path: Path, app: str = "tianmu.asgi:application",
                 interface: str = "auto"):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(self.port),
             "--workers", str(workers), "--no-access-log", "--interface", interface],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_healthy(self, timeout: float = 60.0) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise BenchError(f"uvicorn exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                status, _ = get(self.port, "/api/v1/health", None, timeout=2)
                if status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"uvicorn not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server's own process group (uvicorn and its workers), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self._log.close()


# --------------------------------------------------------------------------------------------- HTTP client

def _headers(token: str | None) -> dict:
    h = {"Accept": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def get(port: int, path: str, token: str | None, timeout: float = 30, conn=None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=_headers(token))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def get_json(port: int, path: str, token: str | None):
    status, body = get(port, path, token)
    if status != 200:
        raise BenchError(f"GET {path} → {status}: {body[:300]!r}")
    return json.loads(body)


# -------------------------------------------------------------------------------------- map page load

def page_load(port: int, token: str | None, first: str, rest_of, parallel: int) -> dict:
    """One page load: GET `first`, then every path from rest_of(first_body), over `parallel` connections.

    Returns wall time (s), bytes and request count. Fresh connections each load (a page opened anew)."""
    t0 = time.perf_counter()
    status, body = get(port, first, token)
    if status != 200:
        raise BenchError(f"GET {first} → {status}")
    paths = rest_of(body)
    total = len(body)
    local = threading.local()
    conns = []

    def fetch(path: str) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(HOST, port, timeout=30)
            conns.append(conn)
        st, b = get(port, path, token, conn=conn)
        if st != 200:
            raise BenchError(f"GET {path} → {st}")
        return len(b)

    try:
        if parallel <= 1:
            total += sum(fetch(p) for p in paths)
        else:
            with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
                total += sum(pool.map(fetch, paths))
    finally:
        for c in conns:
            c.close()
    return {"seconds": time.perf_counter() - t0, "bytes": total, "requests": 1 + len(paths)}


def layer_paths_of(body: bytes) -> list[str]:
    """The layer URLs a map page fetches after GET /api/v1/map/layers returned `body`."""
    return [f"/api/v1/map/layers/{layer['slug']}" for layer in json.loads(body)["layers"]]


def map_loads(port: int, token: str, runs: int) -> dict:
    layers = get_json(port, "/api/v1/map/layers", token)["layers"]
    slugs = [layer["slug"] for layer in layers]
    n_features = sum(layer["count"] for layer in layers)

    def health_paths(_body: bytes) -> list[str]:
        return ["/api/v1/health"] * len(slugs)

    out = {"layers": slugs, "features": n_features}
    for mode, parallel in (("sequential", 1), ("parallel6", 6)):
        for label, first, rest, tok in (("map", "/api/v1/map/layers", layer_paths_of, token),
                                         ("baseline", "/api/v1/health", health_paths, None)):
            page_load(port, tok, first, rest, parallel)  # warm-up, discarded
            samples = [page_load(port, tok, first, rest, parallel) for _ in range(runs)]
            secs = sorted(s["seconds"] for s in samples)
            out[f"{label}_{mode}"] = {
                "runs": runs, "requests_per_load": samples[0]["requests"], "bytes_per_load": samples[0]["bytes"],
                "median_s": statistics.median(secs), "p95_s": percentile(secs, 95), "max_s": secs[-1],
                "min_s": secs[0],
            }
    return out


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------------- wrk

def run_wrk(wrk: str, port: int, token: str | None, paths: list[str], seconds: float, connections: int,
            threads: int, work_dir: Path, name: str) -> dict:
    paths_file = work_dir / f"paths-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    env = dict(os.environ, BENCH_PATHS=str(paths_file), BENCH_TOKEN=token or "")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(LUA), f"http://{HOST}:{port}/"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(line.split(" ", 1)[1])
    lat = res["latency_us"]
    dur = res["duration_us"] / 1e6
    return {
        "name": name, "paths": len(paths), "requests": res["requests"], "seconds": round(dur, 2),
        "rps": res["requests"] / dur if dur else 0.0, "errors": res["errors"],
        "error_count": sum(res["errors"].values()), "bytes": res["bytes"],
        "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p95_ms": lat["p95"] / 1000,
        "p99_ms": lat["p99"] / 1000, "max_ms": lat["max"] / 1000, "mean_ms": lat["mean"] / 1000,
    }


# ------------------------------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    db = p.add_mutually_exclusive_group()
    db.add_argument("--db-url", default=DEFAULT_DB_URL,
                    help=f"PostgreSQL database to drop, recreate and fill (default {DEFAULT_DB_URL})")
    db.add_argument("--sqlite", action="store_true", help="use a fresh SQLite file instead (for comparison)")
    p.add_argument("--duration", type=float, default=10, help="seconds per main wrk run (default 10)")
    p.add_argument("--kind-duration", type=float, default=4, help="seconds per per-kind wrk run (default 4; 0 = skip)")
    p.add_argument("--connections", type=int, default=32, help="concurrent wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    p.add_argument("--map-runs", type=int, default=15, help="map page loads per mode (default 15)")
    p.add_argument("--app", default="tianmu.asgi:application",
                   help="ASGI application for uvicorn (default tianmu.asgi:application); for trying a fix")
    p.add_argument("--interface", choices=["auto", "asgi3", "wsgi"], default="auto",
                   help="uvicorn --interface (wsgi with --app tianmu.wsgi:application; for trying a fix)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the app (repeatable), e.g. TIANMU_DB_CONN_MAX_AGE=0")
    p.add_argument("--no-analyze", action="store_true",
                   help="skip ANALYZE after the demo build (see what a just-built database does)")
    p.add_argument("--check", action="store_true", help="exit 3 when a goal is not met")
    p.add_argument("--out", type=Path, default=None, help="results JSON path (default bench/results/…)")
    args = p.parse_args(argv)
    if any("=" not in e for e in args.env):
        p.error("--env takes KEY=VALUE")
    if not 1 <= args.connections <= 256 or not 1 <= args.threads <= args.connections:
        p.error("--connections must be 1..256 and --threads 1..connections")
    if not 1 <= args.duration <= 120 or not 0 <= args.kind_duration <= 60 or not 1 <= args.map_runs <= 200:
        p.error("durations are bounded: --duration 1..120 s, --kind-duration 0..60 s, --map-runs 1..200")
    return args


def fmt_row(r: dict, base_p95: float) -> str:
    ratio = r["p95_ms"] / base_p95 if base_p95 else float("nan")
    err = ""
    if r["error_count"]:
        e = {k: v for k, v in r["errors"].items() if v}
        err = f"  ERRORS {r['error_count']} ({100 * r['error_count'] / max(1, r['requests']):.0f}%: {e}; status = HTTP ≥400)"
    return (f"{r['name']:<26} {r['requests']:>8} {r['p50_ms']:>9.1f} {r['p95_ms']:>9.1f} {r['p99_ms']:>9.1f} "
            f"{r['rps']:>9.0f} {ratio:>9.1f}x{err}")


def main(argv=None) -> int:
    args = parse_args(argv)
    wrk = need_wrk()
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tianmu-bench-"))
    var_dir = work / "var"
    var_dir.mkdir()
    if args.sqlite:
        db_label, db_url = "sqlite", f"sqlite:///{var_dir / 'bench.sqlite3'}"
    else:
        db_label, db_url = "postgresql", args.db_url
    env = app_env(db_url, var_dir)
    extra_env = dict(e.split("=", 1) for e in args.env)
    env.update(extra_env)
    server = None
    result: dict = {"started": started.isoformat(), "git": git_rev(), "machine": machine_info(), "db": db_label,
                    "loadavg_start": loadavg(),
                    "config": {"connections": args.connections, "wrk_threads": args.threads,
                               "uvicorn_workers": args.workers, "duration_s": args.duration,
                               "kind_duration_s": args.kind_duration, "map_runs": args.map_runs,
                               "analyze": not args.no_analyze,
                               "app": args.app, "interface": args.interface, "env": extra_env}}
    try:
        if not args.sqlite:
            log(f"recreating {urlsplit(db_url)._replace(netloc=urlsplit(db_url).hostname or '').geturl()}")
            reset_postgres(db_url)
        log("building the demo dataset (tianmu demo --no-serve)")
        t0 = time.perf_counter()
        out = manage(env, "demo", "--no-serve")
        m = TOKEN_RE.search(out)
        if not m:
            raise BenchError(f"no API token in the demo output:\n{out}")
        token = m.group(1)
        result["demo_build_s"] = round(time.perf_counter() - t0, 1)
        if not args.no_analyze:
            analyze(db_url)
        # The API needs no static files, so a failing collectstatic is reported, not fatal.
        try:
            manage(env, "collectstatic", "--noinput")
            result["collectstatic"] = "ok"
        except BenchError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            err = next((ln for ln in lines if "Error" in ln and ":" in ln), lines[-1] if lines else "?")
            result["collectstatic"] = f"FAILED: {err.strip()}"
            log(f"WARNING collectstatic failed (pages would not render; the API is unaffected): {err.strip()}")

        server = Server(env, args.workers, work / "uvicorn.log", args.app, args.interface)
        startup = server.wait_healthy()
        port = server.port
        log(f"uvicorn up on {server.base} ({args.workers} workers) in {startup:.1f}s")

        # Cold map page load: the first authenticated requests this server sees (only /health came before).
        cold = page_load(port, token, "/api/v1/map/layers", layer_paths_of, 6)
        result["map_cold_parallel6_s"] = cold["seconds"]
        slugs = [layer["slug"] for layer in get_json(port, "/api/v1/map/layers", token)["layers"]]

        # Paths for the load runs.
        list_paths = {k: f"/api/v1/{k}/?page_size=50" for k in KINDS}
        detail_paths: dict[str, list[str]] = {}
        counts = {}
        for k in KINDS:
            page = get_json(port, list_paths[k], token)
            counts[k] = page["count"]
            detail_paths[k] = [f"/api/v1/{k}/{row['id']}" for row in page["results"]]
            if not detail_paths[k]:
                raise BenchError(f"{k}: the list is empty — is the demo dataset built?")
        result["counts"] = counts
        all_details = [p for group in zip(*detail_paths.values(), strict=False) for p in group]
        layer_paths = [f"/api/v1/map/layers/{s}" for s in slugs]

        log(f"map page loads: {args.map_runs} runs × sequential / 6 parallel, map and baseline")
        result["map"] = map_loads(port, token, args.map_runs)

        def load(name, paths, seconds, tok=token):
            log(f"wrk {name}: {len(paths)} path(s), {args.connections} connections, {seconds:g}s")
            return run_wrk(wrk, port, tok, paths, seconds, args.connections, args.threads, work, name)

        load("warm-up", ["/api/v1/health", *list_paths.values(), *all_details, *layer_paths], 3)
        rows = [load("baseline /health", ["/api/v1/health"], args.duration, None)]
        rows.append(load("list (all kinds)", list(list_paths.values()), args.duration))
        rows.append(load("detail (all kinds)", all_details, args.duration))
        rows.append(load("map layers (all, under load)", layer_paths, args.duration))
        if args.kind_duration:
            for k in KINDS:
                rows.append(load(f"list {k}", [list_paths[k]], args.kind_duration))
            for k in KINDS:
                rows.append(load(f"detail {k}", detail_paths[k], args.kind_duration))
        rows.append(load("baseline /health (end)", ["/api/v1/health"], args.duration, None))
        result["load"] = rows
        result["loadavg_end"] = loadavg()
        if not args.sqlite:
            result["pg_connections_open_after_load"] = pg_connections(db_url)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        if server:
            print(server.log_tail(), file=sys.stderr)
        return 1
    finally:
        if server:
            server.stop()
            log("uvicorn stopped")
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0]["p95_ms"]
    for r in rows:
        r["ratio_p95_vs_baseline"] = r["p95_ms"] / base if base else None
    mp = result["map"]
    goals = {
        "map_cold_parallel6_under_1s": result["map_cold_parallel6_s"] < MAP_LOAD_GOAL_S,
        "map_parallel6_p95_under_1s": mp["map_parallel6"]["p95_s"] < MAP_LOAD_GOAL_S,
        "map_sequential_p95_under_1s": mp["map_sequential"]["p95_s"] < MAP_LOAD_GOAL_S,
        "list_p95_under_150ms": rows[1]["p95_ms"] < API_P95_GOAL_MS and not rows[1]["error_count"],
        "detail_p95_under_150ms": rows[2]["p95_ms"] < API_P95_GOAL_MS and not rows[2]["error_count"],
    }
    per_kind = [r for r in rows if r["name"].startswith(("list ", "detail ")) and "(" not in r["name"]]
    if per_kind:
        goals["every_kind_p95_under_150ms"] = all(r["p95_ms"] < API_P95_GOAL_MS and not r["error_count"]
                                                  for r in per_kind)
    result["goals"] = goals
    result["wall_s"] = round(time.perf_counter() - t_start, 1)

    print()
    experiment = args.app != "tianmu.asgi:application" or args.interface != "auto" or bool(extra_env)
    if experiment:
        print(f"EXPERIMENT: app {args.app}, interface {args.interface}, env {extra_env}")
    print(f"Tianmu bench — {db_label}, uvicorn ×{args.workers}, wrk {args.connections} connections / "
          f"{args.threads} threads, git {result['git']}, {result['machine']['nproc']} CPU "
          f"{result['machine']['cpu_model']}")
    print(f"load average at start {result['loadavg_start']}, at end {result['loadavg_end']} "
          f"(other work on the machine makes the figures noisier; the ratios are the comparable part)")
    print(f"dataset: {sum(counts.values())} records ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
          f"map: {mp['features']} features in {len(mp['layers'])} layers")
    print()
    print("Map page load (GET /map/layers + every layer; wall time per load; baseline = same pattern on /health)")
    print(f"{'mode':<26} {'runs':>8} {'median ms':>9} {'p95 ms':>9} {'max ms':>9} {'KiB':>9} {'p95/base':>10}")
    for mode in ("sequential", "parallel6"):
        m_, b_ = mp[f"map_{mode}"], mp[f"baseline_{mode}"]
        for label, d in ((f"map {mode}", m_), (f"baseline {mode}", b_)):
            ratio = d["p95_s"] / b_["p95_s"] if b_["p95_s"] else float("nan")
            print(f"{label:<26} {d['runs']:>8} {d['median_s'] * 1000:>9.1f} {d['p95_s'] * 1000:>9.1f} "
                  f"{d['max_s'] * 1000:>9.1f} {d['bytes_per_load'] / 1024:>9.0f} {ratio:>9.1f}x")
    print(f"{'map cold (first load)':<26} {1:>8} {result['map_cold_parallel6_s'] * 1000:>9.1f}")
    print()
    print(f"Load ({args.connections} connections; latency in ms; ratio = p95 ÷ baseline p95 of this run)")
    print(f"{'endpoint':<26} {'requests':>8} {'p50':>9} {'p95':>9} {'p99':>9} {'req/s':>9} {'p95/base':>10}")
    for r in rows:
        print(fmt_row(r, base))
    if "pg_connections_open_after_load" in result:
        print(f"PostgreSQL connections held by the server after the load: {result['pg_connections_open_after_load']}")
    if result["collectstatic"] != "ok":
        print(f"WARNING: collectstatic {result['collectstatic']}")
    print()
    print("Goals: " + ", ".join(f"{k} {'MET' if v else 'NOT MET'}" for k, v in goals.items()))

    RESULTS.mkdir(exist_ok=True)
    out_path = args.out or RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{db_label}{'-exp' if experiment else ''}.json"
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {out_path}  (wall {result['wall_s']:.0f}s)")
    return 3 if args.check and not all(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
