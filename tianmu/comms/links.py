"""The signed one-tap confirmation link (叫应链接): works on a phone without logging in, expires after
COMMS_LINK_MAX_AGE_HOURS, and names one delivery. Signed with the site's SECRET_KEY (django.core.signing)."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

from .conf import conf

__all__ = ["confirm_token", "confirm_link", "read_token", "SALT"]

SALT = "tianmu.comms.confirm"


def confirm_token(delivery) -> str:
    return signing.dumps(delivery.pk, salt=SALT, compress=True)


def confirm_link(delivery) -> str:
    return conf("COMMS_PUBLIC_URL").rstrip("/") + reverse("comms:link", kwargs={"token": confirm_token(delivery)})


def read_token(token: str) -> int:
    """The delivery id; raises signing.SignatureExpired (too old) or signing.BadSignature (forged, damaged)."""
    value = signing.loads(token, salt=SALT, max_age=conf("COMMS_LINK_MAX_AGE_HOURS") * 3600)
    if not isinstance(value, int):
        raise signing.BadSignature("not a delivery")
    return value
