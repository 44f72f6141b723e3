"""Fixtures for the real-browser tests (`make e2e`, marker `browser`).

One session builds the deterministic Lin'an demo into a throw-away SQLite file, serves it with uvicorn on a
free port, and drives Debian's Chromium through Playwright (never `playwright install`: the executable comes
from TIANMU_CHROMIUM, default /usr/bin/chromium). A missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .helpers import PASSWORD, REPO, shot

VIEWPORT = {"width": 1600, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO_TIMEOUT_S = 240
START_TIMEOUT_S = 40


def _server_env(var_dir: Path) -> dict[str, str]:
    """The caller's environment without any TIANMU_* setting (no PostgreSQL, Redis, tiles or production
    mode leaks in): the browser tests always run against their own SQLite file in development mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update({"TIANMU_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "TIANMU_LOG_LEVEL": "WARNING"})
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


_SERVER: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory):
    """Base URL of a real uvicorn server over a freshly built demo database."""
    var_dir = tmp_path_factory.mktemp("tianmu-e2e-var")
    env = _server_env(var_dir)
    _SERVER["env"] = env
    demo = subprocess.run([sys.executable, "-m", "tianmu.cli", "demo", "--no-serve"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
    if demo.returncode != 0:
        pytest.fail(f"`tianmu demo --no-serve` failed ({demo.returncode}):\n{demo.stdout[-3000:]}\n"
                    f"{demo.stderr[-3000:]}", pytrace=False)
    port = _free_port()
    log_path = var_dir / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tianmu.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:  # bounded poll: a real server process starting
            if proc.poll() is not None:
                pytest.fail(f"uvicorn exited with {proc.returncode}:\n{_tail(log_path)}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer /api/v1/health within {START_TIMEOUT_S}s:\n{_tail(log_path)}",
                            pytrace=False)
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def tianmu_command(live_server_url):
    """tianmu_command("handle_events", "--once"): run a `tianmu` command against the live server's database, as
    the supervised workers would (the browser tests' server runs uvicorn only)."""

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tianmu.cli", *args], cwd=REPO, env=_SERVER["env"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"tianmu {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("TIANMU_CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        pytest.fail(f"Chromium not found at {executable!r}: install Debian's `chromium` package or point "
                    "TIANMU_CHROMIUM at a Chromium executable (the e2e tests never download browsers).",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield b
    b.close()
    pw.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def login(browser, live_server_url, request):
    """login(username) → a page in its own browser context, signed in through the real login form.

    Uncaught page errors are collected on page.tm_errors; a failing test leaves a screenshot of every page."""
    contexts = []

    def _login(username: str):
        ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  base_url=live_server_url)
        ctx.set_default_timeout(15_000)
        contexts.append((username, ctx))
        page = ctx.new_page()
        page.tm_errors = []
        page.on("pageerror", lambda exc: page.tm_errors.append(str(exc)))
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation():
            page.click(".login-box button[type=submit]")
        assert "/login/" not in page.url, f"login as {username} failed: {page.url}"
        return page

    yield _login
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for username, ctx in contexts:
        if failed:
            for i, page in enumerate(ctx.pages):
                try:
                    shot(page, f"FAILED-{request.node.name}-{username}-{i}")
                except Exception:  # noqa: BLE001 - best effort evidence only
                    pass
        ctx.close()

