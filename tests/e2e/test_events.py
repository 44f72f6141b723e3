"""The event catalogue and the event operations page in a real browser: on a big screen and at phone width
(390 px), Chinese first, nothing wider than the screen."""

from __future__ import annotations

import pytest

from .helpers import shot

pytestmark = pytest.mark.browser

OVERFLOW_JS = "() => document.documentElement.scrollWidth - window.innerWidth"


@pytest.mark.parametrize("width", [1600, 390])
def test_event_catalogue_and_operations_page_fit_the_screen(login, width):
    page = login("duty")  # the district commander
    page.set_viewport_size({"width": width, "height": 900})

    page.goto("/events/catalogue/")
    assert page.locator("h1").inner_text() == "事件目录"
    opened = page.locator('tr[id="sensing.alarm.opened"]')
    assert "规则或设备故障检查新开了一条告警" in opened.inner_text()
    assert "observed_at" in opened.inner_text()
    assert page.locator('tr[id="registry.shelter.created"]').is_visible()
    assert page.evaluate(OVERFLOW_JS) <= 0, f"catalogue wider than {width}px"
    shot(page, f"event-catalogue-{width}")

    page.goto("/ops/events/")
    assert page.locator("h1").inner_text() == "事件处理状态"
    assert page.locator("#consumers").is_visible() and page.locator("#event-dead-letters").is_visible()
    assert page.evaluate(OVERFLOW_JS) <= 0, f"operations page wider than {width}px"
    shot(page, f"ops-events-{width}")
    assert page.tm_errors == []


def test_operations_page_is_refused_to_town_staff(login):
    page = login("longgang")
    response = page.goto("/ops/events/")
    assert response.status == 403
