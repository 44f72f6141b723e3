"""Real-browser test of warnings: an orange alarm drafts a warning (through the event worker), the town's staff
submit it, a second person approves and issues it on its page, it shows on the command map, the event worker
sends it to the persons responsible for its areas (comms), and the 叫应 board and the warning's progress follow
as a person confirms through the one-tap link, signed out, on a phone."""

from __future__ import annotations

import pytest
from django.core import signing

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


# The e2e server runs without TIANMU_SECRET_KEY (conftest strips TIANMU_*), so it signs with settings.py's
# development key; the test makes the link the way the SMS carries it.
DEV_KEY = "dev-insecure-tianmu-key-do-not-use-in-production-0123456789"


def test_an_orange_alarm_drafts_a_warning_that_a_second_person_issues_and_its_persons_confirm(
        login, tianmu_command, browser, live_server_url):
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

    # The town's rainstorm draft citing the gauge: orange, or red when an earlier test's red alarm in the same
    # town drafted first and this one merged into it (one draft per town and type within the window).
    drafts = api(duty, "/api/v1/warnings/?origin=alarm&state=draft&hazard_type=rainstorm")["results"]
    draft = next(w for w in drafts if any(gauge["code"] in c["text"] for c in w["citations"]))
    assert draft["level"] in ("orange", "red")
    assert draft["issued_by"] is None and draft["created_by"] is None

    staff = login("jincheng")  # 锦城街道's staff review the system's draft and submit it
    staff.goto(draft["url"])
    assert gauge["code"] in staff.locator(".wn-citations").text_content()  # folded when several alarms merged
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
    steps = [s for s in steps if s != "warnings.warning.merged"]  # later alarms of the town, merged in
    assert steps == ["warnings.warning.drafted", "warnings.warning.submitted", "warnings.warning.approved",
                     "warnings.warning.issued"]
    assert "李晓燕" in duty.locator("#wn-timeline").inner_text()  # who submitted
    shot(duty, "warnings-issued")

    duty.goto("/")
    duty.wait_for_selector("body[data-warnings-ready]", state="attached", timeout=30_000)
    assert draft["headline"] in duty.locator("#warnings-list").inner_text()
    count = duty.evaluate("() => window.tianmuWarnings.layer.getLayers().length")
    assert count >= 1
    duty.select_option("#warnings-level", "blue")
    duty.wait_for_function("() => document.body.dataset.warningsReady === '2'")
    assert draft["headline"] not in duty.locator("#warnings-list").inner_text()
    shot(duty, "warnings-map")

    # Dissemination: the event worker sends the issued warning to everyone responsible for its areas.
    tianmu_command("handle_events", "--once")
    [dispatch] = api(duty, f"/api/v1/comms/dispatches?source=warnings.warning&subject_id={draft['id']}")
    assert dispatch["confirm"] and dispatch["level"] == draft["level"]
    waiting = [p for t in api(duty, "/api/v1/comms/board")["towns"] for v in t["villages"] for p in v["people"]
               if p["dispatch"] == dispatch["id"]]
    assert waiting, "an orange or red warning asks its persons to confirm"
    before = api(duty, f"/api/v1/comms/dispatches/{dispatch['id']}")
    assert before["confirmed"] == 0 and before["unconfirmed"] == len({p["delivery"] for p in waiting})

    # One of them confirms through the one-tap link in their SMS, signed out, on a phone.
    token = signing.dumps(waiting[0]["delivery"], key=DEV_KEY, salt="tianmu.comms.confirm", compress=True)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", base_url=live_server_url)
    try:
        phone = ctx.new_page()
        phone.goto(f"/comms/c/{token}/")
        assert draft["headline"] in phone.inner_text("main")
        phone.get_by_role("button", name="确认收到").click()
        phone.wait_for_selector("text=已确认收到")
    finally:
        ctx.close()

    after = api(duty, f"/api/v1/comms/dispatches/{dispatch['id']}")
    assert after["confirmed"] == 1 and after["unconfirmed"] == before["unconfirmed"] - 1
    duty.goto(draft["url"])  # the warning's page shows the progress, by town
    card = duty.locator("#wn-dissemination")
    assert f"/comms/dispatches/{dispatch['id']}/" in card.inner_html()
    assert card.locator(".stat", has_text="已确认").locator("b").inner_text() == "1"
    shot(duty, "warnings-dissemination")
    still = {p["delivery"] for t in api(duty, "/api/v1/comms/board")["towns"] for v in t["villages"]
             for p in v["people"]}
    assert waiting[0]["delivery"] not in still and {p["delivery"] for p in waiting[1:]} <= still
    assert not duty.tm_errors and not staff.tm_errors, (duty.tm_errors, staff.tm_errors)
