"""A/B the registry list and detail API under load: two source trees, alternately, same database, same load.

    .venv/bin/python bench/list_ab.py --a /tmp/before-tree --b . --rounds 3

Each round starts the production server (uvicorn ×2, as bench/run.py does) from tree A, then from tree B, and
measures with wrk at 32 connections: the /health baseline, the list of every kind (GET /api/v1/{slug}/
?page_size=50, rotating), and the detail of their first 50 records, then /health again. Alternating the trees
round by round spreads the machine's drift (other work on the same cores) over both, so the medians per tree
and the ratios to /health in the same round compare the code, not the moment.

The database must already hold the demo: by default the one bench/run.py leaves behind (its name must contain
'bench'; it is read, never dropped or written, except for one throwaway API token made and revoked here).
Each tree is served by this virtualenv's Python with the tree as working directory, so its `tianmu` package is
the one imported. Results go to bench/results/<UTC time>-list-ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/run.py: server, wrk and environment helpers)

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/tianmu_bench"

MAKE_TOKEN = """
import django, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
django.setup()
from tianmu.core.models import ApiToken, User
if sys.argv[1] == "make":
    key = ApiToken.new_key()
    ApiToken.objects.create(user=User.objects.get(username="water-dept"), name="bench list_ab",
                            prefix=key[:8], key_hash=ApiToken.hash_key(key))
    print(key)
else:
    ApiToken.objects.filter(name="bench list_ab").delete()
"""


def token(env: dict, action: str) -> str:
    proc = subprocess.run([sys.executable, "-c", MAKE_TOKEN, action], cwd=bench.ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise bench.BenchError(f"token {action} failed:\n{proc.stderr}")
    return proc.stdout.strip()


def cpu_seconds(server_pgid: int) -> dict[str, float]:
    """CPU seconds used so far by the server's process group and by all PostgreSQL processes (from /proc)."""
    out = {"server": 0.0, "postgres": 0.0}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick  # user + system time
        if int(fields[2]) == server_pgid:
            out["server"] += used
        elif comm.startswith("postgres"):
            out["postgres"] += used
    return out


def measure(tree: Path, env: dict, key: str, args, wrk: str, work: Path) -> dict:
    server = _ServerIn(tree, env, args.workers, work / "uvicorn.log")
    try:
        server.wait_healthy()
        port = server.port
        list_paths = [f"/api/v1/{k}/?page_size=50" for k in bench.KINDS]
        detail_paths: list[list[str]] = []
        for p in list_paths:
            page = bench.get_json(port, p, key)
            detail_paths.append([f"/api/v1/{p.split('/')[3]}/{row['id']}" for row in page["results"]])
        details = [p for group in zip(*detail_paths, strict=False) for p in group]

        def load(name, paths, seconds, tok=key):
            before = cpu_seconds(server.proc.pid)
            row = bench.run_wrk(wrk, port, tok, paths, seconds, args.connections, args.threads, work, name)
            after = cpu_seconds(server.proc.pid)
            for part in ("server", "postgres"):
                row[f"cpu_ms_per_request_{part}"] = 1000 * (after[part] - before[part]) / max(1, row["requests"])
            return row

        load("warm-up", ["/api/v1/health", *list_paths, *details], 3)
        rows = [load("baseline /health", ["/api/v1/health"], args.duration, None),
                load("list (all kinds)", list_paths, args.duration),
                load("detail (all kinds)", details, args.duration),
                load("baseline /health (end)", ["/api/v1/health"], args.duration, None)]
        return {"loadavg": bench.loadavg(), "rows": rows}
    finally:
        server.stop()


