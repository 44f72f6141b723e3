"""`tianmu comms_sink`: the loopback gateway (tianmu/comms/sink.py) as a process, for demos and manual tests: it
plays the SMS gateway, the DingTalk robot and the broadcast platform on 127.0.0.1 and prints the environment that
points `tianmu run` at it. Refused with TIANMU_ENV=production."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tianmu.comms.sink import Sink

ENV_NAMES = {"COMMS_SMS_URL": "TIANMU_SMS_URL", "COMMS_SMS_API_KEY": "TIANMU_SMS_API_KEY",
             "COMMS_DINGTALK_WEBHOOK": "TIANMU_DINGTALK_WEBHOOK", "COMMS_DINGTALK_SECRET": "TIANMU_DINGTALK_SECRET",
             "COMMS_BROADCAST_URL": "TIANMU_BROADCAST_URL", "COMMS_BROADCAST_TOKEN": "TIANMU_BROADCAST_TOKEN"}


class Command(BaseCommand):
    help = "Run a loopback SMS / DingTalk / broadcast gateway for demos, and print the settings that use it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8790)

    def handle(self, *args, port, **opts):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("comms_sink is a demo gateway; it refuses to run with TIANMU_ENV=production")
        try:
            sink = Sink(port=port).start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port") from exc
        for name, value in sink.settings().items():
            self.stdout.write(f"export {ENV_NAMES[name]}='{value}'")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        while not stop.wait(30):
            self.stdout.write(f"comms_sink: {len(sink.state.requests)} requests so far")
        sink.stop()
