"""`tianmu import_basins FILE.geojson --user NAME [--apply]`: river basins from a GeoJSON FeatureCollection
through the same service as the page (services/basins.py): a dry run lists every bad feature; with --apply every
feature is written, or none. Exit status 1 when any feature is refused."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tianmu.core.errors import ScopeError
from tianmu.core.models import User

from ...services.basins import import_basins


class Command(BaseCommand):
    help = ("Import river basins (流域) from a GeoJSON FeatureCollection (Polygon/MultiPolygon, WGS84; properties "
            "code, name, name_en, river, system, parent, region). A dry run unless --apply; nothing is written "
            "unless every feature passes.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--user", required=True,
                            help="the account the import acts as (its role and region decide what it may write; "
                                 "recorded in the history)")
        parser.add_argument("--apply", action="store_true", help="write (default: only check)")

    def handle(self, *args, file: Path, user: str, apply: bool, **options):
        actor = User.objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise CommandError(f"no active user {user!r}")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        try:
            report = import_basins(actor, data, dry_run=not apply)
        except ScopeError as exc:
            raise CommandError(str(exc)) from exc
        for e in report.errors:
            where = f"feature {e['row']}" if e["row"] else "file"
            self.stderr.write(f"{where} {e['code'] or ''} {e['field'] or ''}: {e['message']} ({e['message_en']})")
        if report.truncated:
            self.stderr.write(f"… {report.error_count - len(report.errors)} more")
        if not report.ok:
            raise CommandError(f"{report.error_count} problem(s); nothing written")
        verb = "written" if apply else "would be written (dry run; --apply to write)"
        self.stdout.write(f"{report.rows} features: {report.created} new, {report.updated} changed, "
                          f"{report.unchanged} unchanged — {verb}")
