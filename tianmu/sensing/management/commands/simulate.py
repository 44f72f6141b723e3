"""`tianmu simulate typhoon`: a simulated typhoon rain event over the registered sensors (logic in
tianmu/sensing/demo/simulate.py; see docs/sensing.md)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tianmu.sensing.demo import simulate
from tianmu.sensing.models import SensorLatest

WORKER_CHECK_S = 15


class Command(BaseCommand):
    help = ("Simulate a typhoon rain event over the registered sensors: publish to the MQTT broker (the ingest "
            "worker stores it) or write directly through the ingest service. Deterministic with --seed.")

    def add_arguments(self, parser):
        parser.add_argument("scenario", choices=["typhoon"])
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--mqtt", action="store_true", help="publish to settings.MQTT_URL (needs `tianmu run` "
                                                              "or `tianmu ingest`)")
        mode.add_argument("--direct", action="store_true", help="write straight into the store (default when no "
                                                                "broker is reachable)")
        parser.add_argument("--speed", type=float, default=60.0,
                            help="simulated seconds per real second (60: a simulated minute per second); "
                                 "0 = as fast as possible. Never runs ahead of the clock")
        parser.add_argument("--duration-minutes", type=int, default=360, help="length of the storm (default 360)")
        parser.add_argument("--seed", type=int, default=330112)
        parser.add_argument("--batch-minutes", type=int, default=30,
                            help="when several steps are due at once, send up to this many simulated minutes "
                                 "together")
        parser.add_argument("--url", help="broker URL, default settings.MQTT_URL")

    def handle(self, *args, scenario, mqtt, direct, speed, duration_minutes, seed, batch_minutes, url, **opts):
        if speed < 0 or (0 < speed < 1):
            raise CommandError("--speed must be 0 (as fast as possible) or at least 1")
        if duration_minutes < 5:
            raise CommandError("--duration-minutes must be at least 5")
        url = url or settings.MQTT_URL
        if mqtt and not simulate.broker_reachable(url):
            raise CommandError(f"MQTT broker not reachable at {url}; start it, or use --direct")
        use_mqtt = mqtt or (not direct and simulate.broker_reachable(url))
        sensors = simulate.load_sensors()
        if not sensors:
            raise CommandError("no active sensors to simulate: build the demo (`tianmu demo`) or register some")
        sink = simulate.MqttSink(url) if use_mqtt else simulate.DirectSink()
        duration = timedelta(minutes=duration_minutes)
        newest = max((s.newest for s in sensors if s.newest is not None), default=None)
        start = simulate.timeline_start(timezone.now(), duration, speed or None, newest)
        end = start + duration
        local = timezone.localtime
        self.stdout.write(
            f"台风模拟 typhoon: {len(sensors)} sensors, simulated {local(start):%m-%d %H:%M} → {local(end):%H:%M}, "
            f"speed {speed or 'max'}×, seed {seed}, "
            + (f"MQTT {sink.address['host']}:{sink.address['port']} (QoS 1)" if use_mqtt else "direct (ingest service)"))
        lag = (end - timezone.now()).total_seconds()
        if speed and lag > duration.total_seconds() / speed * 1.2 + 5:
            self.stdout.write(self.style.WARNING(
                f"  sensors already report up to {local(newest):%H:%M}: the storm cannot run ahead of the clock, "
                f"so this run takes about {lag / 60:.0f} min"))
        if use_mqtt:
            self.stdout.write("  the ingest worker must be running (`tianmu run` or `tianmu ingest`) against this "
                              "database")
        state = {"checked": False, "first": None}

        def progress(report, at):
            self.stdout.write(f"  {local(at):%H:%M}  {report.steps}/{int(duration / simulate.STEP)} steps, "
                              f"{report.readings} readings"
                              + (f", {report.alarm_changes} alarm changes" if not use_mqtt else "")
                              + f"  ({report.seconds:.0f} s)")
            if use_mqtt:
                self._check_worker(state, sensors, report, at)

        try:
            report = simulate.run_typhoon(sink=sink, duration=duration, speed=speed or None, seed=seed,
                                          batch_minutes=batch_minutes, sensors=sensors, progress=progress)
        except KeyboardInterrupt:
            self.stdout.write("interrupted")
            return
        finally:
            sink.close()
        levels = simulate.active_alarm_levels([s.pk for s in sensors])
        summary = " / ".join(f"{name} {levels.get(key, 0)}" for key, name in
                             (("red", "红"), ("orange", "橙"), ("yellow", "黄"), ("blue", "蓝")))
        if use_mqtt:
            self.stdout.write(f"done: {report.published} messages acknowledged by the broker in {report.seconds:.0f} s; "
                              f"active alarms now: {summary}")
        else:
            self.stdout.write(f"done: {report.stored} readings stored ({report.duplicates} duplicates, "
                              f"{report.dead_letters} dead letters), {report.alarm_changes} alarm changes in "
                              f"{report.seconds:.0f} s; active alarms: {summary}")

    def _check_worker(self, state, sensors, report, at):
        """Warn once if nothing published seems to reach the database (no ingest worker running)."""
        if state["checked"]:
            return
        if state["first"] is None:
            state["first"] = (report.seconds, at)
            return
        if report.seconds - state["first"][0] < WORKER_CHECK_S:
            return
        state["checked"] = True
        if not SensorLatest.objects.filter(pk__in=[s.pk for s in sensors], ts__gte=state["first"][1]).exists():
            self.stderr.write(self.style.WARNING(
                "  nothing published has reached the database yet: is `tianmu run` (or `tianmu ingest`) running "
                "with the same settings?"))
