"""The duty officer's night on the map, in a real browser: 周边资源 from an alarm and from a map click, "show on the
map", a village user's own village, and the map's layout at 390×844 (a phone) and 1440×900, failing on horizontal
overflow, a control out of the screen, a touch target under 44 px or controls that overlap."""

from __future__ import annotations

import pytest

from .helpers import api, shot
from .test_browser import open_map

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

# Boxes of the map's controls and whether any two overlap, whether one leaves the screen, how wide the page is.
LAYOUT_JS = """(selectors) => {
  const out = {boxes: {}, overlaps: [], offscreen: [], small: [], scrollWidth: document.documentElement.scrollWidth,
               width: window.innerWidth};
  const visible = (n) => { const r = n.getBoundingClientRect(); const s = getComputedStyle(n);
                           return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  Object.entries(selectors).forEach(([name, [sel, minSize]]) => {
    document.querySelectorAll(sel).forEach((n, i) => {
      if (!visible(n)) { out.boxes[name + i] = null; return; }
      const r = n.getBoundingClientRect();
      const box = {x: r.left, y: r.top, r: r.right, b: r.bottom, name: name + i, node: n};
      out.boxes[name + i] = box;
      if (r.left < -0.5 || r.top < -0.5 || r.right > window.innerWidth + 0.5 || r.bottom > window.innerHeight + 0.5) {
        out.offscreen.push(box);
      }
      if (minSize && (r.width < minSize - 0.5 || r.height < minSize - 0.5)) {
        out.small.push([name + i, r.width, r.height]);
      }
    });
  });
  const list = Object.values(out.boxes).filter(Boolean);
  const plain = (b) => ({x: b.x, y: b.y, r: b.r, b: b.b, name: b.name});
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i], b = list[j];
      if (a.node.contains(b.node) || b.node.contains(a.node)) { continue; }  // a control inside its panel
      if (a.x < b.r - 0.5 && b.x < a.r - 0.5 && a.y < b.b - 0.5 && b.y < a.b - 0.5) {
        out.overlaps.push([a.name, b.name]);
      }
    }
  }
  Object.keys(out.boxes).forEach((k) => { if (out.boxes[k]) { out.boxes[k] = plain(out.boxes[k]); } });
  out.offscreen = out.offscreen.map(plain);
  return out;
}"""

CONTROLS = {
    "zoom": [".leaflet-control-zoom a", 44],
    "scale": [".leaflet-control-scale", 0],
    "layers": ["#layer-panel", 0],
    "stats": ["#stats-panel", 0],
}


# The controls slide beside a panel that opens (a CSS transition): measure once no transition is running.
SETTLED_JS = "() => document.getAnimations().every((a) => !(a instanceof CSSTransition) || a.playState !== 'running')"


def _check_layout(page, controls, label):
    page.wait_for_function(SETTLED_JS, timeout=5_000)
    layout = page.evaluate(LAYOUT_JS, controls)
    assert layout["scrollWidth"] <= layout["width"], (label, "horizontal overflow", layout["scrollWidth"])
    assert not layout["offscreen"], (label, "off the screen", layout["offscreen"])
    assert not layout["small"], (label, "touch targets under 44 px", layout["small"])
    assert not layout["overlaps"], (label, "overlapping controls", layout["overlaps"])
    assert layout["boxes"]["zoom0"] and layout["boxes"]["scale0"], (label, "zoom or scale hidden", layout["boxes"])
    return layout


def _new_page(browser, live_server_url, viewport, username="duty"):
    from .helpers import PASSWORD

    ctx = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai",
                              base_url=live_server_url, has_touch=viewport["width"] < 900)
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    page.tm_errors = []
    page.on("pageerror", lambda exc: page.tm_errors.append(str(exc)))
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click(".login-box button[type=submit]")
    return page


CLEAR_LAYERS_JS = """() => document.querySelectorAll('#layer-panel input[type=checkbox]:checked')
    .forEach((b) => { if (!b.dataset.base) { b.click(); } })"""


