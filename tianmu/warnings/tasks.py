"""Periodic warning jobs (Huey): issued warnings whose validity has ended expire."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services import expire_due

__all__ = ["expire_warnings"]


@db_periodic_task(crontab(minute="*"), retries=2, retry_delay=20)
def expire_warnings() -> int:
    """Mark every issued warning past its expiry as expired (event warnings.warning.expired)."""
    return expire_due()
