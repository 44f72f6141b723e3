"""The event outbox and its consumers, the live stream, and the security baseline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import transaction

from tianmu.core.events import consume, emit, visible_events
from tianmu.core.models import Event, EventCursor

TYPES = {"core.test.ticked": {"i": int}, "core.test.one": {"i": int}, "core.test.two": {"i": int},
         "core.test.a": {"name": (str, "")}, "core.test.b": {"name": (str, "")}, "core.test.a2": {"name": (str, "")},
         "core.test.notice": {}}


@pytest.fixture(autouse=True)
def types(declare_types):
    declare_types(TYPES)


@pytest.mark.django_db(transaction=True)
def test_emit_requires_the_services_transaction():
    with pytest.raises(RuntimeError):
        emit("core.test.notice", actor=None)


# consume() reads only committed events of finished transactions, so its tests commit (transaction=True).
@pytest.mark.django_db(transaction=True)
def test_consumer_cursor_survives_a_crash_and_never_skips(world):
    with transaction.atomic():
        for i in range(5):
            emit("core.test.ticked", region=world["town_a"], payload={"i": i})
    seen: list[int] = []

    def crash_on_third(events):
        for e in events:
            if e.payload["i"] == 2 and not seen.count(-1):
                seen.append(-1)
                raise RuntimeError("worker died")
            seen.append(e.payload["i"])

    with pytest.raises(RuntimeError):
        consume("test-consumer", crash_on_third, batch=10)
    # The failed batch rolled back with the cursor: everything comes again, nothing is lost.
    assert EventCursor.objects.filter(consumer="test-consumer", position__gt=0).count() == 0
    seen.clear()
    seen.append(-1)
    assert consume("test-consumer", crash_on_third, batch=10) == 5
    assert [i for i in seen if i >= 0] == [0, 1, 2, 3, 4]
    assert consume("test-consumer", crash_on_third) == 0


@pytest.mark.django_db(transaction=True)
def test_consumer_batches_and_type_filter():
    with transaction.atomic():
        for i in range(7):
            emit("core.test.one" if i % 2 else "core.test.two", payload={"i": i})
    got = []
    while consume("typed", lambda evs: got.extend(e.payload["i"] for e in evs), types=["core.test.one"], batch=3):
        pass
    assert got == [1, 3, 5]
    assert EventCursor.objects.get(consumer="typed").position == Event.objects.order_by("-id").first().id


def test_visible_events_follow_scope(world):
    with transaction.atomic():
        emit("core.test.a", region=world["village_a"])
        emit("core.test.b", region=world["village_b"])
        emit("core.test.notice")
    town = [e.type for e in visible_events(world["users"]["town_staff"])]
    assert town == ["core.test.a", "core.test.notice"]
    assert [e.type for e in visible_events(world["users"]["leader"])] == ["core.test.a", "core.test.b",
                                                                          "core.test.notice"]


def test_event_stream_resumes_after_last_event_id(world, client):
    with transaction.atomic():
        first = emit("core.test.a", region=world["village_a"], payload={"name": "甲"})
        emit("core.test.b", region=world["village_b"], payload={"name": "蔺"})
        emit("core.test.a2", region=world["village_a"], payload={"name": "甲2"})
    client.force_login(world["users"]["town_staff"])
    r = client.get("/events/stream?once=1", HTTP_LAST_EVENT_ID=str(first.id))
    assert r["Content-Type"] == "text/event-stream"
    body = b"".join(r).decode()
    assert "core.test.a2" in body and "蔺" not in body and '"core.test.a"' not in body
    page = client.get("/events/")
    assert page.status_code == 200 and "甲2" in page.text and "蔺" not in page.text  # the feed reads as sentences


def test_anonymous_stream_is_refused(client):
    assert client.get("/events/stream?once=1").status_code == 401


def test_passwords_are_hashed_with_argon2(world):
    user = world["users"]["commander"]
    user.set_password("a long demo password")
    assert user.password.startswith("argon2")


def test_login_is_throttled_after_repeated_failures(world, client, settings):
    user = world["users"]["commander"]
    user.set_password("the-right-password-1")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    r = client.post("/login/", {"username": user.username, "password": "the-right-password-1"})
    assert r.status_code in (403, 429) and "锁定" in r.content.decode()


def test_security_headers_and_csrf(world, client):
    client.force_login(world["users"]["commander"])
    r = client.get("/r/shelters/")
    assert "default-src 'self'" in r["Content-Security-Policy"]
    assert r["X-Frame-Options"] == "DENY" and r["X-Content-Type-Options"] == "nosniff"
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world["users"]["commander"])
    assert strict.post("/api/v1/shelters/", {}, content_type="application/json").status_code == 403


def _settings_in_subprocess(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    return subprocess.run([sys.executable, "-c", "import django; from django.conf import settings; "
                           "django.setup(); print(settings.DEBUG)"],
                          env={**clean, "DJANGO_SETTINGS_MODULE": "tianmu.settings", **env},
                          capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_secret_or_with_debug(tmp_path):
    base = {"TIANMU_ENV": "production", "TIANMU_VAR_DIR": str(tmp_path)}
    r = _settings_in_subprocess(base)
    assert r.returncode != 0 and "TIANMU_SECRET_KEY" in r.stderr
    r = _settings_in_subprocess({**base, "TIANMU_SECRET_KEY": "x" * 50, "TIANMU_DEBUG": "1"})
    assert r.returncode != 0 and "DEBUG" in r.stderr
    r = _settings_in_subprocess({**base, "TIANMU_SECRET_KEY": "x" * 50})
    assert r.returncode == 0 and r.stdout.strip() == "False"


def test_chinese_first_regardless_of_browser_language(world, client):
    client.force_login(world["users"]["commander"])
    r = client.get("/r/shelters/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert "避灾安置场所" in r.text and r["Content-Language"] == "zh-hans"
    client.cookies["django_language"] = "en"
    r = client.get("/r/shelters/")
    assert r["Content-Language"] == "en" and "Shelter" in r.text


def test_api_docs_are_served_locally(client):
    r = client.get("/api/docs", follow=True)
    assert r.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in r.text and "cdn" not in r.text
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/shelters/" in spec["paths"] and "/api/v1/map/layers" in spec["paths"]
