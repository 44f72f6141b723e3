"""What every open page costs the server, and the readable feed: in-process timings over the demo database.

    TIANMU_VAR_DIR=/tmp/demo-var .venv/bin/python bench/attention_feed.py [--rounds 5] [--n 200]

The demo must be built in that var dir (`tianmu demo --no-serve`). Each round signs in the duty officer (whole
district) and a town user with Django's test client and times, alternately, /api/v1/health (the baseline:
middleware, session and auth, no query of substance), /sensing/attention/?after=<newest event> (what every
open page asks every TIANMU_ATTENTION_POLL_SECONDS), and /events/ (the feed: 100 events as sentences). It
prints the median per request of each round's median and its ratio to /health in the same round, so machine
drift (other work on the same cores) cancels out of the ratios. No server, no network: this is the view's own
cost, not a load test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db.models import Max
    from django.test import Client

    from tianmu.core.models import Event, User

    settings.ALLOWED_HOSTS = ["*"]
    newest = Event.objects.aggregate(m=Max("id"))["m"] or 0
    targets = {"health": "/api/v1/health", "attention": f"/sensing/attention/?after={newest}&levels=red,orange",
               "feed": "/events/"}
    results: dict[str, dict[str, list[float]]] = {}
    for username in ("duty", "longgang"):
        client = Client()
        client.force_login(User.objects.get(username=username))
        for url in targets.values():  # warm up
            assert client.get(url).status_code == 200, url
        per = {name: [] for name in targets}
        for _round in range(args.rounds):
            for name, url in targets.items():
                n = args.n if name != "feed" else max(20, args.n // 10)
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    client.get(url)
                    times.append(time.perf_counter() - t0)
                per[name].append(statistics.median(times))
        results[username] = per
    print(f"events in the outbox: {newest}; rounds: {args.rounds}")
    print(f"{'user':10} {'path':10} {'median ms':>10} {'× /health':>10}")
    for username, per in results.items():
        for name in targets:
            ratios = [m / h for m, h in zip(per[name], per["health"], strict=True)]
            print(f"{username:10} {name:10} {statistics.median(per[name]) * 1000:10.2f} {statistics.median(ratios):10.1f}")


if __name__ == "__main__":
    main()