class _ServerIn(bench.Server):
    """bench.Server, but with `tree` as the working directory (so that tree's code is served)."""

    def __init__(self, tree: Path, env: dict, workers: int, log_path: Path):
        self.port = bench.free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tianmu.asgi:application", "--host", bench.HOST, "--port",
             str(self.port), "--workers", str(workers), "--no-access-log"],
            cwd=tree, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", type=Path, required=True, help="tree A (e.g. a copy of the code before a change)")
    p.add_argument("--b", type=Path, default=bench.ROOT, help="tree B (default: this tree)")
    p.add_argument("--db-url", default=DEFAULT_DB, help=f"database holding the demo (default {DEFAULT_DB})")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    parts = urlsplit(args.db_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or "bench" not in parts.path:
        p.error("--db-url must be a local database whose name contains 'bench'")
    if not 1 <= args.rounds <= 20 or not 1 <= args.duration <= 60:
        p.error("--rounds 1..20, --duration 1..60 s")
    wrk = bench.need_wrk()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    for label, tree in trees.items():
        if not (tree / "tianmu" / "asgi.py").exists():
            p.error(f"tree {label} ({tree}) has no tianmu/asgi.py")
    started, t0 = datetime.now(UTC), time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tianmu-list-ab-"))
    (work / "var").mkdir()
    env = bench.app_env(args.db_url, work / "var")
    key = token(env, "make")
    runs: list[dict] = []
    try:
        for rnd in range(args.rounds):
            order = ["A", "B"] if rnd % 2 == 0 else ["B", "A"]
            for label in order:
                bench.log(f"round {rnd + 1}/{args.rounds}: tree {label} ({trees[label]})")
                res = measure(trees[label], env, key, args, wrk, work)
                res.update(round=rnd + 1, tree=label)
                runs.append(res)
                base = res["rows"][0]["p95_ms"]
                for r in res["rows"]:
                    print(f"  {label} {r['name']:<24} p50 {r['p50_ms']:7.1f}  p95 {r['p95_ms']:7.1f}  "
                          f"{r['rps']:7.0f} req/s  {r['p95_ms'] / base:5.1f}x  errors {r['error_count']}  CPU/request "
                          f"server {r['cpu_ms_per_request_server']:.2f} ms, PostgreSQL "
                          f"{r['cpu_ms_per_request_postgres']:.2f} ms", flush=True)
    finally:
        token(env, "revoke")

    summary = {}
    print("\nmedians over rounds (ratio = p95 ÷ /health p95 of the same server run)")
    for label in ("A", "B"):
        mine = [r for r in runs if r["tree"] == label]
        out = {}
        for i, name in enumerate(("health", "list", "detail", "health_end")):
            rows = [r["rows"][i] for r in mine]
            out[name] = {
                "p50_ms": statistics.median(r["p50_ms"] for r in rows),
                "p95_ms": statistics.median(r["p95_ms"] for r in rows),
                "rps": statistics.median(r["rps"] for r in rows),
                "ratio_p95": statistics.median(r["p95_ms"] / m["rows"][0]["p95_ms"] for r, m in zip(rows, mine,
                                                                                                    strict=True)),
                "errors": sum(r["error_count"] for r in rows),
                "cpu_ms_server": statistics.median(r["cpu_ms_per_request_server"] for r in rows),
                "cpu_ms_postgres": statistics.median(r["cpu_ms_per_request_postgres"] for r in rows),
            }
            o = out[name]
            print(f"  {label} {name:<11} p95 {o['p95_ms']:7.1f} ms  p50 {o['p50_ms']:7.1f}  {o['rps']:7.0f} req/s  "
                  f"ratio {o['ratio_p95']:5.1f}x  errors {o['errors']}  CPU/request server {o['cpu_ms_server']:.2f} ms, "
                  f"PostgreSQL {o['cpu_ms_postgres']:.2f} ms")
        summary[label] = out
    bench.RESULTS.mkdir(exist_ok=True)
    path = bench.RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}-list-ab.json"
    path.write_text(json.dumps({"started": started.isoformat(), "trees": {k: str(v) for k, v in trees.items()},
                                "db": parts._replace(netloc=parts.hostname or "").geturl(),
                                "config": vars(args) | {"a": str(args.a), "b": str(args.b)},
                                "machine": bench.machine_info(), "runs": runs, "summary": summary,
                                "wall_s": round(time.perf_counter() - t0, 1)},
                               indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
