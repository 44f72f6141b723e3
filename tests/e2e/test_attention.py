"""Live attention in a real Chromium with the notification permission granted: a red alarm opened through the
real ingest service while the duty officer has an ordinary page open raises a desktop notification there and
the top bar's "new since you last looked" counter rises. window.Notification is wrapped by an init script that
records each call and then creates the real notification."""

from __future__ import annotations

import re

import pytest

from .helpers import PASSWORD, api, shot
from .test_sensing import CLOUDBURST_JS, sensor_rows

pytestmark = pytest.mark.browser

RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.tmNotifications = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.tmNotifications.push({title: title, body: (options || {}).body || "", tag: (options || {}).tag || ""});
    }
  }
  window.Notification = Recorded;
})();"""


def test_red_alarm_notifies_and_counts_on_any_open_page(browser, live_server_url):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai",
                              base_url=live_server_url, permissions=["notifications"])
    ctx.set_default_timeout(15_000)
    ctx.add_init_script(RECORD_NOTIFICATIONS)
    try:
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/login/")
        page.fill("#id_username", "duty")
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click(".login-box button[type=submit]")

        page.goto("/sensing/alarms/")  # looking at the list: nothing is new now
        page.goto("/r/shelters/")
        page.wait_for_function("() => window.tianmuAttention && window.tianmuAttention.polls >= 1")
        counter = page.locator('.attn-count[data-attention="sensing.alarms"]')
        before = int(counter.get_attribute("data-count"))
        assert before == 0, "opening the alarm list resets the counter"
        assert page.evaluate("() => Notification.permission") == "granted"
        page.click("#attention-enable")
        assert page.locator("#attention-enable").inner_text() == "提醒已开启"

        # A rain gauge the demo storm left quiet, chosen from the end so the list test's gauge stays its own.
        quiet = next(r for r in reversed(sensor_rows(page)) if r["code"].startswith("RG") and not r["alarm_level"])
        status, result = page.evaluate(CLOUDBURST_JS, quiet["code"])
        assert status == 200 and not result["errors"], result
        assert any(a["level"] == "red" for a in api(page, f"/api/v1/sensing/alarms?sensor={quiet['code']}")["results"])

        page.evaluate("() => window.tianmuAttention.poll()")
        page.wait_for_function("() => window.tmNotifications.length >= 1")
        notes = page.evaluate("() => window.tmNotifications")
        assert any("红色" in n["title"] and quiet["station"] in n["title"] for n in notes), notes
        page.wait_for_function("() => Number(document.querySelector('.attn-count').dataset.count) > 0")
        assert int(counter.get_attribute("data-count")) >= 1
        assert page.locator(".attn-toast.level-red").first.is_visible()
        shot(page, "attention-red-alarm")
        # The alert links to the alarm's own page (it explains itself); nothing is new for the counter after it.
        with page.expect_navigation():
            page.locator(".attn-toast.level-red a").first.click()
        assert re.search(r"/sensing/alarms/\d+/$", page.url) and quiet["code"] in page.locator("main").inner_text()
        # The counter counts what is new since the alarm list was last opened: the list then counts nothing new.
        with page.expect_navigation():
            page.locator("main a", has_text="告警列表").last.click()
        page.wait_for_function("() => window.tianmuAttention.polls >= 1")
        assert counter.get_attribute("data-count") == "0"
        assert not errors, errors
    finally:
        ctx.close()
