"""The message parser: documented formats are read, and nothing — not even arbitrary bytes — makes it raise;
every refusal carries a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tianmu.sensing.parsing import ParsedReading, Rejection, parse_message

P = "tianmu/v1"
NOW = datetime.now(UTC).replace(microsecond=0)


def parse(topic, payload):
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_message(topic, data, prefix=P, now=NOW)


def test_single_reading_with_offset_epoch_and_local_time():
    ts = NOW - timedelta(hours=1)
    (r,), rej = parse(f"{P}/ST1/RG1/data", {"ts": ts.astimezone().isoformat(), "value": 12.5})
    assert not rej and r == ParsedReading("RG1", ts, 12.5, "ST1")
    (r,), _ = parse(f"{P}/ST1/RG1/data", {"ts": ts.timestamp(), "value": "3"})
    assert r.ts == ts and r.value == 3.0
    (r,), _ = parse(f"{P}/ST1/RG1/data", {"ts": int(ts.timestamp() * 1000), "value": 1})
    assert r.ts == ts
    naive_shanghai = ts.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=8)
    (r,), _ = parse(f"{P}/ST1/RG1/data", {"ts": naive_shanghai.isoformat(), "value": 1})
    assert r.ts == ts  # no offset means Asia/Shanghai


def test_batches_on_both_topics():
    ts = int((NOW - timedelta(minutes=5)).timestamp())
    readings, rej = parse(f"{P}/GW9/batch", {"readings": [{"sensor": "A", "ts": ts, "value": 1},
                                                            {"sensor": "B", "ts": ts, "value": 2}]})
    assert [r.sensor for r in readings] == ["A", "B"] and not rej and readings[0].station is None
    readings, rej = parse(f"{P}/ST1/RG1/data", {"readings": [{"ts": ts, "value": 1}, {"ts": ts + 300, "value": 2},
                                                              {"sensor": "OTHER", "ts": ts, "value": 3}]})
    assert [r.value for r in readings] == [1, 2]
    assert [(r.code, r.index) for r in rej] == [("sensor_mismatch", 2)]


@pytest.mark.parametrize("topic,payload,code", [
    (f"{P}/ST1/RG1/data", b"{not json", "malformed_json"),
    (f"{P}/ST1/RG1/data", b"\xff\xfe", "not_utf8"),
    (f"{P}/ST1/RG1/data", b"[1, 2]", "bad_payload"),
    (f"{P}/ST1/RG1/status", b"{}", "bad_topic"),
    ("other/ST1/RG1/data", b"{}", "bad_topic"),
    (f"{P}/ST1/RG1/data", {"value": 1}, "missing_field"),
    (f"{P}/ST1/RG1/data", {"ts": 1_700_000_000}, "missing_field"),
    (f"{P}/ST1/RG1/data", {"ts": "yesterday", "value": 1}, "bad_ts"),
    (f"{P}/ST1/RG1/data", {"ts": 1_700_000_000, "value": "NaN"}, "bad_value"),
    (f"{P}/ST1/RG1/data", {"ts": 1_700_000_000, "value": True}, "bad_value"),
    (f"{P}/ST1/RG1/data", {"ts": 10, "value": 1}, "ts_too_old"),
    (f"{P}/ST1/RG1/data", {"ts": (NOW + timedelta(hours=2)).isoformat(), "value": 1}, "ts_in_future"),
    (f"{P}/GW/batch", {"readings": [{"ts": 1_700_000_000, "value": 1}]}, "missing_field"),
    (f"{P}/GW/batch", {"readings": "many"}, "bad_payload"),
    (f"{P}/ST1/RG1/data", b"[" * 100_000, "malformed_json"),
])
def test_refusals_have_a_code_and_a_reason(topic, payload, code):
    readings, rejections = parse(topic, payload)
    assert not readings and [r.code for r in rejections] == [code]
    assert rejections[0].reason().split(": ")[0].endswith(code) and len(rejections[0].reason()) > len(code) + 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
reading_like = st.fixed_dictionaries({}, optional={
    "sensor": st.one_of(st.text(max_size=50), st.integers(), st.none()),
    "ts": st.one_of(st.integers(min_value=-10**20, max_value=10**20), st.floats(), st.text(max_size=40),
                    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())),
    "value": st.one_of(st.floats(), st.integers(min_value=-10**400, max_value=10**400), st.text(max_size=20),
                       st.booleans(), st.none()),
})
payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    reading_like.map(lambda v: json.dumps(v).encode()),
    st.lists(reading_like, max_size=5).map(lambda rs: json.dumps({"readings": rs}).encode()),
)
topics = st.one_of(st.just(f"{P}/ST1/RG1/data"), st.just(f"{P}/GW1/batch"), st.text(max_size=40))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, payload=payloads)
def test_parser_never_raises_and_every_refusal_has_a_reason(topic, payload):
    readings, rejections = parse_message(topic, payload, prefix=P, now=NOW)
    assert readings or rejections
    for r in readings:
        assert isinstance(r, ParsedReading) and r.ts.tzinfo is not None and r.value == r.value
    for r in rejections:
        assert isinstance(r, Rejection) and r.code and r.reason() and "\x00" not in r.payload + r.reason()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(payload=payloads)
def test_every_message_is_stored_or_dead_lettered(net, payload):
    """Through the whole ingest path (database included): no message is dropped without a reason."""
    from tianmu.core.models import DeadLetter
    from tianmu.sensing.services import ingest_messages

    before = DeadLetter.objects.count()
    outcome = ingest_messages([(f"{P}/ST-RAIN-A/RG-A/data", payload)])
    letters = list(DeadLetter.objects.order_by("id")[before:])
    assert outcome.readings + len(letters) >= 1 and len(letters) == outcome.dead_letters
    assert all(d.reason and d.source == "mqtt" for d in letters)
