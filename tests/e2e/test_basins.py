"""River basins (流域) in a real browser: the 按流域 areal rainfall table, a basin's Thiessen weights and its
record page work on a 390 px phone (a village responder, who reads the district's basins) and on the big screen
(the duty officer), without sideways scrolling, overlapping controls or small touch targets; and the command
map's basin layer draws every basin the user may read, coloured by its areal rainfall."""

from __future__ import annotations

import pytest

from .helpers import api, shot
from .test_layout import DESKTOP, PHONE, _check, _context, _sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
@pytest.mark.parametrize("username", ["village", "duty"])
def test_basin_pages_fit_phone_and_big_screen(browser, live_server_url, viewport, username):
    ctx = _context(browser, live_server_url, viewport)
    try:
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        _sign_in(page, username)
        problems = _check(page, "/sensing/rainfall/areal/?by=basin&window=24", viewport, username)
        rows = page.locator("#areal-basins tbody tr")
        assert rows.count() == 6, rows.count()  # the demo's two river basins and four sub-basins
        assert page.locator(".areal-by a.on").inner_text().strip() == "按流域"
        detail = page.locator("#areal-basins tbody a").first.get_attribute("href")
        problems += _check(page, detail, viewport, username)
        assert page.locator("#basin-figures").is_visible()
        record = page.locator("#basin-record-link").get_attribute("href")
        problems += _check(page, record, viewport, username)
        assert page.locator("#basin-outline-svg").is_visible()
        if viewport is PHONE:
            shot(page, f"basins-{username}-390", full_page=True)
        assert problems == [] and errors == [], problems + errors
    finally:
        ctx.close()


def test_map_basin_layer_draws_every_readable_basin(login):
    page = login("jincheng")
    expected = api(page, "/api/v1/map/basins?window=24")["basins"]["features"]
    assert len(expected) == 6
    page.goto("/")
    page.locator("input[data-basins]").check()
    page.wait_for_selector('body[data-basins-ready="1"]', state="attached", timeout=30_000)
    drawn = page.evaluate("() => window.tianmuBasins.group.getLayers().length")
    assert drawn == len(expected)
    assert page.locator("[data-basin-count]").inner_text().strip() == "6"
    assert page.tm_errors == []
