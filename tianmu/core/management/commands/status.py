"""`tianmu status`: how the event consumers are doing (the same as /ops/events/): each consumer's position,
lag behind the head of the outbox, last success, failures and dead letters."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from tianmu.core.consumers import consumer_status


def _time(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class Command(BaseCommand):
    help = "Show each event consumer's position, lag, last success, failures and dead letters."

    def handle(self, *args, **opts):
        rows = consumer_status()
        if not rows:
            self.stdout.write("No event consumers (no handler is registered and no cursor exists).")
            return
        header = ("consumer", "state", "position", "head", "lag", "oldest pending", "last success", "failures",
                  "dead letters")
        table = [header]
        for s in rows:
            table.append((s.name + ("" if s.registered else " (no handler)"), s.state, str(s.position), str(s.head),
                          f"{s.lag}{'+' if s.lag_capped else ''}", _time(s.oldest_pending_at),
                          _time(s.last_success_at), str(s.failures), str(s.dead_letters)))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        for s in rows:
            if s.failures:
                self.stdout.write(f"\n{s.name}: event {s.failing_event} failed {s.failures} time(s), next try "
                                  f"{_time(s.retry_at)}: {s.last_error}")
