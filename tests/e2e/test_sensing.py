"""Real-browser tests of the monitoring pages: an alarm opened while the alarm list and the map are open shows
up on both without reloading (server-sent events), and a sensor's chart draws its readings and thresholds."""

from __future__ import annotations

import pytest

from .helpers import api, shot

pytestmark = pytest.mark.browser

# A cloudburst posted through the gateway API with the page's own session (CSRF header from the cookie).
CLOUDBURST_JS = """async (code) => {
  const token = (document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')) || '=').split('=')[1];
  const now = Date.now(), readings = [];
  for (let i = 11; i >= 0; i--) {
    readings.push({sensor: code, ts: new Date(now - i * 5 * 60000 - 7000).toISOString(), value: 9.5});
  }
  const r = await fetch('/api/v1/sensing/readings', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}, body: JSON.stringify({readings})});
  return [r.status, await r.json()];
}"""


# One reading far beyond a rain gauge's range, through the same gateway API: refused, and a device-fault alarm opens.
OUT_OF_RANGE_JS = """async (code) => {
  const token = (document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')) || '=').split('=')[1];
  const readings = [{sensor: code, ts: new Date(Date.now() - 3000).toISOString(), value: 999}];
  const r = await fetch('/api/v1/sensing/readings', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}, body: JSON.stringify({readings})});
  return [r.status, await r.json()];
}"""


def sensor_rows(page):
    data = api(page, "/api/v1/map/sensors")
    return [dict(zip(data["fields"], row, strict=True)) for row in data["features"]]


def test_alarm_opened_elsewhere_appears_live_on_list_and_map(login):
    page = login("duty")
    # A rain gauge in 锦城街道 (east) that the demo storm left without any alarm.
    quiet = next(r for r in sensor_rows(page) if r["code"].startswith("RG001") and not r["alarm_level"])
    assert api(page, f"/api/v1/sensing/alarms?sensor={quiet['code']}&status=active")["count"] == 0

    map_page = page.context.new_page()
    map_errors = []
    map_page.on("pageerror", lambda exc: map_errors.append(str(exc)))
    map_page.goto("/")
    map_page.wait_for_selector('body[data-sensing-ready="1"]', state="attached", timeout=30_000)
    loads = int(map_page.evaluate("() => document.body.dataset.sensingLoads"))
    assert map_page.locator("#alarm-list button").count() > 0  # the demo storm's alarms

    page.goto("/sensing/alarms/?sort=time")
    page.wait_for_selector('body[data-alarms-live="1"]', state="attached", timeout=15_000)
    page.evaluate("() => { window.tmNotReloaded = true; }")
    assert quiet["code"] not in page.locator("#alarms").inner_text()

    status, result = page.evaluate(CLOUDBURST_JS, quiet["code"])
    assert status == 200 and result["stored"] == 12 and not result["errors"], result

    page.wait_for_function("() => Number(document.body.dataset.alarmsRefreshed || 0) >= 1", timeout=20_000)
    page.wait_for_function("(code) => document.querySelector('#alarms').innerText.includes(code)", arg=quiet["code"],
                           timeout=20_000)
    assert page.evaluate("() => window.tmNotReloaded === true"), "the list must update without a reload"
    row = page.locator("#alarms tbody tr", has_text=quiet["code"]).first
    assert "红色" in row.inner_text()
    shot(page, "alarms-live")

    map_page.wait_for_function("(n) => Number(document.body.dataset.sensingLoads) > n", arg=loads, timeout=20_000)
    level = map_page.evaluate("""(code) => {
      const row = window.tianmuSensing.state.sensors.find((r) => r[4] === code);
      return row && row[9];
    }""", quiet["code"])
    assert level == "red"
    assert not page.tm_errors and not map_errors, (page.tm_errors, map_errors)


