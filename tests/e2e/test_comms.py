"""Real-browser tests of call-and-respond (叫应) on the demo's typhoon order to 龙岗镇: a village responder confirms
from the inbox on a 390 px phone; a person without an account confirms through the one-tap link, signed out, on a
phone; the duty officer's board no longer lists either."""

from __future__ import annotations

import pytest
from django.core import signing

from .helpers import api, shot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
# The e2e server runs without TIANMU_SECRET_KEY (conftest strips TIANMU_*), so it signs with settings.py's
# development key; the test makes a link the way a message would carry it.
DEV_KEY = "dev-insecure-tianmu-key-do-not-use-in-production-0123456789"
SALT = "tianmu.comms.confirm"


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def board_deliveries(page) -> set[int]:
    data = api(page, "/api/v1/comms/board")
    return {p["delivery"] for t in data["towns"] for v in t["villages"] for p in v["people"]}


def test_inbox_confirm_on_a_phone(login):
    page = login("village")
    page.set_viewport_size(PHONE)
    page.goto("/comms/inbox/")
    item = page.locator("article.inbox-item").first
    assert "台风防御工作指令" in item.inner_text()
    assert no_sideways_scroll(page)
    shot(page, "comms-inbox-phone")
    with page.expect_navigation():
        item.get_by_role("button", name="确认收到").click()
    assert "已于" in page.locator("article.inbox-item").first.inner_text()
    assert page.tm_errors == []


def test_one_tap_link_signed_out_on_a_phone(login, browser, live_server_url):
    duty = login("duty")
    before = board_deliveries(duty)
    assert before, "the demo's order leaves persons to confirm"
    target = sorted(before)[0]
    token = signing.dumps(target, key=DEV_KEY, salt=SALT, compress=True)
    ctx = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=live_server_url)
    try:
        page = ctx.new_page()
        page.goto(f"/comms/c/{token}/")
        assert page.get_by_role("button", name="确认收到").is_visible()
        assert no_sideways_scroll(page)
        shot(page, "comms-link-phone")
        page.get_by_role("button", name="确认收到").click()
        page.wait_for_selector("text=已确认收到")
        page.goto(f"/comms/c/{token}/")  # again: it says so, and changes nothing
        assert "已于" in page.inner_text("main")
        r = page.goto(f"/comms/c/{token[:-3]}abc/")
        assert r.status == 403 and "链接无效" in page.inner_text("main")
    finally:
        ctx.close()
    assert target not in board_deliveries(duty)
    duty.goto("/comms/board/")
    assert duty.locator("#board-total").inner_text().strip() == str(len(before) - 1)
    shot(duty, "comms-board")
