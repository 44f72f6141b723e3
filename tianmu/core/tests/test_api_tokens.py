"""API tokens: an optional expiry (refused with 401 once passed, cached or not) and the last-used time, both shown
in the admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tianmu.core.api import TokenAuth
from tianmu.core.models import ApiToken

ME = "/api/v1/me"


@pytest.fixture(autouse=True)
def empty_token_cache():
    TokenAuth._cache.clear()
    yield
    TokenAuth._cache.clear()


def issue(user, **fields) -> tuple[ApiToken, str]:
    key = ApiToken.new_key()
    token = ApiToken.objects.create(user=user, name="水利局网关", prefix=key[:8], key_hash=ApiToken.hash_key(key),
                                    **fields)
    return token, key


def call(client, key):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_an_expired_token_is_refused_with_401(world, client):
    _token, key = issue(world["users"]["api_client"], expires_at=timezone.now() - timedelta(minutes=1))
    r = call(client, key)
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == "unauthorized" and body["message"] and body["message_en"]


def test_a_token_before_its_expiry_works_and_records_its_use(world, client):
    token, key = issue(world["users"]["api_client"], expires_at=timezone.now() + timedelta(days=30))
    assert token.last_used_at is None
    r = call(client, key)
    assert r.status_code == 200 and r.json()["username"] == "dept"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_cached_token_is_refused_once_it_expires(world, client, monkeypatch):
    now = timezone.now()
    _token, key = issue(world["users"]["api_client"], expires_at=now + timedelta(hours=1))
    assert call(client, key).status_code == 200  # now remembered by this process
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(hours=2))
    assert call(client, key).status_code == 401


def test_a_token_without_expiry_keeps_working(world, client):
    _token, key = issue(world["users"]["api_client"])
    assert call(client, key).status_code == 200


def test_the_admin_shows_expiry_and_last_use(world, client):
    token, _key = issue(world["users"]["api_client"], expires_at=timezone.now() + timedelta(days=1),
                        last_used_at=timezone.now())
    client.force_login(world["users"]["admin"])
    listing = client.get("/admin/core/apitoken/")
    assert listing.status_code == 200
    headers = [str(h["text"]) for h in listing.context["result_headers"]]
    assert "有效期至" in headers and "最近使用" in headers
    page = client.get(f"/admin/core/apitoken/{token.pk}/change/")
    assert page.status_code == 200
    assert "expires_at" in page.context["adminform"].form.fields
    assert "最近使用" in page.content.decode()
