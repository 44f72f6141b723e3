"""Real-browser test of warnings: an orange alarm drafts a warning (through the event worker), the town's staff
submit it, a second person approves and issues it on its page, and it shows on the command map. (The 叫应 part
is added when dissemination is wired.)"""

from __future__ import annotations

import pytest

from .helpers import api, shot

pytestmark = pytest.mark.browser

# 60 mm in the last hour through the gateway API with the page's own session: an orange rainstorm signal
# (3 h ≥ 50 mm).
DOWNPOUR_JS = """async (code) => {
  const token = (document.cookie.split('; ').find((c) => c.startsWith('csrftoken=')) || '=').split('=')[1];
  const now = Date.now(), readings = [];
  for (let i = 11; i >= 0; i--) {
    readings.push({sensor: code, ts: new Date(now - i * 5 * 60000 - 7000).toISOString(), value: 5.0});
  }
  const r = await fetch('/api/v1/sensing/readings', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}, body: JSON.stringify({readings})});
  return [r.status, await r.json()];
}"""


def test_an_orange_alarm_drafts_a_warning_that_a_second_person_issues_and_the_map_shows(login, tianmu_command):
    duty = login("duty")
    data = api(duty, "/api/v1/map/sensors")
    rows = [dict(zip(data["fields"], row, strict=True)) for row in data["features"]]
    # A quiet rain gauge in 锦城街道 (the demo storm hits the west).
    gauge = next(r for r in rows if r["code"].startswith("RG001") and not r["alarm_level"])
    status, result = duty.evaluate(DOWNPOUR_JS, gauge["code"])
    assert status == 200 and not result["errors"], result
    alarms = api(duty, f"/api/v1/sensing/alarms?sensor={gauge['code']}&status=active&rule=rainstorm")["results"]
    assert alarms and alarms[0]["level"] == "orange"

    tianmu_command("handle_events", "--once")  # the event worker: the handler drafts the warning

    drafts = api(duty, "/api/v1/warnings/?origin=alarm&state=draft&hazard_type=rainstorm&level=orange")["results"]
    draft = next(w for w in drafts if any(gauge["code"] in c["text"] for c in w["citations"]))
    assert draft["issued_by"] is None and draft["created_by"] is None

    staff = login("jincheng")  # 锦城街道's staff review the system's draft and submit it
    staff.goto(draft["url"])
    assert gauge["code"] in staff.locator(".wn-citations").inner_text()
    staff.locator('button[data-transition="submit"]').click()
    staff.wait_for_selector('#wn-state[data-state="submitted"]')
    shot(staff, "warnings-submitted")

    duty.goto(draft["url"])  # a second person approves and issues
    duty.locator('button[data-transition="approve"]').click()
    duty.wait_for_selector('#wn-state[data-state="approved"]')
    duty.locator('button[data-transition="issue"]').click()
    duty.wait_for_selector('#wn-state[data-state="issued"]')
    assert duty.locator(".wn-cap-link").count() == 1
    cap = duty.locator(".wn-cap-link").get_attribute("href")
    assert duty.request.get(cap).headers["content-type"].startswith("application/cap+xml")
    steps = duty.eval_on_selector_all("#wn-timeline li", "els => els.map(e => e.dataset.type)")
    assert steps == ["warnings.warning.drafted", "warnings.warning.submitted", "warnings.warning.approved",
                     "warnings.warning.issued"]
    assert "李晓燕" in duty.locator("#wn-timeline").inner_text()  # who submitted
    shot(duty, "warnings-issued")

    duty.goto("/")
    duty.wait_for_selector("body[data-warnings-ready]", state="attached", timeout=30_000)
    assert draft["headline"] in duty.locator("#warnings-list").inner_text()
    count = duty.evaluate("() => window.tianmuWarnings.layer.getLayers().length")
    assert count >= 1
    duty.select_option("#warnings-level", "red")
    duty.wait_for_function("() => document.body.dataset.warningsReady === '2'")
    assert draft["headline"] not in duty.locator("#warnings-list").inner_text()
    shot(duty, "warnings-map")
    assert not duty.tm_errors and not staff.tm_errors, (duty.tm_errors, staff.tm_errors)
