"""Fixtures of the command-communications tests: real loopback servers (the HTTP gateway sink for SMS, DingTalk
and broadcast; an aiosmtpd SMTP server) with the comms settings pointing at them, and a small network of
responsible persons in the two-town world (甲镇 / 蔺镇)."""

from __future__ import annotations

import socket

import pytest

from tianmu.comms.sink import Sink


@pytest.fixture
def sink(settings):
    """The loopback gateway, and every HTTP channel configured to use it."""
    s = Sink().start()
    for name, value in s.settings().items():
        setattr(settings, name, value)
    settings.COMMS_RATE_LIMITS = {}  # pacing is tested on its own; these tests send as fast as they can
    settings.COMMS_RETRY_SECONDS = 0
    yield s
    s.stop()


class SmtpRecorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.content.decode("utf-8", "replace")})
        return "250 OK"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback (aiosmtpd), and Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.COMMS_EMAIL_FROM = "duty@linan.example"
    yield recorder
    controller.stop()


@pytest.fixture
def people(world):
    """The district duty room; a lead per town (superior: the room); a lead per village (superior: their town's
    lead), the town-A lead linked to the town-A staff account and the village-A lead to the village responder."""
    from tianmu.comms.models import Recipient

    users = world["users"]

    def make(code, name, region, duty, superior=None, **extra):
        return Recipient.objects.create(code=code, name=name, region=region, duty=duty, superior=superior,
                                        **extra)

    room = make("ZR-D", "区防指值班室", world["district"], "duty_officer", mobile="19901120001",
                channels="inbox,sms", account=users["commander"].username)
    town_a = make("ZR-A", "王建国", world["town_a"], "town_lead", room, mobile="19901120002",
                  channels="inbox,sms,dingtalk", account=users["town_staff"].username)
    town_b = make("ZR-B", "蔺海波", world["town_b"], "town_lead", room, mobile="19901120003", channels="sms,dingtalk")
    village_a = make("ZR-A1", "李秀英", world["village_a"], "village_lead", town_a, mobile="19901120004",
                     channels="sms,dingtalk", account=users["village_responder"].username)
    village_b = make("ZR-B1", "蔺德荣", world["village_b"], "village_lead", town_b, mobile="19901120005",
                     channels="sms,dingtalk")
    return {"room": room, "town_a": town_a, "town_b": town_b, "village_a": village_a, "village_b": village_b}
