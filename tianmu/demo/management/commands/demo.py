"""`tianmu demo`: migrate, build the Lin'an demo district if it isn't there (every app's demo steps), print a
login per role, serve (with the apps' demo workers, e.g. the demo network's quiet-weather feed)."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tianmu.demo import dataset


class Command(BaseCommand):
    help = "Create the Lin'an demo dataset (once) and serve the platform at http://127.0.0.1:8000"

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="build the data, print logins, and exit")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--seed", type=int, default=330112)

    def handle(self, *args, no_serve, host, port, seed, **opts):
        call_command("migrate", interactive=False, verbosity=0)
        if dataset.is_built():
            self.stdout.write("演示数据已存在 (demo data already present); `make demo-reset` rebuilds it.")
            summary = None
        else:
            self.stdout.write("正在生成临安区演示数据 (building the Lin'an demo dataset)…")
            summary = dataset.build(seed)
            for message in dataset.replay(seed):  # e.g. the typhoon's last hours up to now: alarms to look at
                self.stdout.write(message)
        self._print_logins(summary, host, port)
        if not no_serve:
            # The apps' demo workers run too (TianmuApp.demo_workers): e.g. the demo network reports quiet weather
            # from now on, without which every demo sensor would raise a no-data alarm after three intervals.
            call_command("run", host=host, port=port, demo_feed=True)

    def _print_logins(self, summary, host, port):
        out = self.stdout
        if summary:
            counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
            out.write(f"区划: 18 镇街, {summary['regions']['villages']} 村社; 基础数据: {counts}")
        out.write("")
        out.write(self.style.SUCCESS(f"登录 (password for all: {dataset.DEMO_PASSWORD})  http://{host}:{port}/"))
        for username, _role, _where, _last, _first, note in dataset.DEMO_USERS:
            out.write(f"  {username:<12} {note}")
        if summary and summary["token"]:
            out.write(f"  API token for water-dept (shown once): {summary['token']}")
        out.write(f"  API docs: http://{host}:{port}/api/docs   database: {settings.DATABASES['default']['NAME']}")