def test_sensor_chart_draws_readings_and_thresholds(login):
    page = login("longgang")
    rows = sensor_rows(page)
    assert rows and all(r["code"][2:5] == "016" for r in rows), "town staff see only 龙岗镇's sensors"
    river = next(r for r in rows if r["code"].startswith("WL"))
    page.goto(f"/sensing/sensors/{river['id']}/")
    page.wait_for_selector('body[data-chart-ready="1"]', state="attached", timeout=15_000)
    assert int(page.locator("#sensor-chart").get_attribute("data-points")) > 50
    option = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('sensor-chart')).getOption()")
    lines = option["series"][0]["markLine"]["data"]
    config = page.evaluate("() => JSON.parse(document.getElementById('sensor-config').textContent)")
    assert [line["yAxis"] for line in lines] == [t["value"] for t in config["thresholds"]["levels"]]
    assert [t["level"] for t in config["thresholds"]["levels"]] == ["yellow", "red"]  # 警戒 and 保证 water levels
    page.locator(".chart-bar button[data-res=hourly]").click()
    page.wait_for_function("() => document.querySelector('.chart-bar button[data-res=hourly]').classList.contains('on')")
    shot(page, "sensor-chart", full_page=True)
    assert not page.tm_errors, page.tm_errors

    # A slope's 30-day raw view asks for 30 days + the 26 h its 24-hour movement looks back: more than the API's
    # 31 days of raw readings, so the chart switches to hourly rather than failing; 1 year switches to daily.
    slope = next(r for r in sensor_rows(login("duty")) if r["code"].startswith("DP"))
    page = login("duty")
    refused = []
    page.on("response", lambda r: refused.append(r.url) if "/readings" in r.url and r.status >= 400 else None)
    page.goto(f"/sensing/sensors/{slope['id']}/")
    page.wait_for_selector('body[data-chart-ready="1"]', state="attached", timeout=15_000)
    for hours, res in (("720", "hourly"), ("8784", "daily")):
        page.locator(f".chart-bar button[data-hours='{hours}']").click()
        page.wait_for_function("(res) => document.querySelector(`.chart-bar button[data-res=${res}]`)"
                               ".classList.contains('on')", arg=res)
        page.wait_for_function("() => document.getElementById('chart-status').textContent === ''")
    assert int(page.locator("#sensor-chart").get_attribute("data-points")) >= 2  # the demo's days so far
    assert not refused and not page.tm_errors, (refused, page.tm_errors)


