"""Periodic monitoring jobs (Huey): silent sensors become device-fault alarms; next month's reading
partition is created ahead of time."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services.alarms import check_no_data
from .storage import ensure_partitions

__all__ = ["check_silent_sensors", "prepare_partitions"]


@db_periodic_task(crontab(minute="*/5"), retries=2, retry_delay=30)
def check_silent_sensors() -> int:
    """Open a no-data alarm for every active sensor silent for SENSING_NO_DATA_INTERVALS intervals."""
    return check_no_data()


@db_periodic_task(crontab(minute="7", hour="*/6"), retries=3, retry_delay=60)
def prepare_partitions() -> None:
    """Create this month's and next month's reading partitions (PostgreSQL) before the first reading needs them."""
    now = timezone.now()
    with transaction.atomic():
        ensure_partitions([now, now + timedelta(days=32)])
