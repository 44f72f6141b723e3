"""Acknowledged means durable (issue 9, point 3): a broker killed with SIGKILL right after its PUBACKs loses none of
the readings queued for a stopped ingest worker.

The broker is the set-up deploy/ ships as crash-safe, NATS JetStream's MQTT listener (deploy/nats/tianmu.conf),
as a private nats-server the test starts on a free port with its own data directory, kills and restarts itself
(`private_nats` in conftest.py; it fails in CI when nats-server is missing). Why not Mosquitto: docs/sensing.md,
"Which broker set-ups are crash-safe".
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from django.db.models import Sum
from paho.mqtt.enums import CallbackAPIVersion

from tianmu.sensing.ingest import IngestWorker, broker_address
from tianmu.sensing.models import HourlyAggregate, Reading

from .conftest import base_time, make_sensor, make_station

# Seconds: bounds of the polls on broker round trips and of the drain (slow, shared machines); not timings.
WAIT = 30
DRAIN = 180

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gauge(world):
    admin = world["users"]["admin"]
    station = make_station(admin, world["village_a"], "ST-CR")
    return make_sensor(admin, station, "RG-CR", valid_min=0, valid_max=200)


def start_worker(url: str, prefix: str, client_id: str) -> IngestWorker:
    w = IngestWorker(url=url, client_id=client_id, prefix=prefix, share_group="", wait_ms=50)
    w.start()
    assert w.subscribed.wait(WAIT), "the worker did not subscribe to the private broker"
    return w


def publish_acknowledged(url: str, prefix: str, payloads: list[bytes]) -> None:
    """QoS 1, and return only once the broker has acknowledged (PUBACK) every message."""
    address = broker_address(url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tianmu-test-pub-{uuid.uuid4().hex[:8]}",
                      protocol=mqtt.MQTTv311)
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect(address["host"], address["port"])
    pub.loop_start()
    try:
        infos = [pub.publish(f"{prefix}/ST-CR/RG-CR/data", payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(WAIT)
        assert all(info.is_published() for info in infos), "the broker did not acknowledge every message"
    finally:
        pub.disconnect()
        pub.loop_stop()


def reading(ts, value: float = 0.5) -> bytes:
    return json.dumps({"ts": ts.isoformat(), "value": value}).encode()


def test_a_broker_killed_after_its_pubacks_loses_no_queued_reading(private_nats, gauge):
    tag = uuid.uuid4().hex[:10]
    prefix, client_id = f"tianmu-test/{tag}", f"tianmu-test-{tag}"
    start_worker(private_nats.url, prefix, client_id).shutdown()  # the worker's session exists, then it stops

    n = 3000
    t0 = base_time() - timedelta(days=3)
    publish_acknowledged(private_nats.url, prefix, [reading(t0 + timedelta(minutes=i)) for i in range(n)])
    private_nats.kill()  # SIGKILL right after the last PUBACK
    private_nats.start()  # same data directory

    w = start_worker(private_nats.url, prefix, client_id)
    try:
        assert w.run_until(lambda: Reading.objects.count() >= n, DRAIN), \
            f"{n - Reading.objects.count()} of {n} acknowledged readings lost"
        # Whatever the broker still owes (redeliveries) comes before a message published now: once the marker
        # is stored, nothing more of the stream can arrive.
        marker = t0 - timedelta(minutes=1)
        publish_acknowledged(private_nats.url, prefix, [reading(marker)])
        assert w.run_until(lambda: Reading.objects.filter(ts=marker).exists(), WAIT)
    finally:
        w.shutdown()

    assert Reading.objects.count() == n + 1
    totals = HourlyAggregate.objects.aggregate(n=Sum("readings"), total=Sum("total"))
    assert totals["n"] == n + 1 and totals["total"] == pytest.approx((n + 1) * 0.5)  # each counted once
    assert w.stats.stored == n + 1 and w.stats.dead_letters == 0
