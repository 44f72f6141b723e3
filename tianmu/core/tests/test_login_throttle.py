"""The login throttle (django-axes) cannot be bypassed: the client address is REMOTE_ADDR unless the request comes
from a configured reverse proxy (TIANMU_TRUSTED_PROXIES), and failures lock the account as well as the address."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tianmu.core.network import client_address

from .test_processes import _free_port, _poll

PASSWORD = "the-right-password-1"


@pytest.fixture
def account(world, settings):
    # A fast hasher for these in-process tests (argon2 costs ~0.3 s a check); the real server test keeps argon2.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = world["users"]["town_staff"]
    user.set_password(PASSWORD)
    user.save()
    return user


def login(client: Client, username: str, password: str, addr: str = "192.0.2.10", **headers):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=addr, **headers)


def locked(response) -> bool:
    return response.status_code == 429 and "锁定" in response.content.decode()


def test_a_locked_account_stays_locked_from_another_address(account, client, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, account.username, "wrong", addr=f"192.0.2.{i + 1}")
    r = login(client, account.username, PASSWORD, addr="198.51.100.7")
    assert locked(r)
    assert "_auth_user_id" not in client.session


def test_an_address_that_guesses_many_accounts_is_locked(world, account, client, settings):
    others = [u for key, u in world["users"].items() if key != "town_staff"]
    for user in others[: settings.AXES_FAILURE_LIMIT]:
        login(client, user.username, "wrong", addr="192.0.2.66")
    assert locked(login(client, account.username, PASSWORD, addr="192.0.2.66"))
    assert login(client, account.username, PASSWORD, addr="192.0.2.67").status_code == 302


def test_forged_forwarded_for_is_ignored_without_trusted_proxies(account, client, settings):
    assert settings.TIANMU_TRUSTED_PROXIES == []
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, account.username, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i + 1}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.10"}
    assert locked(login(client, account.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_a_trusted_proxy_gives_the_address_it_saw(account, client, settings):
    settings.TIANMU_TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::1"]
    # The client forged 6.6.6.6; the outer proxy (10.0.0.2) saw 203.0.113.7, the inner one (fd00::1) saw 10.0.0.2.
    login(client, account.username, "wrong", addr="fd00::1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7, 10.0.0.2")
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.7"]
    # Behind the proxy, a forged address changes nothing either: the account and the address stay locked.
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, account.username, "wrong", addr="10.0.0.2", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.7")
    assert locked(login(client, account.username, PASSWORD, addr="10.0.0.2",
                        HTTP_X_FORWARDED_FOR="6.6.6.200, 203.0.113.8"))


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("192.0.2.1", "6.6.6.6", "192.0.2.1"),                 # not a proxy: the header is the client's own claim
    ("10.0.0.1", "203.0.113.5", "203.0.113.5"),
    ("10.0.0.1", "6.6.6.6, 203.0.113.5", "203.0.113.5"),   # the rightmost address no trusted proxy added
    ("10.0.0.1", "203.0.113.5:4711", "203.0.113.5"),      # a port some proxies append
    ("10.0.0.1", "[2001:db8::5]:4711", "2001:db8::5"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),        # every hop trusted: the first one
    ("10.0.0.1", "", "10.0.0.1"),                          # no header: the proxy itself
    ("10.0.0.1", "not-an-address, 203.0.113.5", "203.0.113.5"),
    ("10.0.0.1", "203.0.113.5, garbage", "10.0.0.1"),     # a proxy wrote something unreadable: stop at it
])
def test_client_address(peer, forwarded, expected, settings):
    settings.TIANMU_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded}) == expected


def test_forwarding_headers_count_only_from_a_trusted_proxy(world, client, settings):
    from django.http import HttpRequest

    from tianmu.core.network import TrustedProxyMiddleware

    seen = {}

    def view(request: HttpRequest):
        seen.update(secure=request.is_secure(), addr=request.META["REMOTE_ADDR"],
                    forwarded=request.META.get("HTTP_X_FORWARDED_FOR"))

    settings.TIANMU_TRUSTED_PROXIES = ["10.0.0.1"]
    for peer, secure, addr in (("192.0.2.1", False, "192.0.2.1"), ("10.0.0.1", True, "203.0.113.5")):
        request = HttpRequest()
        request.META.update(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR="203.0.113.5", HTTP_X_FORWARDED_PROTO="https")
        TrustedProxyMiddleware(view)(request)
        assert seen["secure"] is secure and seen["addr"] == addr
        assert (seen["forwarded"] is None) is (not secure)


def test_a_successful_login_resets_only_its_own_account(world, account, client, settings):
    victim = world["users"]["commander"]
    victim.set_password("another-password-22")
    victim.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, victim.username, "wrong")
    assert login(client, account.username, PASSWORD).status_code == 302  # the guesser's own account
    client.logout()
    login(client, victim.username, "wrong")
    assert locked(login(client, victim.username, "another-password-22", addr="192.0.2.99"))


# ---- through the real server ----------------------------------------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.django_db(transaction=True)
def test_forged_forwarded_for_does_not_bypass_the_lockout_of_tianmu_run(tmp_path):
    """`tianmu run` behind no proxy: every attempt with a new forged X-Forwarded-For still counts for this client
    and this account (uvicorn must not take the address from the header)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.update({"TIANMU_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tianmu.settings"})
    subprocess.run([sys.executable, "-m", "tianmu.cli", "migrate", "-v0"], env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "tianmu.cli", "shell", "-c",
                    "from tianmu.core.models import User; "
                    f"User.objects.create_user('guessed', password='{PASSWORD}', role='town_staff')"],
                   env=env, check=True, timeout=120)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tianmu.cli", "run", "--no-workers", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                         NoRedirect())

    def open_(path, data=None, headers=None):
        request = urllib.request.Request(base + path, data=data, headers=headers or {})
        try:
            with opener.open(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def attempt(password: str, forged: str):
        status, page = open_("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": "guessed", "password": password})
        return open_("/login/", body.encode(), {"X-Forwarded-For": forged})

    try:
        assert _poll(lambda: open_("/api/v1/health")[0] == 200)
        for i in range(4):
            assert attempt("wrong", f"203.0.113.{i + 1}")[0] == 200
        assert attempt("wrong", "203.0.113.5")[0] == 429  # the fifth failure locks
        status, page = attempt(PASSWORD, "203.0.113.99")
        assert status == 429 and "锁定" in page
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
