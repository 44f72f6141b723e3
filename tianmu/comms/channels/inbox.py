"""The in-app inbox (站内消息): the message is the delivery row itself, shown on the linked user's inbox page
with a confirm button. Delivered the moment it is written."""

from __future__ import annotations

from .base import Message, Result, Transport

__all__ = ["InboxChannel"]


class InboxChannel(Transport):
    name = "inbox"

    def address(self, recipient) -> str:
        return recipient.account

    def configured(self, recipient) -> bool:
        return True

    def send(self, delivery, message: Message) -> Result:
        return Result(True, delivered=True)
