"""SMS (短信) over an HTTP gateway, behind a small provider interface.

The one concrete provider, `HttpSmsProvider`, speaks a generic JSON gateway protocol (docs/comms.md): POST
{"to": "139…", "text": "…", "sign": "临安应急", "out_id": "…"} with `Authorization: Bearer <api key>`;
the gateway answers 2xx {"ok": true, "message_id": "…", "status": "accepted"|"delivered"}. `out_id` is our
idempotency key: a gateway that has seen it answers with the same message id and sends nothing again.

A long text goes as one concatenated SMS (so the confirmation link is never broken across messages) and is billed
in segments: up to 70 Chinese characters is one (COMMS_SMS_SEGMENT), longer ones 67 a segment
(COMMS_SMS_PART; 3 carry the concatenation header). A text over COMMS_SMS_MAX_SEGMENTS is cut, never the link.
The gateway's own "segments" count, when it answers one, is what is recorded as billed."""

from __future__ import annotations

from abc import ABC, abstractmethod

import httpx

from ..conf import conf
from .base import Message, Result, Transport, fit_sms, http_client, http_failure, segments

__all__ = ["SmsProvider", "HttpSmsProvider", "SmsChannel"]


class SmsProvider(ABC):
    """An SMS gateway. Implement `configured` and `send` for another gateway (a carrier's CMPP bridge, a cloud SMS
    API); a subclass that leaves one out cannot be instantiated."""

    @abstractmethod
    def configured(self) -> bool:
        """Whether the gateway's settings are present."""

    @abstractmethod
    def send(self, to: str, text: str, out_id: str) -> Result:
        """Send `text` (one concatenated message) with our idempotency key `out_id`."""


class HttpSmsProvider(SmsProvider):
    """The generic "HTTP SMS gateway": JSON POST with an API key."""

    def __init__(self, url: str | None = None, api_key: str | None = None, sign: str | None = None):
        self.url = conf("COMMS_SMS_URL") if url is None else url
        self.api_key = conf("COMMS_SMS_API_KEY") if api_key is None else api_key
        self.sign = conf("COMMS_SMS_SIGN") if sign is None else sign

    def configured(self) -> bool:
        return bool(self.url and self.api_key)

    def send(self, to: str, text: str, out_id: str) -> Result:
        try:
            r = http_client().post(self.url, json={"to": to, "text": text, "sign": self.sign, "out_id": out_id},
                           headers={"Authorization": f"Bearer {self.api_key}"}, timeout=conf("COMMS_HTTP_TIMEOUT"))
        except httpx.HTTPError as exc:
            return http_failure(exc)
        if r.status_code >= 300:
            return http_failure(r.status_code, r.text)
        try:
            data = r.json()
        except ValueError:
            return Result(False, "网关应答不是JSON", retry=True)
        if not isinstance(data, dict) or not data.get("ok"):
            error = str(data.get("error", "")) if isinstance(data, dict) else ""
            return Result(False, f"网关拒绝:{error}"[:300], retry=False)
        billed = data.get("segments")
        return Result(True, provider_id=str(data.get("message_id", ""))[:128],
                      segments=billed if isinstance(billed, int) and billed > 0 else 0,
                      delivered=data.get("status") == "delivered")


class SmsChannel(Transport):
    name = "sms"

    def __init__(self, provider: SmsProvider | None = None):
        self.provider = provider or HttpSmsProvider()

    def address(self, recipient) -> str:
        return recipient.mobile

    def configured(self, recipient) -> bool:
        return self.provider.configured()

    def send(self, delivery, message: Message) -> Result:
        single, part = conf("COMMS_SMS_SEGMENT"), conf("COMMS_SMS_PART")
        text = fit_sms(message, single, part, conf("COMMS_SMS_MAX_SEGMENTS"))
        result = self.provider.send(delivery.address, text, message.key)
        if result.ok and not result.segments:
            result.segments = segments(text, single, part)
        return result
