"""What every channel client is: given a delivery's recipient, an address (or none) and whether its settings
are present; given a message, one send attempt whose Result says what happened."""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
from django.utils.translation import gettext_lazy as _

__all__ = ["Message", "Result", "Transport", "segments", "fit_sms", "http_failure", "http_client"]

_CLIENT: dict[int, httpx.Client] = {}
_CLIENT_LOCK = threading.Lock()


def http_client() -> httpx.Client:
    """One pooled HTTP client per process (keep-alive to the gateways; building a client loads the CA bundle,
    which cost ~100 ms a message when every send made its own)."""
    pid = os.getpid()
    client = _CLIENT.get(pid)
    if client is None:
        with _CLIENT_LOCK:
            client = _CLIENT.get(pid)
            if client is None:
                client = _CLIENT[pid] = httpx.Client(limits=httpx.Limits(max_keepalive_connections=8))
    return client


@dataclass(frozen=True)
class Message:
    """What goes out: the title and text, the one-tap confirmation link (empty when no confirmation is asked),
    the level, and the delivery's idempotency key (the same on every retry of this person and channel)."""

    title: str
    text: str
    link: str
    level: str
    key: str

    def body(self) -> str:
        """Title, text and the confirmation request, as one plain text."""
        out = f"【{self.title}】{self.text}"
        if self.link:
            out += f" 请点击确认收到:{self.link}"
        return out


@dataclass
class Result:
    """One send attempt. `ok`: the far end accepted it (then `delivered` if it also says it reached the person).
    Not ok: `retry` True for a transient failure (timeout, 5xx: try again later), False for a permanent one
    (refused number, bad credentials: move on to the next channel)."""

    ok: bool
    reason: str = ""
    retry: bool = True
    provider_id: str = ""
    segments: int = 0
    delivered: bool = False


class Transport(ABC):
    """A channel client. Subclasses set `name` and implement `address`, `configured` and `send` (a subclass that
    leaves one out cannot be instantiated)."""

    name = ""

    @abstractmethod
    def address(self, recipient) -> str:
        """Where this recipient is reached on the channel; "" if they have no address on it."""

    @abstractmethod
    def configured(self, recipient) -> bool:
        """Whether the channel's settings are present (for this recipient's region)."""

    @abstractmethod
    def send(self, delivery, message: Message) -> Result:
        """Hand the message to the channel; the Result says sent, delivered, or failed (retry or not) and why."""


def segments(text: str, single: int = 70, part: int = 67) -> int:
    """Billed SMS segments of a text (Chinese, UCS-2): one up to `single` characters, else `part` characters per
    segment of the concatenated message (the other 3 carry the concatenation header)."""
    n = len(text)
    return 1 if n <= single else -(-n // part)


def fit_sms(message: Message, single: int = 70, part: int = 67, limit: int = 10) -> str:
    """The SMS text: the message's body, its text cut (ending "…") so that with the title and the confirmation
    link it stays within `limit` segments; the link is never cut."""
    full = message.body()
    if segments(full, single, part) <= limit:
        return full
    room = limit * part - (len(full) - len(message.text)) - 1
    return Message(message.title, message.text[:max(room, 0)] + "…", message.link, message.level, message.key).body()


def http_failure(exc_or_status, body: str = "") -> Result:
    """A Result for an HTTP failure: network errors and 5xx/429 are transient, other 4xx permanent."""
    if isinstance(exc_or_status, int):
        transient = exc_or_status >= 500 or exc_or_status in (408, 429)
        reason = _("网关返回 HTTP %(status)s") % {"status": exc_or_status}
        return Result(False, f"{reason} {body[:120]}".strip(), retry=transient)
    return Result(False, str(_("网络错误:%(error)s") % {"error": type(exc_or_status).__name__}), retry=True)
