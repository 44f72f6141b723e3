"""People never see Django's technical pages, even with DEBUG on as in the demo: the platform's own 404, 403 and
500 pages, in the page's language; the API keeps its JSON errors."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("secret detail from the code")


def missing(request):
    raise Http404("record 42 of town B")


def refused(request):
    raise PermissionDenied


def own_page(request):
    """A view's own page with an error status (the one-tap link's "链接无效"): left as the view made it."""
    return HttpResponse("<!DOCTYPE html><main><h1>链接无效</h1></main>", status=403)


urlpatterns = [path("boom/", boom), path("missing/", missing), path("refused/", refused),
               path("own/", own_page), path("", include("tianmu.urls"))]


@pytest.mark.parametrize("debug", [True, False])
def test_404_403_500_are_the_platforms_pages(world, debug):
    client = Client(raise_request_exception=False)
    client.force_login(world["users"]["town_staff"])
    with override_settings(DEBUG=debug, ROOT_URLCONF=__name__):
        for url, status, title in [("/no-such-page/", 404, "页面不存在"), ("/missing/", 404, "页面不存在"),
                                   ("/refused/", 403, "无权访问"), ("/boom/", 500, "系统出错")]:
            res = client.get(url)
            html = res.content.decode()
            assert res.status_code == status and title in html, (url, html[:400])
            for leak in ("URLconf", "DEBUG = True", "Traceback", "secret detail", "record 42", "settings"):
                assert leak not in html, (url, leak)
        assert 'class="topbar"' in client.get("/missing/").content.decode()  # the menu, to go on from there
        own = client.get("/own/")
        assert own.status_code == 403 and "链接无效" in own.content.decode()


@override_settings(DEBUG=True)
def test_english_and_the_api_keeps_json(client, world):
    client.force_login(world["users"]["town_staff"])
    html = client.get("/no-such-page/?lang=en").content.decode()
    assert "Page not found" in html
    api = client.get("/api/v1/no-such-route")
    assert api.status_code == 404 and api["Content-Type"].startswith("application/json")


@override_settings(DEBUG=True, TIANMU_DEBUG_PAGES=True)
def test_developers_can_ask_for_the_technical_pages(client, world):
    client.force_login(world["users"]["town_staff"])
    assert "URLconf" in client.get("/no-such-page/").content.decode()
