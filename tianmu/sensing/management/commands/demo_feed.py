"""`tianmu demo_feed`: the demo network's quiet-weather reports (tianmu/sensing/demo/feed.py), until stopped.

Started by `tianmu demo` (through `tianmu run --demo-feed`, which restarts it if it dies); it invents readings,
so it refuses to run in production.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from tianmu.sensing.demo.feed import tick

logger = logging.getLogger("tianmu.demo.feed")


class Command(BaseCommand):
    help = "Demo only: keep the demo sensors reporting quiet weather on their own intervals (started by `tianmu demo`)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is due now and exit")
        parser.add_argument("--poll", type=float, default=30.0, help="seconds between checks (default 30)")

    def handle(self, *args, once, poll, **opts):
        if settings.PRODUCTION:
            raise CommandError("the demo feed invents sensor readings: it never runs with TIANMU_ENV=production")
        if poll <= 0:
            raise CommandError("--poll must be positive")
        stopping = threading.Event()
        if not once:
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            signal.signal(signal.SIGINT, lambda *_: stopping.set())
            self.stdout.write(f"demo feed: quiet-weather reports every sensor interval (checking every {poll:g} s)")
        while True:
            self._tick()
            if once:
                break
            close_old_connections()  # hand the connection back between rounds
            if stopping.wait(poll):
                break

    def _tick(self) -> None:
        """One round; a busy or unreachable database only delays the reports to the next round."""
        try:
            report = tick()
        except DatabaseError as exc:
            logger.warning("demo feed: database unavailable, retrying next round: %s", exc)
            return
        if report.readings:
            self.stdout.write(f"demo feed: {report.sensors} sensors, {report.stored} readings stored, "
                              f"{report.alarm_changes} alarm changes")
