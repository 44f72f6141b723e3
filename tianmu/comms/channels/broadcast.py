"""The emergency-broadcast platform (应急广播): rural loudspeakers reached through an HTTP POST of the text, read
out by text-to-speech at the far end. Protocol (docs/comms.md): POST {"point": "<broadcast point>", "text":
"…", "level": "red", "request_id": "…"} with `Authorization: Bearer <token>`; 2xx {"ok": true, "task_id": …}.
`request_id` is our idempotency key."""

from __future__ import annotations

import httpx

from ..conf import conf
from .base import Message, Result, Transport, http_client, http_failure

__all__ = ["BroadcastChannel"]


class BroadcastChannel(Transport):
    name = "broadcast"

    def address(self, recipient) -> str:
        return recipient.broadcast_point

    def configured(self, recipient) -> bool:
        return bool(conf("COMMS_BROADCAST_URL"))

    def send(self, delivery, message: Message) -> Result:
        body = {"point": delivery.address, "text": f"{message.title}。{message.text}", "level": message.level,
                "request_id": message.key}
        try:
            r = http_client().post(conf("COMMS_BROADCAST_URL"), json=body, timeout=conf("COMMS_HTTP_TIMEOUT"),
                           headers={"Authorization": f"Bearer {conf('COMMS_BROADCAST_TOKEN')}"})
        except httpx.HTTPError as exc:
            return http_failure(exc)
        if r.status_code >= 300:
            return http_failure(r.status_code, r.text)
        try:
            data = r.json()
        except ValueError:
            data = {}
        if isinstance(data, dict) and data.get("ok") is False:
            return Result(False, f"广播平台拒绝:{data.get('error', '')}"[:300], retry=False)
        return Result(True, provider_id=str(data.get("task_id", "") if isinstance(data, dict) else "")[:128])
