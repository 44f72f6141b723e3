"""Every page works on a phone and on the big screen: the main pages, visited in a real Chromium at 390×844 and
1440×900 as a town user and as the district duty officer, must not scroll sideways, must not draw one visible
control over another, and (on the phone) must give every button, field and menu entry a 44 px touch target.
The command map page is tested by its own tests (commandmap)."""

from __future__ import annotations

import pytest

from .helpers import PASSWORD, shot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
TOUCH_PX = 44

# Visible interactive controls whose boxes intersect (by more than a pixel each way), nested ones excepted;
# elements that are scrolled out of a clipping box or drawn under a closed <details> do not count.
OVERLAP_JS = """() => {
  const sel = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  const visible = (el) => {
    // checkVisibility: not display:none, not under a closed <details> (content-visibility), not hidden or transparent
    if (!el.checkVisibility({contentVisibilityAuto: true, opacityProperty: true, visibilityProperty: true})) return false;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden" || st.display === "none" || +st.opacity === 0) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const els = Array.from(document.querySelectorAll(sel)).filter(visible);
  const boxes = els.map((el) => el.getBoundingClientRect());
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.name ? "[name=" + el.name + "]" : "")
    + " «" + (el.textContent || el.value || "").trim().slice(0, 20) + "»";
  const out = [];
  for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
    const a = els[i], b = els[j];
    if (a.contains(b) || b.contains(a)) continue;
    const A = boxes[i], B = boxes[j];
    const w = Math.min(A.right, B.right) - Math.max(A.left, B.left);
    const h = Math.min(A.bottom, B.bottom) - Math.max(A.top, B.top);
    if (w > 1 && h > 1) out.push(name(a) + " × " + name(b));
  }
  return out.slice(0, 10);
}"""

SMALL_TARGETS_JS = """(px) => {
  const sel = "button, .btn, select, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), summary, .mainnav a";
  return Array.from(document.querySelectorAll(sel)).filter((el) => {
    if (!el.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true})) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.height < px - 0.5;
  }).map((el) => el.tagName.toLowerCase() + " «" + (el.textContent || el.name || "").trim().slice(0, 20) + "» "
    + Math.round(el.getBoundingClientRect().height) + "px").slice(0, 10);
}"""

COMMON = ["/r/shelters/", "/r/shelters/new/", "/r/shelters/import/", "/r/teams/", "/r/hazards/", "/r/hazards/new/",
          "/sensing/alarms/", "/sensing/alarms/?view=station", "/sensing/", "/events/", "/events/catalogue/"]
DISTRICT_ONLY = ["/ops/events/", "/sensing/dead-letters/"]


def _first_href(page, path: str, selector: str) -> str:
    page.goto(path)
    return page.locator(selector).first.get_attribute("href")


def _pages(page, district: bool) -> list[str]:
    detail = _first_href(page, "/r/shelters/", "#records tbody a")
    sensor = _first_href(page, "/sensing/", "#latest tbody a")
    alarm = _first_href(page, "/sensing/alarms/", "#alarms tbody td:nth-child(2) a")  # the alarm explained
    return [*COMMON, detail, detail + "edit/", detail + "delete/", sensor, alarm,
            *(DISTRICT_ONLY if district else [])]


def _check(page, path: str, viewport: dict, who: str) -> list[str]:
    problems = []
    response = page.goto(path)
    assert response is not None and response.status < 500, f"{path}: {response and response.status}"
    page.wait_for_load_state("networkidle")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    if width > inner:
        problems.append(f"{who} {viewport['width']}px {path}: scrolls sideways ({width} > {inner})")
    overlaps = page.evaluate(OVERLAP_JS)
    if overlaps:
        problems.append(f"{who} {viewport['width']}px {path}: overlapping controls {overlaps}")
    if viewport is PHONE:
        small = page.evaluate(SMALL_TARGETS_JS, TOUCH_PX)
        if small:
            problems.append(f"{who} {viewport['width']}px {path}: touch targets under {TOUCH_PX}px {small}")
    if problems:
        shot(page, f"layout-{who}-{viewport['width']}-{path.strip('/').replace('/', '_')}", full_page=True)
    return problems


def _context(browser, live_server_url, viewport):
    ctx = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                              base_url=live_server_url, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    ctx.set_default_timeout(15_000)
    return ctx


def _sign_in(page, username):
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click(".login-box button[type=submit]")
    assert "/login/" not in page.url


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
@pytest.mark.parametrize("username", ["longgang", "duty"])
def test_main_pages_fit_the_screen(browser, live_server_url, username, viewport):
    ctx = _context(browser, live_server_url, viewport)
    try:
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        problems = _check(page, "/login/", viewport, "anonymous")
        _sign_in(page, username)
        for path in _pages(page, district=username == "duty"):
            problems += _check(page, path, viewport, username)
        assert not problems, "\n".join(problems)
        assert not errors, errors
    finally:
        ctx.close()


