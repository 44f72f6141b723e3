"""Medians over several bench/run.py results, side by side: the figures docs/performance.md reports.

    .venv/bin/python bench/compare.py --a bench/results/*-before.json --b bench/results/2026…-postgresql.json

One run on this shared machine is noise; the median of several runs of the same code, taken in turns with the
other code's runs, is the figure. For every row it prints the median p50, p95, req/s and ratio (p95 ÷ the
/health p95 of the same run), the range of p95 over the runs, and how many runs met the 150 ms goal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

GOAL_MS = 150.0


def load(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths]


def rows_of(run: dict) -> dict[str, dict]:
    return {r["name"]: r for r in run["load"]}


def summary(runs: list[dict]) -> dict[str, dict]:
    names = [r["name"] for r in runs[0]["load"]]
    out = {}
    for name in names:
        rs = [(rows_of(run)[name], rows_of(run)["baseline /health"]["p95_ms"]) for run in runs
              if name in rows_of(run)]
        p95 = [r["p95_ms"] for r, _ in rs]
        out[name] = {
            "runs": len(rs),
            "p50_ms": statistics.median(r["p50_ms"] for r, _ in rs),
            "p95_ms": statistics.median(p95),
            "p95_min": min(p95), "p95_max": max(p95),
            "rps": statistics.median(r["rps"] for r, _ in rs),
            "ratio": statistics.median(r["p95_ms"] / base for r, base in rs),
            "met": sum(1 for r, _ in rs if r["p95_ms"] < GOAL_MS and not r["error_count"]),
            "errors": sum(r["error_count"] for r, _ in rs),
        }
    for mode in ("sequential", "parallel6"):
        vals = [run["map"][f"map_{mode}"]["p95_s"] * 1000 for run in runs]
        base = [run["map"][f"baseline_{mode}"]["p95_s"] * 1000 for run in runs]
        out[f"map page, {mode}"] = {"runs": len(runs), "p95_ms": statistics.median(vals), "p95_min": min(vals),
                                    "p95_max": max(vals),
                                    "ratio": statistics.median(v / b for v, b in zip(vals, base, strict=True))}
    cold = [run["map_cold_parallel6_s"] * 1000 for run in runs]
    out["map page, cold"] = {"runs": len(runs), "p95_ms": statistics.median(cold), "p95_min": min(cold),
                             "p95_max": max(cold)}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", nargs="+", type=Path, required=True, help="results of code A (e.g. before a change)")
    p.add_argument("--b", nargs="*", type=Path, default=[], help="results of code B (e.g. after it)")
    p.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = p.parse_args(argv)
    groups = {"A": summary(load(args.a))}
    if args.b:
        groups["B"] = summary(load(args.b))
    if args.json:
        print(json.dumps(groups, indent=2))
        return 0
    print(f"{'row':<30} {'code':<4} {'runs':>4} {'p50':>7} {'p95':>7} {'p95 range':>13} {'req/s':>7} "
          f"{'ratio':>6} {'<150ms':>7}")
    for name in groups["A"]:
        for label, g in groups.items():
            s = g.get(name)
            if s is None:
                continue
            p50 = f"{s['p50_ms']:7.1f}" if "p50_ms" in s else " " * 7
            rps = f"{s['rps']:7.0f}" if "rps" in s else " " * 7
            ratio = f"{s['ratio']:5.1f}x" if "ratio" in s else " " * 6
            met = f"{s['met']}/{s['runs']}" if "met" in s else ""
            rng = f"{s['p95_min']:.0f}–{s['p95_max']:.0f}"
            print(f"{name:<30} {label:<4} {s['runs']:>4} {p50} {s['p95_ms']:7.1f} {rng:>13} {rps} {ratio} "
                  f"{met:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
