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


@pytest.mark.django_db(transaction=True)
def test_run_serves_restarts_a_dead_child_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANMU_")}
    env.update({"TIANMU_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tianmu.settings"})
    subprocess.run([sys.executable, "-m", "tianmu.cli", "migrate", "-v0"], env=env, check=True, timeout=120)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tianmu.cli", "run", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/v1/health"

    def wait_health(deadline=60):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status
            except OSError:
                time.sleep(0.3)
        return None

    try:
        assert wait_health() == 200
        children = _children(proc.pid)
        assert len(children) >= 2  # web server and task consumer (and any app workers)
        web = next(c for c in children if "uvicorn" in open(f"/proc/{c}/cmdline").read())
        os.kill(web, signal.SIGKILL)
        time.sleep(1.5)
        assert wait_health() == 200
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
