"""Text from data never becomes markup: records, a station, a sensor (with its unit) and their alarm carry
hostile names; every page that shows them, in a real browser, must show the text as text and have no element
from it in the DOM (the Content-Security-Policy would stop the script, not an <img>, a <svg> or a link that
says "your session expired" and points elsewhere).

The data is made through the API with the commander's session, in 锦城街道 (codes XSS-…, which no other
browser test selects)."""

from __future__ import annotations

import pytest

from .helpers import api, shot

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror=alert(1)><a href="https://evil.example">会话已过期,请重新登录</a>"><svg onload=alert(2)>'
UNIT = "<img src=x>"  # a sensor's unit is at most 16 characters
JINCHENG = "330112001"

# POST JSON with the page's session (CSRF header from the cookie); returns [status, body].
POST_JS = """async ([path, body]) => {
  const token = (document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')) || '=').split('=')[1];
  const r = await fetch(path, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}, body: JSON.stringify(body)});
  return [r.status, await r.json()];
}"""

# Elements that only hostile data could have put in the page.
INJECTED_JS = """() => {
  const found = [];
  const note = (e) => found.push(e.outerHTML.slice(0, 160));
  document.querySelectorAll('[onerror], [onload], a[href*="evil.example"]').forEach(note);
  document.querySelectorAll('img').forEach((e) => { if (e.getAttribute('src') === 'x') note(e); });
  return found;
}"""

VISIBLE = '<a href="https://evil.example">会话已过期,请重新登录</a>'


def post(page, path: str, body: dict) -> dict:
    status, result = page.evaluate(POST_JS, [path, body])
    assert status in (200, 201), (path, status, result)
    return result


def assert_text_only(page, where: str, text: str = VISIBLE, scope: str = "body") -> None:
    injected = page.evaluate(INJECTED_JS)
    assert injected == [], f"{where}: markup from data in the DOM: {injected}"
    shown = page.locator(scope).first.inner_text()
    assert text in shown, f"{where}: the hostile name is not shown as text in {scope}"