def _click_empty_map(page, fx=0.5, fy=0.55):
    """Click the map where no marker is (the layers switched off first), and ask for 周边资源 there."""
    page.evaluate(CLEAR_LAYERS_JS)
    page.wait_for_function("() => !document.querySelector('#layer-panel input[type=checkbox]:disabled')")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.locator(".leaflet-popup .cmap-nearby-btn").click()
    page.wait_for_selector("#nearby-panel[data-nearby-ready='1']", state="attached")


def _nearby_lists(page, root):
    """Per group in a nearby panel: the slug and the distances shown, in order."""
    return page.evaluate("""(root) => Array.from(document.querySelectorAll(root + " .nearby-group")).map((g) => [
        g.getAttribute("data-nearby-kind"),
        Array.from(g.querySelectorAll("[data-distance]")).map((n) => Number(n.getAttribute("data-distance")))])""",
                         root)


def _assert_nearest_first(groups, radius):
    assert groups, "no groups in the panel"
    for slug, distances in groups:
        assert distances == sorted(distances), (slug, distances)
        assert all(d <= radius for d in distances), (slug, distances, radius)


def test_nearby_panel_from_an_alarm(login):
    page = login("duty")
    page.goto("/sensing/alarms/?status=all&view=alarm")
    link = page.locator("#alarms tbody tr td:nth-child(3) a").first
    link.wait_for()
    with page.expect_navigation():
        link.click()
    assert "/sensing/sensors/" in page.url
    panel = page.locator("section[data-nearby]")
    panel.wait_for()
    page.wait_for_selector("section[data-nearby][data-nearby-ready='1']", state="attached")
    groups = _nearby_lists(page, "section[data-nearby]")
    assert [g[0] for g in groups][:3] == ["teams", "shelters", "warehouses"], groups
    _assert_nearest_first(groups, 5000)
    # A wider radius finds at least as much, still nearest first.
    before = sum(len(d) for _s, d in groups)
    page.select_option("section[data-nearby] [data-nearby-radius]", "20000")
    page.wait_for_function("() => document.querySelector('section[data-nearby]').getAttribute('data-nearby-ready')"
                           " === '1' && document.querySelector('[data-nearby-radius]').value === '20000'")
    groups = _nearby_lists(page, "section[data-nearby]")
    _assert_nearest_first(groups, 20000)
    assert sum(len(d) for _s, d in groups) >= before and any(d for _s, d in groups)
    # A team shows its leader, phone and headcount.
    team = page.locator("section[data-nearby] [data-nearby-kind='teams'] .nearby-item").first
    text = team.inner_text()
    assert "负责人" in text and "人数" in text, text
    assert team.locator("a.nearby-phone").count() == 1
    shot(page, "nearby-from-alarm")
    assert not page.tm_errors, page.tm_errors


def test_nearby_panel_from_a_map_click_and_show_on_the_map(login):
    page = open_map(login("duty"))
    _click_empty_map(page)
    groups = _nearby_lists(page, "#nearby-panel")
    _assert_nearest_first(groups, 5000)
    drawn = page.evaluate("() => window.tianmuMap.nearbyLayer.getLayers().length")
    assert drawn >= 2  # the radius and the point, and a ring per record listed
    shot(page, "nearby-from-map-click")
    # "Show on the map" from the panel: the record's popup opens.
    item = page.locator("#nearby-panel .nearby-item").first
    if item.count():
        name = item.locator(".nearby-name").inner_text()
        item.locator(".nearby-show").click()
        popup = page.locator(".leaflet-popup .cmap-popup-title")
        popup.wait_for()
        assert popup.inner_text() == name
    page.locator("#nearby-close").click()
    assert page.locator("#nearby-panel").is_hidden()
    assert not page.tm_errors, page.tm_errors


