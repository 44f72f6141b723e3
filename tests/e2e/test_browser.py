"""Real-browser tests: Debian Chromium driven by Playwright against a live server over the Lin'an demo.

Run with `make e2e` (pytest -m browser). See conftest.py for the server and browser fixtures.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlparse

import pytest

from .helpers import api, layer_counts, panel_count, shot

pytestmark = pytest.mark.browser

LONGGANG = "330112016"  # 龙岗镇: the town of the demo's `longgang` staff user
JINCHENG = "330112001"  # 锦城街道: the town of `jincheng`
TOGGLED = ["sites", "experts"]  # off when the map opens; one clustered layer, one plain layer

# In the page: is every marker of the given layers inside the given (Multi)Polygon? Returns the offenders and,
# per layer, the marker ids, whether the layer is on the map and how many of its items are drawn right now.
MARKERS_JS = """([slugs, geometry]) => {
  function inRing(x, y, ring) {
    let inside = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i], [xj, yj] = ring[j];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) { inside = !inside; }
    }
    return inside;
  }
  function inPolygon(x, y, rings) {
    return inRing(x, y, rings[0]) && !rings.slice(1).some((hole) => inRing(x, y, hole));
  }
  const polys = geometry.type === "MultiPolygon" ? geometry.coordinates : [geometry.coordinates];
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  polys.forEach((p) => p[0].forEach(([x, y]) => {
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }));
  const tm = window.tianmuMap, out = {layers: {}, outside: []};
  slugs.forEach((slug) => {
    const group = tm.layers[slug];
    const markers = group.getLayers();
    const ids = [];
    markers.forEach((m) => {
      const ll = m.getLatLng();
      ids.push(m.tmRow[0]);
      const inBox = ll.lng >= minX && ll.lng <= maxX && ll.lat >= minY && ll.lat <= maxY;
      if (!inBox || !polys.some((p) => inPolygon(ll.lng, ll.lat, p))) {
        out.outside.push([slug, m.tmRow[0], ll.lng, ll.lat, inBox]);
      }
    });
    // A MarkerClusterGroup draws clusters and single markers into an inner feature group.
    const drawn = group._featureGroup ? group._featureGroup.getLayers().length : markers.length;
    out.layers[slug] = {ids: ids, onMap: tm.map.hasLayer(group), drawn: tm.map.hasLayer(group) ? drawn : 0};
  });
  return out;
}"""


def open_map(page):
    if urlparse(page.url).path != "/":
        page.goto("/")
    page.wait_for_selector('body[data-map-ready="1"]', state="attached", timeout=30_000)
    return page


def wait_layer_idle(page, slug):
    page.wait_for_function(
        """(slug) => { const box = document.querySelector('input[data-layer="' + slug + '"]');
                       return box && !box.disabled; }""", arg=slug)


def test_town_staff_map_shows_only_their_town(login):
    """Town staff of 龙岗镇 sign in, land on the map, toggle layers, and every marker lies inside 龙岗镇 or is one of
    the district's own resources."""
    duty = login("duty")
    district = layer_counts(duty)
    duty.context.close()

    page = open_map(login("longgang"))
    assert page.url.endswith("/"), page.url
    assert "龙岗镇" in page.locator(".userbox .who").inner_text()

    towns = api(page, "/api/v1/regions/boundaries?level=town")["features"]
    assert [f["properties"]["code"] for f in towns] == [LONGGANG], "town staff must only get their own boundary"
    geometry = towns[0]["geometry"]

    mine = layer_counts(page)
    slugs = list(mine)
    assert set(TOGGLED) <= set(slugs), slugs
    assert sum(mine.values()) > 0
    for slug in slugs:
        assert mine[slug] <= district[slug], (slug, mine[slug], district[slug])
        if district[slug]:
            assert mine[slug] < district[slug], f"{slug}: the town sees the whole district ({district[slug]})"
        assert panel_count(page, slug) == mine[slug], slug

    # The layers switched on by default are fully drawn, and only with 龙岗镇's records.
    initial = [s for s in slugs if page.locator(f'input[data-layer="{s}"]').is_checked()]
    assert initial, "no layer is switched on when the map opens"
    assert not set(TOGGLED) & set(initial), initial
    for slug in initial:
        wait_layer_idle(page, slug)

    # Toggle the layers that start off: on → markers drawn; off → gone.
    for slug in TOGGLED:
        box = page.locator(f'input[type=checkbox][data-layer="{slug}"]')
        assert page.evaluate("(s) => window.tianmuMap.layers[s].getLayers().length", slug) == 0
        box.check()
        page.wait_for_selector(f'[data-layer-count="{slug}"][data-loaded="1"]', state="attached")
        wait_layer_idle(page, slug)
        assert box.is_checked()

    state = page.evaluate(MARKERS_JS, [initial + TOGGLED, geometry])
    # Outside 龙岗镇 only the district's own resources (up the chain: the district brigades, its warehouse), never
    # another town's.
    regions = page.evaluate("""async (rows) => Promise.all(rows.map(async ([slug, id]) => {
        const r = await fetch(`/api/v1/${slug}/${id}`, {credentials: "same-origin"});
        return [slug, id, (await r.json()).region];
    }))""", [row[:2] for row in state["outside"]])
    assert all(region == "330112" for _s, _i, region in regions), f"markers outside 龙岗镇: {regions[:10]}"
    assert all(slug not in ("hazards", "sites") for slug, _i, _r in regions), regions
    for slug in initial + TOGGLED:
        layer = state["layers"][slug]
        assert layer["onMap"], slug
        assert len(layer["ids"]) == mine[slug], (slug, len(layer["ids"]), mine[slug])
        assert len(set(layer["ids"])) == len(layer["ids"]), f"{slug}: duplicate markers"
        if mine[slug]:
            assert layer["drawn"] > 0, f"{slug}: on the map but nothing drawn"
        features = api(page, f"/api/v1/map/layers/{slug}")["features"]
        assert sorted(f[0] for f in features) == sorted(layer["ids"]), slug
        assert panel_count(page, slug) == mine[slug], slug
    assert not page.tm_errors, page.tm_errors
    page.mouse.move(800, 450)
    shot(page, "map-longgang")

    for slug in TOGGLED:
        page.locator(f'input[type=checkbox][data-layer="{slug}"]').uncheck()
        wait_layer_idle(page, slug)
    state = page.evaluate(MARKERS_JS, [TOGGLED, geometry])
    for slug in TOGGLED:
        assert not state["layers"][slug]["onMap"], f"{slug} still on the map after switching it off"
    # Switching back on reuses the loaded data.
    page.locator('input[data-layer="sites"]').check()
    wait_layer_idle(page, "sites")
    assert page.evaluate("() => window.tianmuMap.map.hasLayer(window.tianmuMap.layers.sites)")
    assert not page.tm_errors, page.tm_errors


