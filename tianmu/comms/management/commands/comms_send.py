"""`tianmu comms_send`: the send worker of the command-communications network (supervised by `tianmu run` as a
worker CommsConfig declares). Sends queued deliveries and runs the call-and-respond escalation check."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from tianmu.comms.sending import SendWorker


class Command(BaseCommand):
    help = "Send queued messages (SMS, DingTalk, email, broadcast, inbox) and escalate unconfirmed ones, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is due, escalate, and exit when idle")
        parser.add_argument("--batch", type=int, help="deliveries claimed per round (default COMMS_BATCH)")
        parser.add_argument("--poll", type=float, help="seconds between rounds when idle (default COMMS_POLL_SECONDS)")

    def handle(self, *args, once=False, batch=None, poll=None, **opts):
        worker = SendWorker(batch=batch, poll=poll)

        def stop(*_):
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"comms_send: {worker.owner}, batch {worker.batch}")
        worker.run(once=once)
        self.stdout.write(f"comms_send stopped: {worker.stats}")
