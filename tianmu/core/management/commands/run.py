"""`tianmu run`: the web server and the workers under one supervising process.

Each child is restarted with backoff if it dies; Ctrl-C or SIGTERM stops them all. In production run each as
its own service instead (see docs/operations.md).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tianmu.core.plugins import workers as declared_workers


class Command(BaseCommand):
    help = "Run the web server (uvicorn) and background workers, restarting any that die."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=1)
        parser.add_argument("--no-workers", action="store_true", help="only the web server")
        parser.add_argument("--demo-feed", action="store_true",
                            help="also run the demo network's quiet-weather feed (set by `tianmu demo`)")

    def handle(self, *args, host, port, web_workers, no_workers, demo_feed=False, **opts):
        if settings.PRODUCTION:
            call_command("collectstatic", interactive=False, verbosity=0)
        py = sys.executable
        children = {
            "web": [py, "-m", "uvicorn", "tianmu.asgi:application", "--host", host, "--port", str(port),
                    "--workers", str(web_workers), "--no-access-log", "--timeout-graceful-shutdown", "3",
                    # The client address is Tianmu's to decide (core/network.py, TIANMU_TRUSTED_PROXIES):
                    # uvicorn would otherwise believe X-Forwarded-For from any local client.
                    "--no-proxy-headers"],
        }
        if not no_workers:
            children["tasks"] = [py, "-m", "tianmu.cli", "run_huey", "--quiet"]
            children.update(extra_workers(demo_feed=demo_feed))
        procs: dict[str, subprocess.Popen] = {}
        restarts: dict[str, list[float]] = {name: [] for name in children}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for name, cmd in children.items():
            procs[name] = subprocess.Popen(cmd)
        self.stdout.write(self.style.SUCCESS(f"天目 running at http://{host}:{port}/  ({', '.join(children)})"))
        try:
            while not stopping:
                time.sleep(0.5)
                for name, proc in list(procs.items()):
                    code = proc.poll()
                    if code is None or stopping:
                        continue
                    now = time.monotonic()
                    restarts[name] = [t for t in restarts[name] if now - t < 60] + [now]
                    delay = min(30, 2 ** (len(restarts[name]) - 1))
                    self.stderr.write(f"{name} exited with {code}; restarting in {delay}s")
                    time.sleep(delay)
                    procs[name] = subprocess.Popen(children[name])
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()


def extra_workers(*, demo_feed: bool = False) -> dict[str, list[str]]:
    """Workers the installed apps declare (core.plugins: TianmuApp.workers, e.g. sensor ingest), name → command
    args. With `demo_feed` (only `tianmu demo` asks), also their demo workers (e.g. the demo network's
    quiet-weather feed): they invent data."""
    return {name: [sys.executable, "-m", "tianmu.cli", *args]
            for name, args in declared_workers(demo=demo_feed).items()}
