"""`tianmu replay`: replay a past storm into a separate scenario database through the real ingest path
(logic and reasons in tianmu/sensing/replay.py; docs/sensing.md, *Replaying a past storm*)."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tianmu.sensing import replay
from tianmu.sensing.queries import parse_time


class Command(BaseCommand):
    help = ("Replay a past storm (a readings CSV, or readings stored here for a period) into a separate scenario "
            "database through the real ingest path, with progress, so it can be studied without touching live "
            "alarms.")

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--csv", type=Path, help="readings file: sensor,ts,value (or 传感器编码,时间,数值)")
        source.add_argument("--stored", nargs=2, metavar=("START", "END"),
                            help="the readings stored in this database after START up to and including END "
                                 "(ISO 8601, Beijing time without an offset); those up to START are the history")
        parser.add_argument("--into", help="the scenario database URL (never the live one)")
        parser.add_argument("--batch-minutes", type=int, default=5,
                            help="simulated minutes per ingest step (5: as the readings arrived)")
        parser.add_argument("--history-days", type=float, default=None,
                            help="readings before the storm stored without rules, for the soil state and the "
                                 "effective rainfall (default SENSING_API_DAYS; --stored only)")
        parser.add_argument("--with-users", action="store_true",
                            help="copy the accounts too, so the same logins open the scenario")
        # Internal: the child process bound to the scenario database.
        parser.add_argument("--child", choices=["load", "feed"], help="(internal)")
        parser.add_argument("--workdir", type=Path, help="(internal)")
        parser.add_argument("--start", help="(internal)")

    def handle(self, *args, csv, stored, into, batch_minutes, history_days, with_users, child, workdir, start,
               **opts):
        if child == "load":
            return self._load(workdir)
        if child == "feed":
            return self._feed(workdir, parse_time("start", start), batch_minutes)
        if not into:
            raise CommandError("--into: the scenario database URL is required")
        if replay.same_database(into):
            raise CommandError("--into names the live database: replay into a separate scenario database")
        if batch_minutes < 1:
            raise CommandError("--batch-minutes must be at least 1")
        from tianmu.sensing.conf import conf

        work = replay.workdir()
        try:
            if csv:
                if not csv.is_file():
                    raise CommandError(f"{csv}: no such file")
                try:
                    rows = replay.read_csv(csv)
                except replay.SeriesError as exc:
                    for line, column, message in exc.errors:
                        self.stderr.write(f"{csv}:{line}: {column}: {message}")
                    raise CommandError(f"{len(exc.errors)} bad rows (at most {replay.MAX_ERRORS} listed): "
                                       "nothing replayed") from None
                if not rows:
                    raise CommandError(f"{csv}: no readings")
                first = min(ts for _c, ts, _v in rows)
                history = []
            elif stored:
                first, last = (parse_time("start", stored[0]), parse_time("end", stored[1]))
                if first is None or last is None or last <= first:
                    raise CommandError("--stored START END: END must be after START")
                days = conf("SENSING_API_DAYS") if history_days is None else history_days
                rows = replay.stored_series(first, last)
                history = replay.stored_series(first - timedelta(days=days), first)
                if not rows:
                    raise CommandError("no readings stored in that period")
            else:
                raise CommandError("give --csv FILE or --stored START END")
            replay.write_series(rows, work / "storm.jsonl")
            replay.write_series(history, work / "history.jsonl")
            self.stdout.write(f"回放 replay: {len(rows):,} readings from {replay.local(first)}, "
                              f"{len(history):,} of history before it → scenario database")
            replay.prepare_scenario(into, with_users=with_users, workdir=work)
            replay._child(into, "migrate", "--no-input", "-v", "0")
            replay._child(into, "replay", "--child", "load", "--workdir", str(work))
            replay._child(into, "replay", "--child", "feed", "--workdir", str(work), "--start", first.isoformat(),
                          "--batch-minutes", str(batch_minutes))
        except subprocess.CalledProcessError as exc:
            raise CommandError(f"the scenario step `{' '.join(exc.cmd[3:6])}` failed (its message is above); "
                               "nothing more was replayed") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.stdout.write(f"done. Study it with: TIANMU_DATABASE_URL={into} tianmu runserver"
                          + ("" if with_users else "  (no accounts copied: `tianmu createsuperuser` there, or "
                                                   "--with-users)"))

    def _load(self, work: Path) -> None:
        """In the scenario database: refuse one that already holds readings, then load the registry copy."""
        from tianmu.sensing.models import Reading, Threshold

        if Reading.objects.exists():
            raise CommandError("the scenario database already holds readings: use a new (empty) database")
        Threshold.objects.all().delete()  # the migration's defaults; the live ones (edited) come with the copy
        call_command("loaddata", str(work / "registry.json"), verbosity=0)

    def _feed(self, work: Path, start, batch_minutes: int) -> None:
        rows = replay.read_series(work / "storm.jsonl")
        history = replay.read_series(work / "history.jsonl")
        began = time.monotonic()

        def report(at, p):
            levels = " ".join(f"{k} {p.alarms.get(k, 0)}" for k in ("red", "orange", "yellow", "blue"))
            rate = p.readings / max(time.monotonic() - began, 1e-9)
            self.stdout.write(f"  {replay.local(at)}  {p.readings:,}/{len(rows):,} readings ({rate:,.0f}/s), "
                              f"{p.dead:,} refused · active alarms: {levels}")
            self.stdout.flush()

        p = replay.feed(rows, start=start, batch=timedelta(minutes=batch_minutes), history=history, report=report)
        self.stdout.write(f"replayed {p.readings:,} readings ({p.stored:,} stored, {p.dead:,} refused) in "
                          f"{time.monotonic() - began:.0f} s")
