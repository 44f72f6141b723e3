"""Background jobs (Huey): retried with backoff, and periodic housekeeping."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

IMPORT_UPLOAD_TTL_SECONDS = 24 * 3600


@db_periodic_task(crontab(minute="*/30"), retries=3, retry_delay=60)
def purge_stale_import_uploads() -> int:
    """Delete uploaded spreadsheets that were checked but never confirmed (older than a day)."""
    folder = Path(settings.VAR_DIR) / "imports"
    if not folder.exists():
        return 0
    cutoff = time.time() - IMPORT_UPLOAD_TTL_SECONDS
    removed = 0
    for path in folder.glob("*.xlsx"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
