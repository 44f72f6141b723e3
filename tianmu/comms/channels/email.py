"""Email (电子邮件) through Django's mail with its SMTP backend (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, …).
The message carries a Message-ID made from the delivery's key, so a receiving system can drop a duplicate."""

from __future__ import annotations

import smtplib

from django.core.mail import EmailMessage, get_connection

from ..conf import conf
from .base import Message, Result, Transport

__all__ = ["EmailChannel"]


class EmailChannel(Transport):
    name = "email"

    def address(self, recipient) -> str:
        return recipient.email

    def configured(self, recipient) -> bool:
        return bool(conf("COMMS_EMAIL_FROM"))

    def send(self, delivery, message: Message) -> Result:
        body = message.text + (f"\n\n请点击确认收到:{message.link}" if message.link else "")
        mail = EmailMessage(subject=message.title, body=body, from_email=conf("COMMS_EMAIL_FROM"),
                            to=[delivery.address],
                            headers={"Message-ID": f"<{message.key}@tianmu.comms>"})
        try:
            with get_connection(timeout=conf("COMMS_HTTP_TIMEOUT")) as connection:
                connection.send_messages([mail])
        except smtplib.SMTPRecipientsRefused as exc:
            return Result(False, f"收件人被拒绝:{exc}"[:300], retry=False)
        except (smtplib.SMTPException, OSError) as exc:
            return Result(False, f"SMTP错误:{type(exc).__name__}"[:300], retry=True)
        return Result(True)