def test_show_on_the_map_from_a_detail_page(login):
    page = login("longgang")
    shelter = api(page, "/api/v1/shelters/?page_size=1&has_free_places=false")["results"][0]
    page.goto(f"/r/shelters/{shelter['id']}/")
    with page.expect_navigation():
        page.locator(f"a[href='/?show=shelters:{shelter['id']}']").click()
    page.wait_for_selector(f"body[data-shown='shelters:{shelter['id']}']", state="attached", timeout=30_000)
    popup = page.locator(".leaflet-popup .cmap-popup")
    popup.wait_for(state="visible")
    assert popup.locator(".cmap-popup-title").inner_text() == shelter["name"]
    assert "关闭" in popup.inner_text() or "开放" in popup.inner_text() or "已满" in popup.inner_text()
    center = page.evaluate("() => { const c = window.tianmuMap.map.getCenter(); return [c.lng, c.lat]; }")
    assert abs(center[0] - shelter["lon"]) < 0.01 and abs(center[1] - shelter["lat"]) < 0.01, (center, shelter)
    rings = page.evaluate("() => window.tianmuMap.highlight.getLayers().map((l) => [l.getLatLng().lng, "
                          "l.getLatLng().lat])")
    assert len(rings) == 1 and abs(rings[0][0] - shelter["lon"]) < 1e-6 and abs(rings[0][1] - shelter["lat"]) < 1e-6
    shot(page, "show-on-the-map")
    assert not page.tm_errors, page.tm_errors


def test_a_village_user_sees_their_village_framed_and_outlined(login):
    page = open_map(login("village"))
    me = api(page, "/api/v1/me")
    outline = page.evaluate("() => window.tianmuMap.homeLayer.getLayers().map((l) => l.feature.properties.code)")
    assert outline == [me["region"]]
    fit = page.evaluate("""() => { const m = window.tianmuMap.map, h = window.tianmuMap.homeLayer.getBounds();
                                   return {contains: m.getBounds().pad(0.01).contains(h), zoom: m.getZoom()}; }""")
    assert fit["contains"] and fit["zoom"] >= 12, fit
    shot(page, "map-village")
    assert not page.tm_errors, page.tm_errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390x844", "1440x900"])
def test_the_map_layout(browser, live_server_url, viewport):
    page = _new_page(browser, live_server_url, viewport)
    open_map(page)
    label = f"{viewport['width']}x{viewport['height']}"
    _check_layout(page, CONTROLS, label + " opened")
    phone = viewport["width"] < 900
    if phone:
        # Panel buttons are touch targets; the layer panel opens as a bottom sheet under which nothing hides.
        _check_layout(page, {**CONTROLS, "toggles": [".cmap-toggle", 44]}, label + " toggles")
        page.locator("#layer-panel .cmap-toggle").click()
        sheet = page.locator("#layer-panel").bounding_box()
        assert abs(sheet["y"] + sheet["height"] - viewport["height"]) < 2 and sheet["width"] >= viewport["width"] - 1
        _check_layout(page, {"zoom": CONTROLS["zoom"], "scale": CONTROLS["scale"], "sheet": ["#layer-panel", 0],
                             "stats": ["#stats-panel", 0]}, label + " layer sheet")
        shot(page, f"map-{label}-layers")
        page.locator("#layer-panel .cmap-toggle").click()
    # The nearby sheet (phone) or panel (desktop) from a map click.
    _click_empty_map(page, 0.5, 0.4)
    controls = {"zoom": CONTROLS["zoom"], "scale": CONTROLS["scale"], "nearby": ["#nearby-panel", 0],
                "close": ["#nearby-close", 44]}
    if not phone:
        controls["layers"] = CONTROLS["layers"]
    _check_layout(page, controls, label + " nearby")
    shot(page, f"map-{label}-nearby")
    assert not page.tm_errors, page.tm_errors
    page.context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390x844", "1440x900"])
def test_the_nearby_page_and_a_list_near_a_point(browser, live_server_url, viewport):
    page = _new_page(browser, live_server_url, viewport)
    page.goto("/nearby/?q=30.2095,119.0964")
    page.wait_for_selector("section[data-nearby][data-nearby-ready='1']", state="attached")
    _assert_nearest_first(_nearby_lists(page, "section[data-nearby]"), 5000)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    link = page.locator("[data-nearby-kind='teams'] a.nearby-list")
    if link.count():
        with page.expect_navigation():
            link.click()
        chip = page.locator("[data-near-chip]")
        chip.wait_for()
        distances = page.evaluate("() => Array.from(document.querySelectorAll('#records [data-distance]'))"
                                  ".map((n) => Number(n.getAttribute('data-distance')))")
        assert distances == sorted(distances) and distances
        with page.expect_navigation():
            chip.locator(".chip-clear").click()
        assert page.locator("[data-near-chip]").count() == 0
    shot(page, f"nearby-page-{viewport['width']}")
    page.context.close()