def test_phone_menu_collapses_and_opens(browser, live_server_url):
    """On a phone the top menu hides behind one button; pressing it shows every entry as a full-width row."""
    ctx = _context(browser, live_server_url, PHONE)
    try:
        page = ctx.new_page()
        _sign_in(page, "longgang")
        page.goto("/sensing/alarms/")
        nav = page.locator("#mainnav")
        assert not nav.is_visible()
        page.click("#navtoggle")
        assert nav.is_visible()
        assert page.get_attribute("#navtoggle", "aria-expanded") == "true"
        links = nav.locator(":scope > a")
        assert links.count() >= 2
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert box["height"] >= TOUCH_PX and box["width"] > PHONE["width"] * 0.8, box
        assert page.locator(".userbox button", has_text="退出").is_visible()
        page.keyboard.press("Escape")
        assert not nav.is_visible()
    finally:
        ctx.close()


def test_tables_reflow_into_cards_on_a_phone(browser, live_server_url):
    """A list on a phone is one card per record, each value labelled with its column, the record's link on it."""
    ctx = _context(browser, live_server_url, PHONE)
    try:
        page = ctx.new_page()
        _sign_in(page, "longgang")
        page.goto("/r/shelters/")
        first = page.locator("#records tbody tr").first
        assert not page.locator("#records thead").is_visible() or page.locator("#records thead").bounding_box()["height"] <= 1
        cells = first.locator("td")
        labels = [cells.nth(i).get_attribute("data-label") for i in range(cells.count())]
        heads = page.eval_on_selector_all("#records thead th", "ths => ths.map(th => th.textContent.trim())")
        assert labels == heads
        row_box = first.bounding_box()
        assert row_box["width"] <= PHONE["width"] and cells.nth(0).bounding_box()["y"] < cells.nth(1).bounding_box()["y"]
        link = first.locator("a").first
        assert link.is_visible()
        with page.expect_navigation():
            link.click()
        assert "/r/shelters/" in page.url and page.url.rstrip("/").split("/")[-1].isdigit()
    finally:
        ctx.close()


def test_chart_time_axis_is_beijing_time_in_any_browser_time_zone(browser, live_server_url):
    """A browser set to New York still reads the sensor chart in Beijing time: the axis ends at Beijing's now."""
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="America/New_York",
                              base_url=live_server_url)
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        _sign_in(page, "longgang")
        sensor = _first_href(page, "/sensing/", "#latest tbody a")
        page.goto(sensor)
        page.wait_for_selector('body[data-chart-ready="1"]', state="attached")
        option = page.evaluate("() => echarts.getInstanceByDom(document.getElementById('sensor-chart')).getOption()")
        now = page.evaluate("() => Date.now()")
        assert option["useUTC"] is True
        axis_end = option["xAxis"][0]["max"]
        # Drawn as UTC, the axis's end is now + 8 h: the wall-clock time in Beijing, not in New York.
        assert abs(axis_end - (now + 8 * 3600 * 1000)) < 10 * 60 * 1000, (axis_end, now)
        label = page.evaluate("""() => {
          const c = echarts.getInstanceByDom(document.getElementById('sensor-chart'));
          const d = new Date(c.getOption().xAxis[0].max);
          return [d.getUTCHours(), new Intl.DateTimeFormat('en-GB', {timeZone: 'Asia/Shanghai', hour: 'numeric',
                  hourCycle: 'h23'}).format(new Date())];
        }""")
        assert int(label[0]) == int(label[1]) % 24
    finally:
        ctx.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_english_pages_fit_and_name_places_in_english(browser, live_server_url, viewport):
    """English labels are longer: the same checks on English pages; places and plural headings in English."""
    ctx = _context(browser, live_server_url, viewport)
    try:
        page = ctx.new_page()
        _sign_in(page, "longgang")
        problems = []
        for path in ["/r/shelters/", "/sensing/alarms/", "/sensing/", "/events/", "/no-such-page/"]:
            problems += _check(page, path + "?lang=en", viewport, "longgang-en")
        assert not problems, "\n".join(problems)
        page.goto("/r/shelters/?lang=en")
        assert page.locator("h1").inner_text().startswith("Shelters")
        assert "Longgang Town" in page.locator("#records").inner_text()
        page.goto("/no-such-page/?lang=en")
        assert "Page not found" in page.locator("h1").inner_text()
    finally:
        ctx.close()
