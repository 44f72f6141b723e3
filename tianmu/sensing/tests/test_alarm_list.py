"""The alarm list for a night of many alarms: several levels and towns at once (kept by paging, chips and the
export link), Excel export of exactly the filtered rows with text cells that are never formulas, a print sheet."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from openpyxl import load_workbook

from tianmu.conftest import OUTSIDE_MARK
from tianmu.sensing.models import Alarm
from tianmu.sensing.queries import AlarmFilter, alarms

from .test_rules import send

pytestmark = pytest.mark.django_db
M = timedelta(minutes=1)


@pytest.fixture
def night(net, t0):
    """Alarms in both towns and at several levels: orange and red flash floods, a red river level."""
    send(net["rain_a"], *[(t0 + i * 5 * M, 3.0) for i in range(12)])  # orange in town A
    send(net["rain_b"], *[(t0 + i * 5 * M, 6.0) for i in range(12)])  # red in town B
    send(net["level_a"], (t0, 2.0), (t0 + 30 * M, 4.2))  # red in town A
    return {a.sensor.code: a for a in Alarm.objects.select_related("sensor")}


def export(client, user, query=""):
    client.force_login(user)
    res = client.get("/sensing/alarms/export.xlsx" + query)
    assert res.status_code == 200, res.content[:300]
    assert res["Content-Type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(res.content)).active
    rows = list(ws.iter_rows(values_only=True))
    return rows[0], rows[1:]


def test_several_levels_and_towns_at_once(client, world, night):
    assert night["RG-A"].level == "orange" and night["RG-B"].level == "red" and night["WL-A"].level == "red"
    commander = world["users"]["commander"]
    client.force_login(commander)
    both = client.get("/sensing/alarms/", {"level": ["red", "orange"]}).content.decode()
    assert "RG-A" in both and "RG-B" in both and "WL-A" in both
    red = client.get("/sensing/alarms/?level=red").content.decode()
    assert "RG-A" not in red and "RG-B" in red
    commas = client.get("/sensing/alarms/?level=orange,red&town=" + world["town_a"].code).content.decode()
    assert "RG-A" in commas and "WL-A" in commas and "RG-B" not in commas
    towns = client.get("/sensing/alarms/", {"town": [world["town_a"].code, world["town_b"].code],
                                            "level": "red"}).content.decode()
    assert "WL-A" in towns and "RG-B" in towns and "RG-A" not in towns
    # The pickers show what is chosen; the chips and the export link keep both values.
    assert re.search(r'name="level" value="red" checked', both) and re.search(r'name="level" value="orange" checked', both)
    link = unescape(re.search(r'id="alarm-export" href="([^"]+)"', both).group(1))
    assert "level=red" in link and "level=orange" in link
    # The query API accepts the same comma lists.
    assert set(alarms(commander, AlarmFilter(level="red,orange")).values_list("sensor__code", flat=True)) == set(night)
    bad = client.get("/sensing/alarms/", {"level": ["red", "purple"]})
    assert bad.status_code == 400 and "errorlist" in bad.content.decode()


def test_paging_keeps_every_chosen_value(client, world, night, monkeypatch):
    monkeypatch.setattr("tianmu.sensing.views.PAGE_SIZE", 1)
    client.force_login(world["users"]["commander"])
    html = client.get("/sensing/alarms/", {"level": ["red", "orange"], "town": [world["town_a"].code]}).content.decode()
    nxt = unescape(re.search(r'<a href="\?([^"]*page=2)"', html).group(1))
    assert "level=red" in nxt and "level=orange" in nxt and f"town={world['town_a'].code}" in nxt
    page2 = client.get("/sensing/alarms/?" + nxt).content.decode()
    page1_codes = {c for c in ("RG-A", "WL-A") if c in html.split('id="alarms"')[1]}
    page2_codes = {c for c in ("RG-A", "WL-A") if c in page2.split('id="alarms"')[1]}
    assert len(page1_codes) == 1 and len(page2_codes) == 1 and page1_codes != page2_codes
    assert "RG-B" not in page2


def test_export_is_exactly_the_filtered_rows(client, world, night):
    commander = world["users"]["commander"]
    head, rows = export(client, commander, "?level=red&level=orange&status=all")
    assert head[0] == "编号" and "告警时间(北京时间)" in head
    everything = Alarm.objects.filter(level__in=["red", "orange"])
    assert everything.count() >= 3
    assert sorted(r[0] for r in rows) == sorted(everything.values_list("pk", flat=True))
    head, rows = export(client, commander, "?level=red&status=all")
    assert sorted(r[0] for r in rows) == sorted(Alarm.objects.filter(level="red").values_list("pk", flat=True))
    _head, rows = export(client, commander, f"?town={world['town_a'].code}&level=orange&status=all")
    assert [r[0] for r in rows] == list(Alarm.objects.filter(level="orange", region__code__startswith=world["town_a"].code)
                                        .values_list("pk", flat=True)) and night["RG-A"].pk in [r[0] for r in rows]
    # Town staff export their own town only, whatever they ask for.
    _head, rows = export(client, world["users"]["town_staff"], f"?town={world['town_b'].code}")
    assert rows == []
    _head, rows = export(client, world["users"]["town_staff"])
    assert {r[7] for r in rows} == {"RG-A", "WL-A"} and OUTSIDE_MARK not in str(rows)
    # A bad filter is a 422 with the field, never a file of everything.
    client.force_login(commander)
    bad = client.get("/sensing/alarms/export.xlsx?level=purple")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "level"


def test_export_cells_are_never_formulas(client, world, night):
    alarm = night["RG-A"]
    Alarm.objects.filter(pk=alarm.pk).update(acknowledged_note="=HYPERLINK(\"http://x\")", closed_note="+1+2")
    _head, rows = export(client, world["users"]["commander"], "?status=all")
    row = next(r for r in rows if r[0] == alarm.pk)
    assert row[19] == "'=HYPERLINK(\"http://x\")" and row[22] == "'+1+2"
    opened = row[13]
    assert opened.strftime("%H:%M") == (alarm.opened_at + timedelta(hours=8)).strftime("%H:%M")  # Beijing time


def test_alarm_list_prints(client, world, night):
    client.force_login(world["users"]["commander"])
    html = client.get("/sensing/alarms/").content.decode()
    assert "data-print" in html and 'class="print-only print-head"' in html
