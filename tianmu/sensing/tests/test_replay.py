"""`tianmu replay`: a past storm replayed into a separate scenario database through the real ingest path."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tianmu.core.models import Event
from tianmu.sensing import replay
from tianmu.sensing.models import Alarm, Reading

M = timedelta(minutes=1)


def write_csv(path, rows, header="sensor,ts,value"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n", encoding="utf-8")
    return path


def test_csv_every_bad_row_is_listed(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [("RG-A", "2019-08-10T01:00:00+08:00", "3.5"), ("", "yesterday", "x"),
                                            ("RG-A", "2019-08-10T01:05:00+08:00", "nan")])
    with pytest.raises(replay.SeriesError) as exc:
        replay.read_csv(path)
    assert [(line, col) for line, col, _m in exc.value.errors] == [(3, "sensor"), (3, "ts"), (3, "value"), (4, "value")]
    chinese = write_csv(tmp_path / "zh.csv", [("RG-A", "2019-08-10 01:00", "3.5")], header="传感器编码,时间,数值")
    assert replay.read_csv(chinese)[0][0] == "RG-A"


def test_feed_replays_a_storm_step_by_step_at_its_own_time(world, net, t0):
    """The 2019-style storm fed in 5-minute steps through ingest_messages: alarms open at the data's time."""
    storm = t0 - timedelta(days=400)
    rows = [("RG-A", storm + k * 5 * M, 7.0) for k in range(1, 13)] + [("NOPE", storm + 5 * M, 1.0)]
    seen = []
    p = replay.feed(rows, start=storm, batch=timedelta(minutes=5), report=lambda at, pr: seen.append(pr.readings),
                    every=4)
    assert p.readings == 13 and p.stored == 12 and p.dead == 1 and p.steps == 12 and seen == [5, 9, 13]
    alarm = Alarm.objects.get(sensor=net["rain_a"], rule="flash_flood")
    # Orange at 35 mm (5th reading), red at 42 mm (6th): at the data's times, not the wall clock.
    assert alarm.level == "red" and alarm.opened_at == storm + 25 * M and alarm.last_level_change == storm + 30 * M


def test_replay_command_into_a_scenario_database(world, net, t0, tmp_path, capsys):
    """End to end: the live (test) database keeps no replayed reading or alarm; the scenario database has the
    registry, the readings and the alarms."""
    storm = t0 - timedelta(days=400)
    path = write_csv(tmp_path / "storm.csv", [("RG-A", (storm + k * 5 * M).isoformat(), 7.0) for k in range(1, 13)])
    scenario = tmp_path / "scenario.sqlite3"
    call_command("replay", "--csv", str(path), "--into", f"sqlite:///{scenario}")
    assert not Reading.objects.filter(ts__lt=t0 - timedelta(days=300)).exists()
    assert not Alarm.objects.exists()
    db = sqlite3.connect(scenario)
    assert db.execute("SELECT count(*) FROM sensing_reading").fetchone() == (12,)
    assert db.execute("SELECT count(*) FROM sensing_sensor").fetchone() == (3,)
    rules = {r for (r,) in db.execute("SELECT rule FROM sensing_alarm WHERE level = 'red'")}
    assert "flash_flood" in rules
    out = capsys.readouterr().out
    assert "12 readings" in out and "done" in out
    with pytest.raises(CommandError, match="scenario step"):  # the child said: already holds readings
        call_command("replay", "--csv", str(path), "--into", f"sqlite:///{scenario}")


def test_replay_refuses_the_live_database_and_bad_input(world, tmp_path, monkeypatch):
    live = {"ENGINE": "django.db.backends.postgresql", "NAME": "tianmu", "HOST": "db.example", "PORT": 5432}
    monkeypatch.setattr(replay, "settings", SimpleNamespace(DATABASES={"default": live}))
    with pytest.raises(CommandError, match="live database"):
        call_command("replay", "--csv", str(tmp_path / "x.csv"), "--into", "postgresql://u@db.example:5432/tianmu")
    assert not replay.same_database("postgresql://u@db.example:5432/tianmu_scenario")
    monkeypatch.undo()
    with pytest.raises(CommandError, match="no such file"):
        call_command("replay", "--csv", str(tmp_path / "x.csv"), "--into", f"sqlite:///{tmp_path}/s.sqlite3")
    bad = write_csv(tmp_path / "bad.csv", [("RG-A", "soon", "1")])
    with pytest.raises(CommandError, match="bad rows"):
        call_command("replay", "--csv", str(bad), "--into", f"sqlite:///{tmp_path}/s.sqlite3")


def test_a_stored_storm_between_its_own_times_replays_to_the_same_alarms(world, net, t0):
    """`--stored START END` with the storm's own first and last times, as `tianmu demo` prints them ("20:00–02:00"),
    takes exactly the storm's readings, (START, END] like every window here, and the history up to START. Fed
    to a twin gauge through the replay's path, they give the same alarms, level by level. (With [START, END) the
    last reading was left out: here the one that makes the flash flood red, in the demo 3 of 224 red alarms.)"""
    a, b = net["rain_a"], net["rain_b"]
    start = t0 - timedelta(days=3)
    storm = [(start + k * 5 * M, 3.5) for k in range(1, 12)] + [(start + 60 * M, 5.0)]  # 38.5 mm, then 43.5 in 1 h
    replay.feed([("RG-A", ts, v) for ts, v in [(start - 60 * M, 0.0), (start, 0.0), *storm]],
                start=start - 60 * M, batch=timedelta(minutes=5))  # the live storm, as ingest received it
    rows = replay.stored_series(start, start + 60 * M)
    history = replay.stored_series(start - timedelta(days=15), start)
    assert [(ts, v) for _c, ts, v in rows] == storm
    assert [(ts, v) for _c, ts, v in history] == [(start - 60 * M, 0.0), (start, 0.0)]

    replay.feed([("RG-B", ts, v) for _c, ts, v in rows], start=start, batch=timedelta(minutes=5),
                history=[("RG-B", ts, v) for _c, ts, v in history])

    def story(sensor):
        alarms = Alarm.objects.filter(sensor=sensor).order_by("rule")
        return [(x.rule, x.level, x.peak_level, x.observed_at, x.value,
                 [(e.type, e.payload["level"]) for e in Event.objects.filter(subject=x.subject()).order_by("id")])
                for x in alarms]

    assert story(a) == story(b)
    assert ("flash_flood", "red") in [(rule, level) for rule, level, *_rest in story(b)]
