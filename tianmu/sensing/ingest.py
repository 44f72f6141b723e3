"""The MQTT ingest worker: broker → batches → one transaction each → acknowledgement.

    client id     settings.SENSING_MQTT_CLIENT_ID (fixed, so the broker keeps the session while we are away;
                  when empty, derived from the database's identity)
    session       MQTT 3.1.1, clean_session=False: QoS 1 messages published while the worker is down are
                  queued by the broker and delivered when it reconnects
    subscription  QoS 1 to {prefix}/+/+/data and {prefix}/+/batch (optionally as $share/{group}/… so several
                  workers split the load)
    ack           manual: PUBACK is sent only after the batch's transaction has committed, in the order the
                  messages arrived. A crash before the commit means the broker delivers again; storage is
                  idempotent on (sensor, ts), so nothing is lost and nothing is stored twice.

The paho network thread only queues messages; batches are processed in the thread that calls `run()` (or
`run_until()` in tests), which is the only one touching the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from paho.mqtt.enums import CallbackAPIVersion

from tianmu.core.models import DeadLetter

from .conf import conf, mqtt_client_id
from .parsing import sanitize_text
from .services.readings import IngestOutcome, ingest_messages

__all__ = ["IngestWorker", "QueuedMessage", "broker_address", "WorkerStats"]

logger = logging.getLogger("tianmu.sensing.ingest")

IDLE_FLUSH_S = 0.02
MAX_BACKOFF_S = 30.0


def broker_address(url: str) -> dict:
    """mqtt://user:pass@host:port → connection parameters (mqtts:// for TLS)."""
    parts = urlsplit(url)
    tls = parts.scheme in ("mqtts", "ssl", "tls")
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or (8883 if tls else 1883), "tls": tls,
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None}


@dataclass(frozen=True)
class QueuedMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received: float
    dup: bool = False


@dataclass
class WorkerStats(IngestOutcome):
    """What the worker did since it started: its batches' outcomes summed."""

    batches: int = 0
    messages: int = 0


