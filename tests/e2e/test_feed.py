"""The activity feed (动态) in a real Chromium: an alarm opened through the real ingest service appears live as
one sentence — the station by name, the level, Beijing time, a link to its alarms — never as a raw event code
for a duty officer who is not an administrator."""

from __future__ import annotations

import re

import pytest

from .helpers import shot
from .test_sensing import CLOUDBURST_JS, sensor_rows

pytestmark = pytest.mark.browser


def test_feed_reads_as_sentences_and_updates_live(login):
    page = login("duty")
    # A quiet rain gauge: not the list test's (first) nor the attention test's (last).
    quiet = [r for r in sensor_rows(page) if r["code"].startswith("RG") and not r["alarm_level"]]
    gauge = quiet[len(quiet) // 2]
    page.goto("/events/")
    page.wait_for_selector('body[data-feed-live="1"]', state="attached")
    assert "sensing.alarm" not in page.locator("#event-table").inner_text()
    status, result = page.evaluate(CLOUDBURST_JS, gauge["code"])
    assert status == 200 and not result["errors"], result
    page.wait_for_function("() => Number(document.body.dataset.feedLoads || 0) >= 1", timeout=20_000)
    row = page.locator("#event-table tbody tr", has_text=gauge["station"]).first
    row.wait_for(timeout=20_000)
    texts = page.locator("#event-table tbody tr", has_text=gauge["station"]).all_inner_texts()
    assert any("红色告警" in t or "升级为红色" in t for t in texts), texts
    assert not any("sensing." in t for t in texts), texts
    text = row.inner_text()
    assert re.search(r"\d\d-\d\d \d\d:\d\d:\d\d", text)
    link = row.locator("a").first
    assert re.search(r"/sensing/alarms/\d+/$", link.get_attribute("href"))  # the alarm's own page
    # Filtered to red: only red rows, each with its level tag.
    page.goto("/events/?level=red")
    tags = page.locator("#event-table tbody .tag").all_inner_texts()
    assert tags and set(tags) == {"红色"}
    shot(page, "feed-red")
    with page.expect_navigation():
        page.locator("#event-table tbody tr", has_text=gauge["station"]).first.locator("a").click()
    assert re.search(r"/sensing/alarms/\d+/$", page.url) and gauge["code"] in page.locator("main").inner_text()
    assert not page.tm_errors, page.tm_errors
