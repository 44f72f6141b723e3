"""Profile API endpoints in-process with pyinstrument, and count their SQL queries.

Run against a database that already holds the demo (e.g. the one bench/run.py leaves behind, or `tianmu demo`):

    TIANMU_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tianmu_bench \\
        .venv/bin/python bench/profile.py --token tm_… /api/v1/equipment/?page_size=50 /api/v1/health

Without --token it creates a throwaway token for the demo's "water-dept" user (and revokes it at the end).
Each path is requested --repeat times through Django's test client (the same middleware and views as the
server, without uvicorn); the profile covers all repeats. Prints ms per request, queries per request and the
pyinstrument call tree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def backend_cpu(connection) -> float | None:
    """CPU seconds used so far by this connection's PostgreSQL backend process (a local server only, read
    from /proc), or None: the database's share of a request, which runs on the same cores under load."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="request paths, e.g. /api/v1/hazards/?page_size=50")
    p.add_argument("--token", default=os.environ.get("BENCH_TOKEN", ""), help="bearer token (default: make one)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--user", default="water-dept", help="user for a throwaway token (default water-dept)")
    p.add_argument("--sql", action="store_true", help="print the SQL of one request")
    p.add_argument("--setup", default="", help="module to import after django.setup() (to try a fix)")
    p.add_argument("--show-all", action="store_true", help="pyinstrument: show library frames too")
    args = p.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
    import django

    django.setup()
    if args.setup:
        import importlib

        importlib.import_module(args.setup)
    from django.db import connection
    from django.test import Client
    from pyinstrument import Profiler

    from tianmu.core.models import ApiToken, User

    made = None
    token = args.token
    if not token:
        token = ApiToken.new_key()
        made = ApiToken.objects.create(user=User.objects.get(username=args.user), name="bench profile",
                                       prefix=token[:8], key_hash=ApiToken.hash_key(token))
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/json")
    try:
        for path in args.paths:
            resp = client.get(path)  # warm-up (imports, schema build, first connection)
            if resp.status_code != 200:
                print(f"{path}: HTTP {resp.status_code} {resp.content[:200]!r}")
                return 1
            queries = []

            def count(execute, sql, params, many, context, queries=queries):
                queries.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                client.get(path)
            t0, c0, d0 = time.perf_counter(), time.process_time(), backend_cpu(connection)
            for _ in range(args.repeat):
                client.get(path)
            wall = (time.perf_counter() - t0) / args.repeat * 1000
            cpu = (time.process_time() - c0) / args.repeat * 1000
            d1 = backend_cpu(connection)
            db_cpu = f", {(d1 - d0) / args.repeat * 1000:.2f} ms CPU in the database server" if d0 is not None else ""
            profiler = Profiler(interval=0.0005)
            with profiler:
                for _ in range(args.repeat):
                    client.get(path)
            print(f"\n=== {path}: {wall:.1f} ms/request wall, {cpu:.2f} ms CPU in this process (unprofiled){db_cpu}, "
                  f"{len(queries)} SQL queries, {len(resp.content) / 1024:.0f} KiB")
            if args.sql:
                for q in queries:
                    print("  SQL:", q[:400])
            print(profiler.output_text(unicode=True, color=False, show_all=args.show_all))
    finally:
        if made:
            made.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
