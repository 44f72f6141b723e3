"""The ingest worker against the real local Mosquitto (settings.MQTT_URL): persistent session, QoS 1, manual
acknowledgement after commit. Each test uses its own topic prefix and client id."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.db.models import Sum
from paho.mqtt.enums import CallbackAPIVersion

from tianmu.core.models import DeadLetter
from tianmu.sensing.ingest import IngestWorker, broker_address
from tianmu.sensing.models import HourlyAggregate, Reading

from .conftest import base_time, make_sensor, make_station

BROKER = broker_address(settings.MQTT_URL)
# Seconds: the bound of every poll on the broker round trip (a worker's condition, a publish acknowledgement),
# for slow machines; not a timing assertion.
WAIT = 30

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("broker")]


@pytest.fixture
def channel():
    """A unique topic prefix and client id; the broker session is removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    ch = {"prefix": f"tianmu-test/{tag}", "client_id": f"tianmu-test-{tag}", "workers": []}
    yield ch
    for worker in ch["workers"]:
        if not worker._crashed and worker.client is not None:
            worker.shutdown()
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ch["client_id"], clean_session=True,
                          protocol=mqtt.MQTTv311)
    cleaner.connect(BROKER["host"], BROKER["port"])
    cleaner.loop_start()
    cleaner.disconnect()
    cleaner.loop_stop()


def worker(ch, **kw) -> IngestWorker:
    w = IngestWorker(client_id=ch["client_id"], prefix=ch["prefix"], share_group="", wait_ms=50, **kw)
    ch["workers"].append(w)
    w.start()
    assert w.subscribed.wait(WAIT)
    return w


def publish(ch, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and wait until the broker has acknowledged every message."""
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{ch['client_id']}-pub", protocol=mqtt.MQTTv311)
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect(BROKER["host"], BROKER["port"])
    pub.loop_start()
    infos = [pub.publish(f"{ch['prefix']}/{topic}", payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(WAIT)
    pub.disconnect()
    pub.loop_stop()


@pytest.fixture
def gauge(world):
    admin = world["users"]["admin"]
    station = make_station(admin, world["village_a"], "ST-MQ")
    return make_sensor(admin, station, "RG-MQ", valid_min=0, valid_max=200)


def readings_for(n: int, value: float = 0.5):
    t0 = base_time() - timedelta(hours=6)
    return [("ST-MQ/RG-MQ/data", json.dumps({"ts": (t0 + timedelta(minutes=i)).isoformat(), "value": value}).encode())
            for i in range(n)]


def stored_exactly_once(n: int, value: float = 0.5) -> None:
    assert Reading.objects.count() == n
    totals = HourlyAggregate.objects.aggregate(n=Sum("readings"), total=Sum("total"))
    assert totals["n"] == n and totals["total"] == pytest.approx(n * value)


def nothing_more_arrives(ch, n: int) -> IngestWorker:
    """A fresh worker with the same session stores nothing new. QoS 1 is at least once, so the broker may
    still redeliver the last few messages acknowledged just before a disconnect — never the whole stream.

    Instead of waiting a while for messages that should not come, a marker reading is published once the
    worker is subscribed: the broker delivers a session's messages in order (redeliveries and queued ones
    first), so once the marker is stored, whatever the broker still owed has been processed too."""
    letters, marker = DeadLetter.objects.count(), base_time()  # later than any reading of readings_for()
    w = worker(ch)
    publish(ch, [("ST-MQ/RG-MQ/data", json.dumps({"ts": marker.isoformat(), "value": 0.5}).encode())])
    # Bounded poll on the broker round trip.
    assert w.run_until(lambda: Reading.objects.filter(ts=marker).exists(), WAIT)
    w.shutdown()
    assert w.stats.stored == 1 and w.stats.messages <= n and DeadLetter.objects.count() == letters
    return w


def test_messages_published_while_the_worker_is_down_are_stored_once(channel, gauge):
    worker(channel).shutdown()  # the session and its subscription now exist at the broker
    n = 150
    publish(channel, readings_for(n))
    w = worker(channel)
    assert w.run_until(lambda: Reading.objects.count() >= n, WAIT)
    w.shutdown()
    assert w.stats.messages == n
    stored_exactly_once(n)
    nothing_more_arrives(channel, n)


def test_a_worker_killed_mid_stream_loses_nothing_and_duplicates_nothing(channel, gauge):
    n = 200
    first = worker(channel, batch_max=15)
    publish(channel, readings_for(n))
    assert first.run_until(lambda: Reading.objects.count() >= 60, WAIT)
    # One more batch is committed but never acknowledged, then the process dies with messages still queued.
    first._ack = lambda batch: None
    batch = first.collect(timeout=WAIT)
    assert batch and first.process(batch) is not None
    first.crash()
    assert Reading.objects.count() < n

    second = worker(channel, batch_max=15)
    assert second.run_until(lambda: Reading.objects.count() >= n, WAIT)
    # Bounded poll: messages the broker delivered after the last reading are processed before shutting down.
    assert second.run_until(lambda: second.queue.empty() and second.stats.messages + first.stats.messages >= n,
                            WAIT)
    second.shutdown()
    assert second.stats.duplicates >= len(batch)  # the unacknowledged batch came again and was ignored
    stored_exactly_once(n)
    nothing_more_arrives(channel, n)


def test_bad_messages_become_dead_letters_and_are_acknowledged(channel, gauge):
    w = worker(channel)
    good = readings_for(1)
    publish(channel, [("ST-MQ/RG-MQ/data", b"{broken"), ("ST-MQ/NOPE/data", good[0][1]),
                      ("GW-1/batch", json.dumps({"readings": [{"sensor": "RG-MQ", "ts": 1, "value": 1}]}).encode()),
                      *good])
    assert w.run_until(lambda: DeadLetter.objects.count() >= 3 and Reading.objects.count() >= 1, WAIT)
    w.shutdown()
    reasons = sorted(d.reason.split(":")[0] for d in DeadLetter.objects.all())
    assert reasons == ["malformed_json", "readings[0] ts_too_old", "unknown_sensor"]
    assert all(d.key.startswith(channel["prefix"]) and d.source == "mqtt" for d in DeadLetter.objects.all())
    nothing_more_arrives(channel, 4)
    assert DeadLetter.objects.count() == 3