def test_alarms_by_station_group_and_update_live(login):
    """The 按站点 view: one row per station, most severe first, counts as the API gives them; a cloudburst on a
    quiet gauge puts its station at the top (red and newest) without reloading the page; 确认全部 acknowledges
    its alarms in place, after refusing once because a new alarm opened while the form was open."""
    page = login("duty")
    quiet = [r for r in sensor_rows(page) if r["code"].startswith("RG001") and not r["alarm_level"]][-1]
    page.goto("/sensing/alarms/?view=station")
    page.wait_for_selector('body[data-alarms-live="1"]', state="attached", timeout=15_000)
    page.evaluate("() => { window.tmNotReloaded = true; }")
    grouped = api(page, "/api/v1/sensing/alarms/by-station?page_size=50")
    rows = page.locator("#alarm-stations tbody tr")
    assert rows.count() == len(grouped["results"]) == 50 and grouped["count"] > 200
    codes = [rows.nth(i).get_attribute("data-station") for i in range(rows.count())]
    assert codes == [g["station"] or g["sensor"] for g in grouped["results"]]
    first = rows.first.locator("td")
    assert first.nth(0).inner_text().strip() == "红色" and first.nth(3).inner_text().strip() == str(
        grouped["results"][0]["alarms"])
    assert quiet["code"] not in " ".join(codes)

    status, result = page.evaluate(CLOUDBURST_JS, quiet["code"])
    assert status == 200 and result["stored"] == 12 and not result["errors"], result
    station = api(page, f"/api/v1/sensing/alarms?sensor={quiet['code']}&status=active")["results"][0]["station"]
    page.wait_for_function("(code) => document.querySelector('#alarm-stations tbody tr').dataset.station === code",
                           arg=station, timeout=20_000)
    assert page.evaluate("() => window.tmNotReloaded === true"), "the grouped list must update without a reload"
    top = rows.first
    # 114 mm in an hour: the rainstorm rule's red (3 h ≥ 100 mm); flash flood only if the gauge represents a danger
    # zone, which a quiet gauge in 锦城 need not.
    assert "红色" in top.inner_text() and "暴雨" in top.inner_text()
    shot(page, "alarms-by-station")

    # 确认全部: the form lists the station's open alarms; acknowledging them empties its 未确认 count in place.
    row = page.locator(f'#alarm-stations tbody tr[data-station="{station}"]')
    unacknowledged = row.locator("td").nth(4)
    n = int(unacknowledged.inner_text())
    assert n >= 2 and row.locator("details.ack-station > summary").inner_text().split() == ["确认全部", str(n)]
    row.locator("details.ack-station > summary").click()
    form = row.locator("form[data-ack-api]")
    assert form.locator("ul.acklist li").count() == n and form.locator("ul.acklist .level-red").count() >= 1
    form.locator("input[name=note]").fill("已通知锦城街道转移低洼户")
    shot(page, "alarms-by-station-acknowledge")
    # Meanwhile the gauge reports far beyond its range: a new alarm on the station, which the form does not list.
    # The live update waits behind the open form; the submission is refused, and the form comes back over the
    # fresh list with the note kept and the reason.
    status, result = page.evaluate(OUT_OF_RANGE_JS, quiet["code"])
    assert status == 200 and result["errors"][0]["code"] == "out_of_range", result
    page.wait_for_selector("#alarm-pending:not([hidden])", timeout=20_000)
    form.locator("button").click()
    page.wait_for_function("""([code, n]) => {
      const form = document.querySelector(`#alarm-stations tr[data-station="${code}"] details[open] form`);
      return form && form.querySelectorAll('ul.acklist li').length === n + 1
        && !form.querySelector('.errorlist').hidden;
    }""", arg=[station, n], timeout=20_000)
    assert "请核对后再确认" in form.locator(".errorlist").inner_text()
    assert form.locator("input[name=note]").input_value() == "已通知锦城街道转移低洼户"
    assert int(unacknowledged.inner_text()) == n + 1
    shot(page, "alarms-by-station-acknowledge-stale")
    form.locator("button").click()
    page.wait_for_function("(code) => document.querySelector(`#alarm-stations tr[data-station=\"${code}\"] td:nth-child(5)`)"
                           ".innerText.trim() === '0'", arg=station, timeout=20_000)
    assert row.locator("details.ack-station").count() == 0
    assert str(n + 1) in page.locator("#alarm-done").inner_text()
    assert page.evaluate("() => window.tmNotReloaded === true"), "acknowledging must not reload the page"
    acknowledged = api(page, f"/api/v1/sensing/alarms?station={station}&status=active")["results"]
    assert len(acknowledged) == n + 1 and {(a["status"], a["acknowledged_note"]) for a in acknowledged} == {
        ("acknowledged", "已通知锦城街道转移低洼户")}
    shot(page, "alarms-by-station-acknowledged")
    # Its link opens the per-alarm list of that station.
    with page.expect_navigation():
        top.locator("a.btn").click()
    assert f"station={station}" in page.url and quiet["code"] in page.locator("#alarms").inner_text()
    assert not page.tm_errors, page.tm_errors


def test_rainfall_layer_paints_the_surface_gauges_and_legend(login):
    """The 雨量分布 layer: switched on, it paints the IDW surface as an image over the district and draws every
    gauge graduated by its 24 h total, with the GB/T 28592 legend; changing the window reloads it."""
    page = login("duty")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")
    page.wait_for_selector('body[data-sensing-ready="1"]', state="attached", timeout=30_000)
    page.locator("input[data-rain=surface]").check()
    page.locator("input[data-rain=gauges]").check()
    page.wait_for_selector('body[data-rain-ready="1"]', state="attached", timeout=30_000)
    data = page.evaluate("() => window.tianmuRain.state.data")
    assert data["window"] == 24 and len(data["gauges"]) > 100
    assert any(ch.isdigit() for ch in data["grid"]["cells"])  # the demo storm's rain
    assert page.locator("img.cmap-rain-surface").count() == 1
    assert page.locator("#rain-legend span").count() == 6 and "暴雨" in page.locator("#rain-legend").inner_text()
    assert page.evaluate("() => window.tianmuRain.gauges.getLayers().length") == len(data["gauges"])
    page.select_option("#rain-window", "1")
    page.wait_for_selector('body[data-rain-ready="2"]', state="attached", timeout=30_000)
    assert page.evaluate("() => window.tianmuRain.state.data.window") == 1
    shot(page, "rainfall-layer")
    assert not errors, errors
