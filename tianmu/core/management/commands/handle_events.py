"""`tianmu handle_events`: the event worker. Runs every handler the apps register (`@handles` in their
handlers.py) as a durable consumer of the event outbox, polling until stopped; `--once` handles everything due
now and exits. See core/consumers.py."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from tianmu.core.consumers import EventWorker


class Command(BaseCommand):
    help = "Run the registered event handlers until stopped (--once: handle what is due now and exit)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="handle every event due now, then exit")
        parser.add_argument("--consumer", action="append", dest="consumers", metavar="NAME",
                            help="run only this handler (repeatable); default: all")
        parser.add_argument("--batch", type=int, help="events per consumer per transaction "
                                                      "(default settings.TIANMU_EVENT_BATCH, 200)")
        parser.add_argument("--interval", type=float, help="seconds between polls when idle "
                                                           "(default settings.TIANMU_EVENT_POLL_SECONDS, 1)")

    def handle(self, *args, once=False, consumers=None, batch=None, interval=None, **opts):
        try:
            worker = EventWorker(consumers, batch=batch, poll=interval)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        names = ", ".join(h.name for h in worker.handlers) or "(none registered)"
        if once:
            totals = worker.drain()
            self.stdout.write(f"handle_events: {names}: {totals['handled']} handled, {totals['failed']} failed "
                              f"(to retry), {totals['dead']} dead letters, {totals['errors']} errors")
            return
        stop = threading.Event()

        def request_stop(*_):
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write(f"handle_events: {names}; polling every {worker.poll:g} s")
        worker.run(stop)
        self.stdout.write(f"handle_events stopped: {worker.totals}")
