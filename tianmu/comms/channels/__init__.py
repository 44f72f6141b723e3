"""The channels a delivery can go out on, each a real protocol client configured by comms settings (conf.py):
the in-app inbox, SMS over an HTTP gateway, a DingTalk custom group robot, email over SMTP, and the
emergency-broadcast platform. `channel(name)` gives the client; the send worker (sending.py) calls it."""

from __future__ import annotations

from .base import Message, Result, Transport, fit_sms, segments
from .broadcast import BroadcastChannel
from .dingtalk import DingTalkChannel, dingtalk_sign
from .email import EmailChannel
from .inbox import InboxChannel
from .sms import HttpSmsProvider, SmsChannel, SmsProvider

__all__ = ["Message", "Result", "Transport", "segments", "fit_sms", "channel", "CLIENTS", "dingtalk_sign", "SmsProvider",
           "HttpSmsProvider", "InboxChannel", "SmsChannel", "DingTalkChannel", "EmailChannel", "BroadcastChannel"]

CLIENTS: dict[str, type[Transport]] = {c.name: c for c in (InboxChannel, SmsChannel, DingTalkChannel, EmailChannel,
                                                           BroadcastChannel)}


def channel(name: str) -> Transport:
    return CLIENTS[name]()