def test_hostile_names_are_shown_as_text_everywhere(login):
    page = login("duty")  # the district commander: district staff are the ones the planted link targets
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    near = api(page, f"/api/v1/stations/?region={JINCHENG}&page_size=1")["results"][0]
    lon, lat = round(near["lon"] + 0.0007, 6), round(near["lat"] + 0.0007, 6)

    shelter = post(page, "/api/v1/shelters/", {
        "code": "XSS-SH-1", "name": "XSS安置点" + HOSTILE, "lon": lon, "lat": lat, "address": HOSTILE,
        "contact": '"><svg onload=alert(3)>', "level": "village", "shelter_type": "auditorium",
        "duration": "short", "capacity": 80, "floor_area_m2": 240})
    station = post(page, "/api/v1/stations/", {
        "code": "XSS-ST-1", "name": "XSS站" + HOSTILE, "lon": lon, "lat": lat, "station_type": "rain",
        "operator": HOSTILE})
    sensor = post(page, "/api/v1/sensors/", {
        "code": "XSS-RG-1", "name": "XSS雨量计" + HOSTILE, "lon": lon, "lat": lat, "station": "XSS-ST-1",
        "sensor_type": "rainfall", "unit": UNIT, "interval_s": 300})
    assert len(shelter["name"]) <= 128 and sensor["unit"] == UNIT
    # A cloudburst on the new gauge opens an alarm, so the station shows in the alarm lists and on the map.
    readings = page.evaluate("""() => {
      const now = Date.now(), out = [];
      for (let i = 11; i >= 0; i--) {
        out.push({sensor: 'XSS-RG-1', ts: new Date(now - i * 5 * 60000 - 7000).toISOString(), value: 9.5});
      }
      return out;
    }""")
    stored = post(page, "/api/v1/sensing/readings", {"readings": readings})
    assert stored["stored"] == 12 and not stored["errors"], stored
    assert api(page, "/api/v1/sensing/alarms?sensor=XSS-RG-1&status=active")["count"] >= 1

    # Lists and details (server-rendered), with the detail page's map tooltip (detail-map.js).
    for slug, obj in (("shelters", shelter), ("stations", station), ("sensors", sensor)):
        page.goto(f"/r/{slug}/?q=XSS")
        assert_text_only(page, f"{slug} list", scope="table")
        page.goto(f"/r/{slug}/{obj['id']}/")
        tooltip = page.locator("#detail-map .leaflet-tooltip")
        tooltip.wait_for()
        assert tooltip.inner_text() == obj["name"]
        assert_text_only(page, f"{slug} detail", scope="#detail-map .leaflet-tooltip")
        assert_text_only(page, f"{slug} detail", scope="h1")
        shot(page, f"xss-{slug}-detail")

    # Monitoring pages: latest values, alarms one by one and per station, the sensor's chart.
    for path, scope in (("/sensing/?alarming=1&q=XSS-RG", "body"), ("/sensing/alarms/?sensor=XSS-RG-1", "#alarms"),
                        ("/sensing/alarms/?view=station&station=XSS-ST-1", "#alarm-stations")):
        page.goto(path)
        assert_text_only(page, path, scope=scope)
    page.goto(f"/sensing/sensors/{sensor['id']}/")
    page.wait_for_selector('body[data-chart-ready="1"]', state="attached", timeout=15_000)
    assert_text_only(page, "sensor page", scope="h1")
    # The chart's tooltip (HTML in ECharts) names the series with the sensor's unit.
    page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('sensor-chart'))
      .dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})""")
    tip = page.locator("#sensor-chart div", has_text=UNIT).last
    tip.wait_for()
    assert_text_only(page, "sensor chart tooltip", text=UNIT, scope="#sensor-chart")
    shot(page, "xss-sensor-chart")

    # The command map: search results and their popup, the alarm list and the sensor popup, the statistics.
    page.goto("/")
    page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=30_000)
    page.wait_for_selector('body[data-sensing-ready="1"]', state="attached", timeout=30_000)
    page.fill("#map-search-input", "XSS")
    page.press("#map-search-input", "Enter")
    hit = page.locator("#map-search-results button.cmap-hit", has_text="XSS安置点")
    hit.wait_for()
    assert_text_only(page, "map search results", scope="#map-search-results")
    hit.click()
    popup = page.locator(".leaflet-popup-content .cmap-popup")
    popup.wait_for()
    assert popup.locator(".cmap-popup-title").inner_text() == shelter["name"]
    assert_text_only(page, "map record popup", scope=".leaflet-popup-content")
    page.locator("#alarm-list button", has_text="XSS站").first.click()
    popup = page.locator(".leaflet-popup-content .cmap-popup", has_text="XSS雨量计")
    popup.wait_for(timeout=15_000)
    assert_text_only(page, "map sensor popup", scope=".leaflet-popup-content")
    assert_text_only(page, "map alarm list", scope="#alarm-list")
    page.wait_for_selector('#stats-panel[data-stats-ready="1"]', state="attached")
    page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('chart-town'))
      .dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})""")
    page.locator("#chart-town .cmap-chart-tip").wait_for()
    assert page.evaluate(INJECTED_JS) == []
    shot(page, "xss-command-map")

    # The live event feed: a record created while it is open arrives over the stream and is drawn as text.
    page.goto("/events/")
    page.wait_for_function("() => document.getElementById('live-status').textContent.includes('实时')")
    post(page, "/api/v1/shelters/", {
        "code": "XSS-SH-2", "name": "XSS实时" + HOSTILE, "lon": lon, "lat": lat, "level": "village",
        "shelter_type": "auditorium", "duration": "short", "capacity": 10, "floor_area_m2": 30})
    page.locator("#event-table tbody tr", has_text="XSS实时").first.wait_for(timeout=20_000)
    assert_text_only(page, "event feed", scope="#event-table")
    shot(page, "xss-event-feed")

    assert dialogs == [] and page.tm_errors == [], (dialogs, page.tm_errors)
