"""`tianmu run` supervises the web server and workers; Huey housekeeping does its job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _web_servers(pid: int) -> list[int]:
    """The live uvicorn children of `pid` (a killed one not yet reaped has an empty command line)."""
    found = []
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline") as f:
                if "uvicorn" in f.read():
                    found.append(child)
        except OSError:
            pass
    return found


def _poll(condition, bound: float = 60) -> bool:
    """Wait for real processes: check `condition` until it holds or `bound` seconds (for slow machines, not a
    timing assertion) have passed."""
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.3)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_run_serves_restarts_a_dead_child_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.update({"TIANMU_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tianmu.settings"})
    subprocess.run([sys.executable, "-m", "tianmu.cli", "migrate", "-v0"], env=env, check=True, timeout=120)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tianmu.cli", "run", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/v1/health"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        assert _poll(healthy)
        assert len(_children(proc.pid)) >= 2  # web server and task consumer (and any app workers)
        [web] = _web_servers(proc.pid)
        os.kill(web, signal.SIGKILL)
        assert _poll(lambda: _web_servers(proc.pid) not in ([], [web]))  # the supervisor started another
        assert _poll(healthy)
        assert web not in _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "restarting" in out


def test_stale_import_uploads_are_purged(tmp_path, settings):
    from tianmu.core.tasks import purge_stale_import_uploads

    settings.VAR_DIR = tmp_path
    folder = tmp_path / "imports"
    folder.mkdir()
    old, new = folder / "old.xlsx", folder / "new.xlsx"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert purge_stale_import_uploads.call_local() == 1
    assert not old.exists() and new.exists()