def test_duty_filters_shelter_list_by_town_and_opens_history(login):
    page = login("duty")
    total = api(page, "/api/v1/shelters/?page_size=1")["count"]
    page.goto("/r/shelters/")
    form = page.locator("#filter-form")
    form.locator("select[name=region]").select_option(label="龙岗镇")
    assert form.locator("select[name=region]").input_value() == LONGGANG
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert f"region={LONGGANG}" in page.url

    expected = api(page, f"/api/v1/shelters/?region={LONGGANG}&page_size=100")
    assert 0 < expected["count"] < total
    assert all(r["town"] == LONGGANG for r in expected["results"])
    heading = page.locator("main h1").inner_text()
    assert re.search(rf"共\s*{expected['count']}\s*条", heading), heading

    headers = [h.strip() for h in page.locator("#records thead th").all_inner_texts()]
    region_col = headers.index("所属区域")
    names = {r["name"] for r in api(page, f"/api/v1/regions?parent={LONGGANG}")} | {"龙岗镇"}
    rows = page.locator("#records tbody tr")
    n = rows.count()
    assert n == min(expected["count"], 50), n
    codes = []
    for i in range(n):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        assert cells[region_col] in names, f"row {i}: {cells[region_col]} is not in 龙岗镇"
        codes.append(cells[0])
    assert set(codes) <= {r["code"] for r in expected["results"]}
    shot(page, "list-shelters-longgang")

    link = rows.nth(0).locator("td a").first
    name = link.inner_text().strip()
    with page.expect_navigation():
        link.click()
    match = re.search(r"/r/shelters/(\d+)/$", page.url)
    assert match, page.url
    assert page.locator("main h1").inner_text().strip() == name
    history = api(page, f"/api/v1/shelters/{match.group(1)}/history")
    table = page.locator(".history table.data")
    assert table.is_visible()
    assert table.locator("th").count() == 4
    assert table.locator("tr:has(td)").count() == len(history) >= 1
    assert not page.tm_errors, page.tm_errors
    shot(page, "detail-shelter", full_page=True)


