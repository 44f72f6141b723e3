"""Parsing sensor messages: topic and payload → readings, or a reason for each thing that was refused.

Pure functions with no database access, shared by the MQTT worker, the HTTP gateway endpoint and the CSV
import. They never raise on bad input: every refusal is a `Rejection` with a machine code and a message.

Topics (relative to settings.SENSING_MQTT_TOPIC_PREFIX, default ``tianmu/v1``):
    {prefix}/{station_code}/{sensor_code}/data   one reading {"ts": …, "value": …}, or {"readings": [{"ts", "value"}, …]}
    {prefix}/{gateway_id}/batch                  {"readings": [{"sensor": "…", "ts": …, "value": …}, …]}
``ts`` is ISO 8601 (an offset is recommended; without one it is Asia/Shanghai time) or epoch seconds
(values above 10^11 are taken as epoch milliseconds).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

__all__ = ["ParsedReading", "Rejection", "parse_message", "parse_item", "parse_ts", "parse_value", "ParseError",
           "EARLIEST_TS", "sanitize_text", "latest_allowed"]

EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TEXT_FIELD = 64
MAX_CODE_LENGTH = 40


class ParsedReading(NamedTuple):
    """A well-formed reading, not yet checked against the sensor registry (a named tuple: batches hold
    thousands, and a frozen dataclass costs several times more to create)."""

    sensor: str
    ts: datetime
    value: float
    station: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class Rejection:
    """Why a message, or one reading in it, was refused."""

    code: str
    message: object
    index: int | None = None
    field: str | None = None
    payload: str = ""

    def reason(self) -> str:
        """The dead-letter reason: machine code, position and the Chinese message."""
        with translation.override("zh-hans"):
            text = str(self.message)
        where = f"readings[{self.index}] " if self.index is not None else ""
        return sanitize_text(f"{where}{self.code}: {text}")


class ParseError(ValueError):
    def __init__(self, code: str, message, field: str | None = None):
        super().__init__(code)
        self.code, self.message, self.field = code, message, field


def sanitize_text(text: str, limit: int = 65_536) -> str:
    """Text safe for any database column: no NUL characters, bounded length."""
    return text.replace("\x00", "\\x00")[:limit]


def _payload_text(payload: bytes) -> str:
    return sanitize_text(payload.decode("utf-8", errors="backslashreplace"))


def _json_text(obj) -> str:
    try:
        return sanitize_text(json.dumps(obj, ensure_ascii=False, default=str))
    except (ValueError, TypeError, RecursionError):
        return sanitize_text(repr(obj))


def _local_tz():
    return ZoneInfo(settings.TIME_ZONE)


def latest_allowed(now: datetime) -> datetime:
    """The latest acceptable observation time for a message received at `now` (device clocks run ahead)."""
    from .conf import conf

    return now + timedelta(seconds=conf("SENSING_MAX_FUTURE_SECONDS"))


def _looks_iso(text: str) -> bool:
    return "T" in text or ":" in text or text.count("-") >= 2 or " " in text


def parse_ts(raw, now: datetime | None = None, *, latest: datetime | None = None) -> datetime:
    """An observation time as an aware UTC datetime; raises ParseError. `latest` is the latest acceptable
    time, if the caller already computed it from `now` (parse_message does, once per message)."""
    now = now or datetime.now(UTC)
    latest = latest or latest_allowed(now)
    if isinstance(raw, bool) or raw is None:
        raise ParseError("bad_ts", _("时间格式错误:应为 ISO 8601 时间或 Unix 秒"), "ts")
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > MAX_TEXT_FIELD:
            raise ParseError("bad_ts", _("时间格式错误:应为 ISO 8601 时间或 Unix 秒"), "ts")
        if _looks_iso(text):
            try:
                ts = datetime.fromisoformat(text)
            except ValueError as exc:
                raise ParseError("bad_ts", _("时间格式错误:应为 ISO 8601 时间或 Unix 秒"), "ts") from exc
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=_local_tz())
            try:
                ts = ts.astimezone(UTC)
            except (OverflowError, ValueError) as exc:
                raise ParseError("bad_ts", _("时间超出有效范围"), "ts") from exc
            return _check_ts_window(ts, latest)
        try:
            raw = float(text)
        except ValueError as exc:
            raise ParseError("bad_ts", _("时间格式错误:应为 ISO 8601 时间或 Unix 秒"), "ts") from exc
    if isinstance(raw, (int, float)):
        try:
            seconds = float(raw)
        except OverflowError as exc:
            raise ParseError("bad_ts", _("时间超出有效范围"), "ts") from exc
        if not math.isfinite(seconds):
            raise ParseError("bad_ts", _("时间超出有效范围"), "ts")
        if abs(seconds) > 1e11:
            seconds /= 1000.0
        try:
            ts = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ParseError("bad_ts", _("时间超出有效范围"), "ts") from exc
        return _check_ts_window(ts, latest)
    raise ParseError("bad_ts", _("时间格式错误:应为 ISO 8601 时间或 Unix 秒"), "ts")


def _check_ts_window(ts: datetime, latest: datetime) -> datetime:
    if ts < EARLIEST_TS:
        raise ParseError("ts_too_old", _("时间早于 2000 年,可能是设备时钟未校准"), "ts")
    if ts > latest:
        raise ParseError("ts_in_future", _("时间晚于当前时间,可能是设备时钟错误"), "ts")
    return ts


def parse_value(raw) -> float:
    """A finite number (numeric strings accepted); raises ParseError."""
    if isinstance(raw, bool) or raw is None:
        raise ParseError("bad_value", _("数值必须是数字"), "value")
    if isinstance(raw, str):
        if len(raw) > MAX_TEXT_FIELD:
            raise ParseError("bad_value", _("数值必须是数字"), "value")
        try:
            raw = float(raw.strip())
        except ValueError as exc:
            raise ParseError("bad_value", _("数值必须是数字"), "value") from exc
    if not isinstance(raw, (int, float)):
        raise ParseError("bad_value", _("数值必须是数字"), "value")
    try:
        value = float(raw)
    except OverflowError as exc:
        raise ParseError("bad_value", _("数值超出范围"), "value") from exc
    if not math.isfinite(value):
        raise ParseError("bad_value", _("数值必须是有限的数字"), "value")
    return value


def _parse_code(raw, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ParseError("bad_sensor", _("传感器编码必须是非空文本"), field)
    code = raw.strip()
    if len(code) > MAX_CODE_LENGTH or "\x00" in code:
        raise ParseError("bad_sensor", _("传感器编码过长或含非法字符"), field)
    return code


def parse_item(obj, *, default_sensor: str | None = None, station: str | None = None, index: int | None = None,
               now: datetime | None = None, latest: datetime | None = None) -> ParsedReading | Rejection:
    """One reading object {"sensor"?, "ts", "value"} → ParsedReading, or a Rejection."""
    if not isinstance(obj, dict):
        return Rejection("bad_reading", _("每条读数应为 JSON 对象"), index, None, _json_text(obj))
    try:
        if "sensor" in obj:
            sensor = _parse_code(obj["sensor"], "sensor")
            if default_sensor is not None and sensor != default_sensor:
                raise ParseError("sensor_mismatch", _("读数中的传感器编码与主题中的不一致"), "sensor")
        elif default_sensor is not None:
            sensor = default_sensor
        else:
            raise ParseError("missing_field", _("缺少字段 sensor(传感器编码)"), "sensor")
        if "ts" not in obj:
            raise ParseError("missing_field", _("缺少字段 ts(观测时间)"), "ts")
        if "value" not in obj:
            raise ParseError("missing_field", _("缺少字段 value(数值)"), "value")
        ts = parse_ts(obj["ts"], now, latest=latest)
        value = parse_value(obj["value"])
    except ParseError as exc:
        return Rejection(exc.code, exc.message, index, exc.field, _json_text(obj))
    return ParsedReading(sensor=sensor, ts=ts, value=value, station=station, index=index)


def _topic_parts(topic: str, prefix: str) -> list[str] | None:
    prefix = prefix.rstrip("/")
    if not topic.startswith(prefix + "/"):
        return None
    return topic[len(prefix) + 1:].split("/")


def parse_message(topic: str, payload: bytes, *, prefix: str, now: datetime | None = None,
                  max_bytes: int = 1_000_000, max_readings: int = 5000
                  ) -> tuple[list[ParsedReading], list[Rejection]]:
    """A broker message → (readings, rejections). A rejection without index refuses the whole message."""
    try:
        return _parse_message(topic, payload, prefix=prefix, now=now, max_bytes=max_bytes,
                              max_readings=max_readings)
    except Exception:  # noqa: BLE001 - a parser bug must not stop the worker: the message is kept as a dead letter
        return [], [Rejection("parser_error", _("解析消息时发生内部错误"), payload=_payload_text(payload[:max_bytes]))]


def _parse_message(topic, payload, *, prefix, now, max_bytes, max_readings):
    def whole() -> str:  # the payload as kept with a rejection: only worked out for one (it costs regexes)
        return _payload_text(payload[:max_bytes])

    if len(payload) > max_bytes:
        return [], [Rejection("too_large", _("消息过大"), payload=whole())]
    parts = _topic_parts(topic, prefix)
    if parts is None or not (len(parts) == 3 and parts[2] == "data" or len(parts) == 2 and parts[1] == "batch") \
            or not all(parts):
        return [], [Rejection("bad_topic", _("主题不符合约定的格式"), payload=whole())]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return [], [Rejection("not_utf8", _("消息不是 UTF-8 编码的文本"), payload=whole())]
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return [], [Rejection("malformed_json", _("消息不是有效的 JSON"), payload=whole())]
    if not isinstance(doc, dict):
        return [], [Rejection("bad_payload", _("消息应为 JSON 对象"), payload=whole())]
    now = now or datetime.now(UTC)
    latest = latest_allowed(now)
    if len(parts) == 3:
        station, sensor = parts[0], parts[1]
        if "readings" not in doc:
            item = parse_item(doc, default_sensor=sensor, station=station, now=now, latest=latest)
            return ([item], []) if isinstance(item, ParsedReading) else ([], [item])
        items, default = doc["readings"], sensor
    else:
        station, default = None, None
        if "readings" not in doc:
            return [], [Rejection("missing_field", _("缺少字段 readings(读数列表)"), field="readings",
                                  payload=whole())]
        items = doc["readings"]
    if not isinstance(items, list):
        return [], [Rejection("bad_payload", _("readings 应为列表"), field="readings", payload=whole())]
    if len(items) > max_readings:
        return [], [Rejection("too_large", _("一条消息中的读数过多"), field="readings", payload=whole())]
    readings, rejections = [], []
    for i, obj in enumerate(items):
        item = parse_item(obj, default_sensor=default, station=station, index=i, now=now, latest=latest)
        (readings if isinstance(item, ParsedReading) else rejections).append(item)
    if not items:
        rejections.append(Rejection("bad_payload", _("readings 列表为空"), field="readings", payload=whole()))
    return readings, rejections
