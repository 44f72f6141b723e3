"""Crash safety of the send worker, with real processes: `tianmu comms_send` is killed with SIGKILL in the middle
of a fan-out to the loopback gateway, then started again. No message is lost, and no person gets the same
message twice on the same channel: SMS re-sends carry the same out_id, which the gateway recognises; DingTalk
(no idempotency key) is never re-sent — at most the one message in flight at the kill is left in doubt, and it
is recorded as such. Runs on SQLite, or on PostgreSQL (SKIP LOCKED) when TIANMU_DATABASE_URL names one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tianmu.comms.sink import Sink

PERSONS = 60


def _poll(condition, bound: float = 90) -> bool:
    """Wait for real processes (a bound for slow machines, not a timing assertion)."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def crash_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.update({"TIANMU_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tianmu.settings",
                "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH", "")]))})
    url = os.environ.get("TIANMU_DATABASE_URL", "")
    dbname = None
    if url.startswith("postgres"):
        import psycopg

        base, _, name = url.rpartition("/")
        dbname = f"{name.split('?')[0]}_crash"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dbname}"')
        env["TIANMU_DATABASE_URL"] = f"{base}/{dbname}"
    yield env
    if dbname:
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def tianmu(env, *args, **kw):
    return subprocess.run([sys.executable, "-m", "tianmu.cli", *args], env=env, check=True, capture_output=True,
                          text=True, timeout=300, **kw)


def deliveries(env) -> list[dict]:
    out = tianmu(env, "shell", "-c", "from tianmu.comms.tests.crash_world import report; report()").stdout
    return json.loads(out.split("REPORT", 1)[1])


def test_kill_9_mid_fan_out_loses_nothing_and_sends_nothing_twice(crash_env):
    env = crash_env
    tianmu(env, "migrate", "-v0")
    tianmu(env, "shell", "-c", f"from tianmu.comms.tests.crash_world import build; build({PERSONS})")
    sink = Sink().start()
    sink.state.delay = 0.05  # a gateway that takes its time, so the kill lands mid fan-out
    worker_env = {**env, "TIANMU_SMS_URL": f"{sink.url}/sms", "TIANMU_SMS_API_KEY": sink.state.sms_key,
                  "TIANMU_DINGTALK_WEBHOOK": f"{sink.url}/robot/send?access_token=t",
                  "TIANMU_DINGTALK_SECRET": sink.state.ding_secret, "TIANMU_COMMS_RATE_LIMITS": "{}",
                  "TIANMU_COMMS_LEASE_SECONDS": "3", "TIANMU_COMMS_BATCH": "10"}
    cmd = [sys.executable, "-m", "tianmu.cli", "comms_send", "--poll", "0.2"]
    try:
        first = subprocess.Popen(cmd, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _poll(lambda: len(sink.state.requests) >= PERSONS // 3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = len(sink.state.requests)
        assert killed_at < PERSONS, "the worker finished before the kill: the test proves nothing"
        second = subprocess.Popen(cmd, env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert _poll(lambda: all(r["status"] in ("sent", "delivered") for r in deliveries(env)), bound=120)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        sink.stop()
    rows = deliveries(env)
    assert len(rows) == PERSONS  # one row per person: nothing failed over to another channel
    sms = {r["key"]: r for r in rows if r["channel"] == "sms"}
    ding = {r["recipient__mobile"]: r for r in rows if r["channel"] == "dingtalk"}
    assert len(sms) == 40 and len(ding) == 20
    # SMS: every message accepted by the gateway exactly once; a re-sent request (the one in flight at the
    # kill) carried the same out_id.
    accepted = sink.state.accepted["sms"]
    assert set(accepted) == set(sms)
    requests = Counter(body["out_id"] for path, body, _q in sink.state.requests if path == "/sms")
    assert sum(n - 1 for n in requests.values()) <= 1
    # DingTalk: never twice to the same person; at most the one in flight at the kill is in doubt, and recorded.
    mentioned = Counter(body["at"]["atMobiles"][0] for path, body, _q in sink.state.requests if path == "/robot/send")
    assert max(mentioned.values()) == 1
    missing = set(ding) - set(mentioned)
    assert len(missing) <= 1
    for mobile in missing:
        assert "结果未知" in ding[mobile]["reason"]