class IngestWorker:
    """One ingest worker. `run()` blocks until `stop()`; tests drive it with `start()` and `run_until()`."""

    def __init__(self, *, url: str | None = None, client_id: str | None = None, prefix: str | None = None,
                 share_group: str | None = None, batch_max: int | None = None, wait_ms: int | None = None,
                 keepalive: int | None = None):
        self.address = broker_address(url or settings.MQTT_URL)
        self.client_id = client_id or mqtt_client_id()
        self.prefix = (prefix or conf("SENSING_MQTT_TOPIC_PREFIX")).rstrip("/")
        self.share_group = conf("SENSING_MQTT_SHARE_GROUP") if share_group is None else share_group
        self.batch_max = batch_max or conf("SENSING_BATCH_MAX_READINGS")
        self.wait_s = (wait_ms if wait_ms is not None else conf("SENSING_BATCH_MAX_WAIT_MS")) / 1000.0
        self.keepalive = keepalive or conf("SENSING_MQTT_KEEPALIVE")
        self.queue: queue.Queue[QueuedMessage] = queue.Queue()
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._crashed = False
        self.client: mqtt.Client | None = None

    # ---- broker --------------------------------------------------------------------------------------------
    def topics(self) -> list[str]:
        topics = [f"{self.prefix}/+/+/data", f"{self.prefix}/+/batch"]
        if self.share_group:
            topics = [f"$share/{self.share_group}/{t}" for t in topics]
        return topics

    def start(self) -> None:
        """Connect (retrying in the background until the broker answers) and start the network thread."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                             protocol=mqtt.MQTTv311, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if self.address["username"]:
            client.username_pw_set(self.address["username"], self.address["password"])
        if self.address["tls"]:
            client.tls_set()
        self.client = client
        client.connect_async(self.address["host"], self.address["port"], keepalive=self.keepalive)
        client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.error("broker refused the connection: %s", reason_code)
            return
        self.generation += 1
        logger.info("connected to %s:%s as %s (session present: %s)", self.address["host"], self.address["port"],
                    self.client_id, flags.session_present)
        client.subscribe([(topic, 1) for topic in self.topics()])
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            logger.warning("disconnected from broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = bytes(message._topic).decode("utf-8", errors="replace")
        self.queue.put(QueuedMessage(topic=topic, payload=bytes(message.payload), mid=message.mid,
                                     qos=message.qos, generation=self.generation, received=time.monotonic(),
                                     dup=bool(message.dup)))

    # ---- batches -------------------------------------------------------------------------------------------
    def collect(self, timeout: float) -> list[QueuedMessage]:
        """Wait up to `timeout` for a message, then gather more until the batch is full, the first message has
        waited SENSING_BATCH_MAX_WAIT_MS, or the stream pauses. Messages already queued are always taken (up to
        the batch size) without waiting: when the worker is behind, the first message is already older than the
        wait, and stopping there would commit one message per transaction and never catch up."""
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch, size = [first], _size(first)
        deadline = first.received + self.wait_s
        while size < self.batch_max:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    msg = self.queue.get_nowait()
                else:
                    msg = self.queue.get(timeout=min(remaining, IDLE_FLUSH_S))
            except queue.Empty:
                break
            batch.append(msg)
            size += _size(msg)
        return batch

    def process(self, batch: list[QueuedMessage]) -> IngestOutcome | None:
        """Store a batch, then acknowledge it. Database outages are retried with backoff (nothing is acked);
        a batch that fails for any other reason is retried message by message, and a message that still fails
        becomes a dead letter, so the worker never stops on bad input."""
        delay = 0.5
        while True:
            if self._stopping.is_set() or self._crashed:
                return None
            try:
                if not connection.in_atomic_block:
                    close_old_connections()
                outcome = ingest_messages([(m.topic, m.payload, m.dup) for m in batch], prefix=self.prefix)
                break
            except (OperationalError, InterfaceError):
                logger.exception("database unavailable; retrying the batch in %.1fs", delay)
                if not connection.in_atomic_block:
                    connection.close()
                self._stopping.wait(delay)
                delay = min(MAX_BACKOFF_S, delay * 2)
            except Exception as exc:  # noqa: BLE001 - see docstring
                if len(batch) > 1:
                    logger.exception("batch of %d failed; retrying one by one", len(batch))
                    outcome = IngestOutcome()
                    for msg in batch:
                        part = self.process([msg])
                        if part is None:
                            return None
                        outcome.add(part)
                    return outcome
                outcome = self._dead_letter(batch[0], exc)
                if outcome is None:
                    continue
                break
        self._ack(batch)
        self.stats.batches += 1
        self.stats.messages += len(batch)
        self.stats.add(outcome)
        return outcome

    def _dead_letter(self, msg: QueuedMessage, exc: Exception) -> IngestOutcome | None:
        logger.exception("message on %s failed; keeping it as a dead letter", msg.topic)
        try:
            with transaction.atomic():
                DeadLetter.objects.create(source="mqtt", key=sanitize_text(msg.topic, 200),
                                          payload=sanitize_text(msg.payload.decode("utf-8", "backslashreplace")),
                                          reason=sanitize_text(f"internal_error: {exc!r}"))
        except DatabaseError:
            return None
        return IngestOutcome(dead_letters=1)

    def _ack(self, batch: list[QueuedMessage]) -> None:
        if self._crashed or self.client is None:
            return
        for msg in batch:
            # A message from before a reconnect is redelivered by the broker; that copy will be acked.
            if msg.qos > 0 and msg.generation == self.generation:
                self.client.ack(msg.mid, msg.qos)

    # ---- running -------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until stop(): the `tianmu ingest` command."""
        if self.client is None:
            self.start()
        last_report = time.monotonic()
        try:
            while not self._stopping.is_set():
                batch = self.collect(timeout=0.5)
                if batch:
                    self.process(batch)
                if time.monotonic() - last_report > 60:
                    last_report = time.monotonic()
                    logger.info("ingest: %s", self.stats)
        finally:
            self.shutdown()

    def run_until(self, predicate, timeout: float) -> bool:
        """Process batches until predicate() is true or `timeout` seconds pass (for tests and tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            batch = self.collect(timeout=0.05)
            if batch:
                self.process(batch)
        return predicate()

    def stop(self) -> None:
        self._stopping.set()

    def shutdown(self) -> None:
        """Disconnect cleanly; queued messages that were not committed stay unacknowledged at the broker."""
        self._stopping.set()
        if self.client is not None and not self._crashed:
            self.client.disconnect()
            self.client.loop_stop()

    def crash(self) -> None:
        """Die like a killed process: drop the connection without DISCONNECT and without acknowledging."""
        self._crashed = True
        self._stopping.set()
        if self.client is not None:
            self.client.loop_stop()
            sock = self.client.socket()
            if sock is not None:
                sock.close()


def _size(msg: QueuedMessage) -> int:
    """Readings in a message, roughly (batch payloads hold many), without parsing it."""
    return max(1, msg.payload.count(b'"value"'))
