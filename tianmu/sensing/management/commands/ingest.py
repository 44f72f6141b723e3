"""`tianmu ingest`: the MQTT ingest worker (supervised by `tianmu run` as a worker SensingConfig declares)."""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from tianmu.sensing.ingest import IngestWorker


class Command(BaseCommand):
    help = "Store sensor readings from the MQTT broker (settings.MQTT_URL) and evaluate alarms, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="broker URL, default settings.MQTT_URL (mqtt://host:port)")
        parser.add_argument("--client-id", help="MQTT client id, default settings.SENSING_MQTT_CLIENT_ID")
        parser.add_argument("--prefix", help="topic prefix, default settings.SENSING_MQTT_TOPIC_PREFIX")

    def handle(self, *args, url=None, client_id=None, prefix=None, **opts):
        worker = IngestWorker(url=url, client_id=client_id, prefix=prefix)

        def stop(*_):
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"ingest: {worker.address['host']}:{worker.address['port']} as {worker.client_id}, "
                          f"topics {', '.join(worker.topics())}")
        worker.run()
        self.stdout.write(f"ingest stopped: {worker.stats}")
