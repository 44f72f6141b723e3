"""Rainfall products (sensing/rainfall.py) over the demo network: the time to compute each product for all
gauges, against a raw baseline measured in the same run — one SQL statement summing every gauge's raw readings
of the last 24 h, the least any 24 h table could cost.

    TIANMU_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tianmu_bench_rain \\
        .venv/bin/python bench/rainfall_products.py [--build] [--repeat 15]

--build (re)creates the demo district in that database first (`tianmu demo --no-serve`: 18 towns, 431 rain
gauges, two quiet days and the 6-hour demo typhoon through the real ingest path). The products are computed
at the end of the storm, as the district commander (every gauge, every town):

* station table: `station_rainfall` — 1/3/6/12/24 h windows, effective rainfall and soil state through
  `rules.compute_series`, the process totals from 168 h of hourly aggregates;
* areal rainfall: `areal_rainfall(window=24)` cold (Thiessen weights computed: voronoi + clipping to 18
  towns) and warm (weights cached for the same gauge set);
* areal rainfall per river basin: `basin_rainfall(window=24)` cold and warm (the demo's 6 basins, the same
  Thiessen weights over their outlines, plus the "no gauge near" check);
* distribution layer: `distribution(window=24)` — the station table plus the IDW surface on ~12,000 cells
  clipped to the district.

Medians of --repeat runs, interleaved. No timings live in the tests; results go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", action="store_true", help="build the demo district in the database first")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if not os.environ.get("TIANMU_DATABASE_URL", "").startswith("postgresql"):
        print("set TIANMU_DATABASE_URL to a PostgreSQL database (the demo's)", file=sys.stderr)
        return 2
    if args.build:
        subprocess.run([sys.executable, "-m", "tianmu.cli", "demo", "--no-serve"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
    import django

    django.setup()
    from django.db import connection

    from tianmu.core.models import User
    from tianmu.sensing import rainfall
    from tianmu.sensing.models import SensorLatest

    actor = User.objects.get(username="duty")
    at = SensorLatest.objects.order_by("-ts").values_list("ts", flat=True).first()
    if at is None:
        print("no readings: run with --build", file=sys.stderr)
        return 2

    def raw():
        with connection.cursor() as cur:
            cur.execute("SELECT r.sensor_id, sum(r.value) FROM sensing_reading r JOIN sensing_sensor s "
                        "ON s.id = r.sensor_id WHERE s.sensor_type = 'rainfall' AND r.ts > %s AND r.ts <= %s "
                        "GROUP BY 1", [at - rainfall.HOUR * 24, at])
            return cur.fetchall()

    def cold_areal():
        rainfall.thiessen_weights.cache_clear()
        return rainfall.areal_rainfall(actor, at, 24)

    def cold_basins():
        rainfall.thiessen_weights.cache_clear()
        return rainfall.basin_rainfall(actor, at, 24)

    cases = {
        "raw 24 h sums (baseline)": raw,
        "station table": lambda: rainfall.station_rainfall(actor, at),
        "areal rainfall, cold": cold_areal,
        "areal rainfall, warm": lambda: rainfall.areal_rainfall(actor, at, 24),
        "basin rainfall, cold": cold_basins,
        "basin rainfall, warm": lambda: rainfall.basin_rainfall(actor, at, 24),
        "distribution layer (24 h)": lambda: rainfall.distribution(actor, at, 24),
    }
    for fn in cases.values():  # warm up connections, caches, imports
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    gauges = len(raw())
    dist = rainfall.distribution(actor, at, 24)
    print(f"demo network: {gauges} gauges with rain in the last 24 h, {len(dist['gauges'])} gauges, "
          f"grid {dist['grid']['nx']}×{dist['grid']['ny']}, at {at:%Y-%m-%d %H:%M} UTC, {args.repeat} runs; "
          f"load {os.getloadavg()[0]:.2f}")
    base = statistics.median(times["raw 24 h sums (baseline)"])
    print(f"{'product':32} {'median ms':>10} {'p90 ms':>8} {'× raw':>7}")
    for name, values in times.items():
        values.sort()
        med = statistics.median(values)
        p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
        print(f"{name:32} {med * 1000:10.1f} {p90 * 1000:8.1f} {med / base:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
