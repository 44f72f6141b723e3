"""Command-communications settings with their defaults, declared on CommsConfig (core.plugins): set any of them
in settings.py, or through the environment variables named here. A channel whose settings are empty is "not
configured": its deliveries move on to the recipient's next channel with that reason. Values marked [U] are
assumptions a district should confirm (docs/comms.md)."""

from __future__ import annotations

import json
import os

from tianmu.core.plugins import setting

__all__ = ["conf", "DEFAULTS"]


def _env_json(name: str, default):
    raw = os.environ.get(name, "").strip()
    return json.loads(raw) if raw else default


DEFAULTS = {
    # DingTalk custom group robots (钉钉自定义机器人), signed (加签): the webhook
    # (https://oapi.dingtalk.com/robot/send?access_token=…) and its SEC… secret. One robot for the district,
    # and optionally one per region: {"330112001": {"webhook": "…", "secret": "…"}} (the longest matching
    # region-code prefix wins).
    "COMMS_DINGTALK_WEBHOOK": os.environ.get("TIANMU_DINGTALK_WEBHOOK", ""),
    "COMMS_DINGTALK_SECRET": os.environ.get("TIANMU_DINGTALK_SECRET", ""),
    "COMMS_DINGTALK_ROBOTS": _env_json("TIANMU_DINGTALK_ROBOTS", {}),
    # The HTTP SMS gateway: JSON POST {"to", "text", "out_id", "sign"} with an API key (docs/comms.md).
    "COMMS_SMS_URL": os.environ.get("TIANMU_SMS_URL", ""),
    "COMMS_SMS_API_KEY": os.environ.get("TIANMU_SMS_API_KEY", ""),
    "COMMS_SMS_SIGN": os.environ.get("TIANMU_SMS_SIGN", "临安应急"),  # 短信签名 [U]
    # Billing: a Chinese (UCS-2) SMS of up to 70 characters is one segment; a longer one is sent concatenated and
    # billed 67 characters a segment [U: the gateway's rule; the gateway's own count wins when it answers one].
    "COMMS_SMS_SEGMENT": 70,
    "COMMS_SMS_PART": 67,
    "COMMS_SMS_MAX_SEGMENTS": 10,  # a longer text is cut (ending "…", the link kept) rather than billed without limit
    # The emergency-broadcast (应急广播) platform: an HTTP POST of the text, read out by the far end (TTS).
    "COMMS_BROADCAST_URL": os.environ.get("TIANMU_BROADCAST_URL", ""),
    "COMMS_BROADCAST_TOKEN": os.environ.get("TIANMU_BROADCAST_TOKEN", ""),
    # Email goes through Django's mail (EMAIL_HOST, EMAIL_PORT, … in settings.py); the channel is configured when
    # a sender address is set.
    "COMMS_EMAIL_FROM": os.environ.get("TIANMU_EMAIL_FROM", ""),
    # Timeouts and the worker.
    "COMMS_HTTP_TIMEOUT": float(os.environ.get("TIANMU_COMMS_HTTP_TIMEOUT", "10")),
    "COMMS_BATCH": int(os.environ.get("TIANMU_COMMS_BATCH", "50")),  # deliveries claimed per round
    # A claimed delivery's lease: after it, another worker may take it again (longer than a round of sends).
    "COMMS_LEASE_SECONDS": int(os.environ.get("TIANMU_COMMS_LEASE_SECONDS", "120")),
    "COMMS_POLL_SECONDS": 1.0,
    "COMMS_MAX_ATTEMPTS": 4,  # attempts on one channel before moving to the next
    "COMMS_RETRY_SECONDS": 5,  # first retry after this, doubling
    "COMMS_RETRY_MAX_SECONDS": 300,
    # Per-channel rate limits, messages per second (the gateways' published limits; DingTalk robots: 20 a minute
    # per robot) [U].
    "COMMS_RATE_LIMITS": _env_json("TIANMU_COMMS_RATE_LIMITS",
                                   {"sms": 20, "dingtalk": 0.33, "email": 5, "broadcast": 2, "inbox": 1000}),
    # The order a recipient's channels are tried in, when the record names none.
    "COMMS_DEFAULT_CHANNELS": ["inbox", "sms", "dingtalk", "email"],
    # Call-and-respond (叫应): minutes allowed to confirm, per level, before escalation [U].
    "COMMS_CONFIRM_MINUTES": _env_json("TIANMU_COMMS_CONFIRM_MINUTES",
                                       {"red": 10, "orange": 30, "yellow": 60, "blue": 120}),
    "COMMS_CONFIRM_LEVELS": ["red", "orange"],  # levels that ask for confirmation unless the caller says otherwise
    "COMMS_LINK_MAX_AGE_HOURS": 72,  # a one-tap confirmation link expires after this
    # The site's public address, for the links in SMS and DingTalk messages.
    "COMMS_PUBLIC_URL": os.environ.get("TIANMU_PUBLIC_URL", "http://127.0.0.1:8000"),
    "COMMS_MAX_TEXT": 1000,  # longest message text accepted by dispatch()
}


def conf(name: str):
    """A comms setting: settings.py first, then its default here."""
    return setting(name, DEFAULTS[name])
