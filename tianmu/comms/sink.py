"""A loopback gateway (the demo's, and the tests'): an HTTP server that plays the SMS gateway, the DingTalk robot
and the emergency-broadcast platform, recording every request. It checks what the real far ends check — the
SMS API key, the DingTalk signature and timestamp, the broadcast token — drops a repeated SMS out_id or broadcast
request_id as a real gateway does, and can fail or be slow on demand (tests). Not used in production."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Sink", "SinkState"]


@dataclass
class SinkState:
    sms_key: str = "sms-key"
    ding_secret: str = "SECdemo"
    broadcast_token: str = "bc-token"
    requests: list = field(default_factory=list)  # (path, json body, query) of every request
    accepted: dict = field(default_factory=dict)  # channel → {idempotency key: body}
    fail_next: int = 0  # answer this many requests with `fail_status`
    fail_status: int = 503
    fail_only: str = ""  # when set, only requests to this mobile (SMS) fail
    delay: float = 0.0
    refuse: set = field(default_factory=set)  # mobiles the SMS gateway refuses (permanent)
    deliver: bool = True  # SMS answers "delivered"
    report_segments: bool = True  # SMS answers how many segments it billed
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: SinkState

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def do_POST(self):  # noqa: N802 - http.server's name
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._answer(400, {"ok": False, "error": "bad json"})
        with st.lock:
            st.requests.append((url.path, body, query))
            failing = st.fail_next > 0 and (not st.fail_only or body.get("to") == st.fail_only)
            if failing:
                st.fail_next -= 1
        if st.delay:
            time.sleep(st.delay)
        if failing:
            return self._answer(st.fail_status, {"ok": False, "error": "injected"})
        if url.path.endswith("/sms"):
            return self._sms(body)
        if url.path.endswith("/robot/send"):
            return self._ding(body, query)
        if url.path.endswith("/broadcast"):
            return self._broadcast(body)
        return self._answer(404, {"ok": False, "error": "no such endpoint"})

    def _sms(self, body):
        st = self.state
        if self.headers.get("Authorization") != f"Bearer {st.sms_key}":
            return self._answer(401, {"ok": False, "error": "bad api key"})
        if not body.get("to") or not body.get("out_id") or not isinstance(body.get("text"), str):
            return self._answer(400, {"ok": False, "error": "to, text and out_id are required"})
        if body["to"] in st.refuse:
            return self._answer(200, {"ok": False, "error": "number refused"})
        with st.lock:
            seen = st.accepted.setdefault("sms", {})
            seen.setdefault(body["out_id"], body)  # a repeated out_id is recognised, not sent again
        n = len(body["text"])
        answer = {"ok": True, "message_id": "m-" + body["out_id"], "status": "delivered" if st.deliver else "accepted"}
        if st.report_segments:
            answer["segments"] = 1 if n <= 70 else -(-n // 67)
        return self._answer(200, answer)

    def _ding(self, body, query):
        st = self.state
        ts, sign = (query.get("timestamp") or [""])[0], (query.get("sign") or [""])[0]
        expected = base64.b64encode(hmac.new(st.ding_secret.encode(), f"{ts}\n{st.ding_secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        # parse_qs has already URL-decoded `sign` once.
        if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600_000 or not hmac.compare_digest(sign, expected):
            return self._answer(200, {"errcode": 310000, "errmsg": "sign not match"})
        if body.get("msgtype") != "text" or not body.get("text", {}).get("content"):
            return self._answer(200, {"errcode": 40035, "errmsg": "missing text"})
        with st.lock:
            st.accepted.setdefault("dingtalk", {})[f"{len(st.accepted.get('dingtalk', {}))}"] = body
        return self._answer(200, {"errcode": 0, "errmsg": "ok"})

    def _broadcast(self, body):
        st = self.state
        if self.headers.get("Authorization") != f"Bearer {st.broadcast_token}":
            return self._answer(401, {"ok": False, "error": "bad token"})
        with st.lock:
            st.accepted.setdefault("broadcast", {}).setdefault(body.get("request_id", ""), body)
        return self._answer(200, {"ok": True, "task_id": "t-" + str(body.get("request_id", ""))})


class Sink:
    """Start with `Sink().start()`; `url` is its base (http://127.0.0.1:<port>); `settings()` the comms settings
    that point every HTTP channel at it."""

    def __init__(self, state: SinkState | None = None, host: str = "127.0.0.1", port: int = 0):
        self.state = state or SinkState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Sink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def settings(self) -> dict:
        return {"COMMS_SMS_URL": f"{self.url}/sms", "COMMS_SMS_API_KEY": self.state.sms_key,
                "COMMS_DINGTALK_WEBHOOK": f"{self.url}/robot/send?access_token=demo",
                "COMMS_DINGTALK_SECRET": self.state.ding_secret,
                "COMMS_BROADCAST_URL": f"{self.url}/broadcast", "COMMS_BROADCAST_TOKEN": self.state.broadcast_token}
