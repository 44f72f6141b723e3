"""Shared helpers of the browser tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"  # gitignored
PASSWORD = "tianmu-demo-2026"


def shot(page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def api(page, path: str):
    """GET an API path from inside the page (the signed-in user's session cookie) and return the JSON."""
    return page.evaluate("""async (path) => {
        const r = await fetch(path, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!r.ok) { throw new Error(r.status + " " + path); }
        return r.json();
    }""", path)


def layer_counts(page) -> dict[str, int]:
    """slug → record count of every map layer, as the API reports it for the page's user."""
    return {layer["slug"]: layer["count"] for layer in api(page, "/api/v1/map/layers")["layers"]}


def panel_count(page, slug: str) -> int:
    """The count printed next to a layer in the layer panel ("4,036" → 4036)."""
    text = page.locator(f'[data-layer-count="{slug}"]').inner_text()
    return int(text.replace(",", "").replace("\u202f", "").replace("\xa0", "").strip())
