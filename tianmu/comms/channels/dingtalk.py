"""DingTalk custom group robot (钉钉自定义机器人) with signing (加签): POST the webhook URL plus
`&timestamp=<ms>&sign=<s>`, where s = urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret))),
and a text message that @-mentions the recipient by mobile (atMobiles) or DingTalk user id (atUserIds). DingTalk
answers {"errcode": 0, "errmsg": "ok"}; it refuses a timestamp more than an hour off. The robot protocol has no
idempotency key, so a crash between its answer and our commit can repeat a message (docs/comms.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import httpx

from ..conf import conf
from .base import Message, Result, Transport, http_client, http_failure

__all__ = ["dingtalk_sign", "robot_for", "DingTalkChannel"]

# errcodes that no retry will fix (bad token, bad signature, robot disabled, keyword/IP security refused).
PERMANENT = {300001, 300005, 310000, 400101, 400102, 400105, 400106}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` parameter, URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def robot_for(region_code: str) -> tuple[str, str]:
    """(webhook, secret) of the robot for a region: the longest matching prefix of COMMS_DINGTALK_ROBOTS, else
    the district's COMMS_DINGTALK_WEBHOOK/SECRET."""
    robots = conf("COMMS_DINGTALK_ROBOTS") or {}
    for prefix in sorted(robots, key=len, reverse=True):
        if region_code.startswith(prefix):
            robot = robots[prefix]
            return robot.get("webhook", ""), robot.get("secret", "")
    return conf("COMMS_DINGTALK_WEBHOOK"), conf("COMMS_DINGTALK_SECRET")


class DingTalkChannel(Transport):
    name = "dingtalk"

    def address(self, recipient) -> str:
        return recipient.dingtalk_user or recipient.mobile

    def configured(self, recipient) -> bool:
        return bool(robot_for(recipient.region.code)[0])

    def send(self, delivery, message: Message) -> Result:
        webhook, secret = robot_for(delivery.region.code)
        url = webhook
        if secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
        at = ({"atMobiles": [delivery.address]} if delivery.address.isdigit()
              else {"atUserIds": [delivery.address]})
        body = {"msgtype": "text", "text": {"content": message.body()}, "at": {**at, "isAtAll": False}}
        try:
            r = http_client().post(url, json=body, timeout=conf("COMMS_HTTP_TIMEOUT"))
        except httpx.HTTPError as exc:
            return http_failure(exc)
        if r.status_code >= 300:
            return http_failure(r.status_code, r.text)
        try:
            data = r.json()
        except ValueError:
            return Result(False, "钉钉应答不是JSON", retry=True)
        code = data.get("errcode") if isinstance(data, dict) else None
        if code != 0:
            return Result(False, f"钉钉错误 {code}: {data.get('errmsg', '') if isinstance(data, dict) else ''}"[:300],
                          retry=code not in PERMANENT)
        return Result(True)