def _xlsx(rows) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["编码", "名称", "经度", "纬度", "专业领域"])
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(page, name, content):
    page.locator("#upload-form input[type=file]").set_input_files(files=[{
        "name": name, "buffer": content,
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    with page.expect_navigation():
        page.locator("#upload-form button[type=submit]").click()
    return page.locator("#import-report")


def test_town_staff_excel_import_rejects_bad_row_then_imports(login):
    page = login("jincheng")
    # A point certainly inside 锦城街道: one of its own shelters.
    lon, lat = api(page, "/api/v1/map/layers/shelters")["features"][0][1:3]
    good = ["E2E-JC-EXP-001", "端到端测试专家", lon, lat, "自然灾害"]
    bad = ["E2E-JC-EXP-002", "经纬度填反的专家", lat, lon, "安全生产"]  # lon/lat swapped, in column C/D
    before = api(page, "/api/v1/experts/?page_size=1")["count"]

    page.goto("/r/experts/import/")
    report = _upload(page, "bad.xlsx", _xlsx([good, bad]))
    assert report.locator("h2.error-title").is_visible(), report.inner_text()
    assert "未写入任何数据" in report.locator("h2").inner_text()
    problems = [[c.strip() for c in tr.locator("td").all_inner_texts()]
                for tr in report.locator("table tr:has(td)").all()]
    assert problems, report.inner_text()
    assert all(p[0] == "3" for p in problems), problems  # only the bad row (row 3 as Excel numbers it)
    # Columns: row, the row's code and name (to find it in the sheet), column, field, problem.
    assert any(p[1] == "E2E-JC-EXP-002" and p[2] == "经纬度填反的专家" and p[3] == "C" and "填反" in p[5]
               for p in problems), problems
    assert page.locator("#confirm-import").count() == 0
    shot(page, "import-rejected")
    assert api(page, "/api/v1/experts/?page_size=1")["count"] == before
    assert api(page, "/api/v1/experts/?q=E2E-JC-EXP")["count"] == 0

    report = _upload(page, "good.xlsx", _xlsx([good]))
    assert "检查通过" in report.locator("h2").inner_text(), report.inner_text()
    counts = {k: report.locator(f'[data-count="{k}"]').inner_text() for k in ("created", "updated", "unchanged")}
    assert counts == {"created": "1", "updated": "0", "unchanged": "0"}, counts
    assert api(page, "/api/v1/experts/?page_size=1")["count"] == before, "the dry run must not write"
    with page.expect_navigation():
        page.locator("#confirm-import").click()
    assert page.url.endswith("/r/experts/"), page.url
    assert "导入完成" in page.locator(".messages").inner_text()
    created = api(page, "/api/v1/experts/?q=E2E-JC-EXP-001")
    assert created["count"] == 1
    record = created["results"][0]
    assert record["name"] == "端到端测试专家" and record["town"] == JINCHENG, record
    assert api(page, "/api/v1/experts/?page_size=1")["count"] == before + 1
    assert not page.tm_errors, page.tm_errors


def test_map_search_flies_to_record_and_opens_popup(login):
    page = open_map(login("longgang"))
    target = api(page, f"/api/v1/shelters/?region={LONGGANG}&page_size=1")["results"][0]
    page.fill("#map-search-input", target["name"])
    page.press("#map-search-input", "Enter")
    hit = page.locator(f'#map-search-results button.cmap-hit[data-kind="shelters"][data-id="{target["id"]}"]')
    hit.wait_for()
    assert page.locator("#map-search-results .cmap-hit-name").first.inner_text() == target["name"]
    zoom_before = page.evaluate("() => window.tianmuMap.map.getZoom()")
    hit.click()
    popup = page.locator(".leaflet-popup .cmap-popup")
    popup.wait_for(state="visible")
    assert popup.locator(".cmap-popup-title").inner_text() == target["name"]
    assert popup.locator("a.cmap-popup-link").get_attribute("href") == f"/r/shelters/{target['id']}/"
    view = page.evaluate("""() => { const m = window.tianmuMap.map, c = m.getCenter();
                                    return {zoom: m.getZoom(), lat: c.lat, lng: c.lng}; }""")
    assert view["zoom"] >= 15 > zoom_before, view
    assert abs(view["lat"] - target["lat"]) < 0.01 and abs(view["lng"] - target["lon"]) < 0.01, (view, target)
    box = popup.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 1600, box
    # Let Leaflet's fade-in finish so the screenshot shows the popup as a duty officer sees it.
    page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
    shot(page, "map-search-popup")
    with page.expect_navigation():
        popup.locator("a.cmap-popup-link").click()
    assert page.url.endswith(f"/r/shelters/{target['id']}/"), page.url
    assert not page.tm_errors, page.tm_errors
