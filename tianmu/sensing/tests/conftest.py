"""Fixtures for monitoring tests, on top of the shared `world` (town A with village A1, town B with B1)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import create_record


def base_time() -> datetime:
    """A whole hour two days ago: readings are never in the future, whatever the machine's date."""
    return (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def make_station(actor, region, code: str, station_type: str = "rain", **extra):
    data = {"code": code, "name": f"测试站{code}", "region": region.code, "lon": region.lon + 0.002,
            "lat": region.lat + 0.002, "station_type": station_type, **extra}
    return create_record(actor, get_kind("stations"), data)


def make_sensor(actor, station, code: str, sensor_type: str = "rainfall", **extra):
    data = {"code": code, "name": f"传感器{code}", "region": station.region.code, "lon": station.lon,
            "lat": station.lat, "station": station.code, "sensor_type": sensor_type, "interval_s": 300, **extra}
    return create_record(actor, get_kind("sensors"), data)


def broker_up() -> bool:
    """Whether the MQTT broker at settings.MQTT_URL accepts a TCP connection."""
    from tianmu.sensing.ingest import broker_address

    address = broker_address(settings.MQTT_URL)
    try:
        with socket.create_connection((address["host"], address["port"]), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def broker():
    """Tests against the real broker use this. Without a broker they are skipped on a developer's machine,
    but in CI (CI=true, set by .ci/run) they fail, as a missing browser fails the e2e tests: CI cannot pass
    by skipping."""
    if broker_up():
        return
    message = f"no MQTT broker at {settings.MQTT_URL}"
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message}: CI runs the MQTT tests (start mosquitto, as .ci/run does)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def t0():
    return base_time()


@pytest.fixture
def net(world):
    """A rain gauge and a water-level gauge in village A1, a rain gauge in village B1."""
    admin = world["users"]["admin"]
    rain_a = make_station(admin, world["village_a"], "ST-RAIN-A")
    level_a = make_station(admin, world["village_a"], "ST-LEVEL-A", "water_level", warning_level_m=3.0,
                           guaranteed_level_m=4.0)
    rain_b = make_station(admin, world["village_b"], "ST-RAIN-B")
    return {
        "rain_a": make_sensor(admin, rain_a, "RG-A", valid_min=0, valid_max=200),
        "level_a": make_sensor(admin, level_a, "WL-A", "water_level", valid_min=-5, valid_max=50),
        "rain_b": make_sensor(admin, rain_b, "RG-B", valid_min=0, valid_max=200),
        "stations": {"rain_a": rain_a, "level_a": level_a, "rain_b": rain_b},
    }


def service_missing(message: str) -> None:
    """Skip on a developer's machine, fail in CI (CI=true): CI cannot pass by skipping."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{message} (CI runs every broker test; .ci/run installs it)", pytrace=False)
    pytest.skip(message)


class PrivateNats:
    """A nats-server of the test's own (JetStream + MQTT on a free loopback port, data in a temporary directory),
    configured like deploy/nats/tianmu.conf, which the test can kill with SIGKILL and start again on the same data.
    Never the machine's shared brokers."""

    def __init__(self, exe: str, workdir: Path):
        self.exe, self.dir = exe, workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"mqtt://127.0.0.1:{self.port}"
        mqtt_block = _deploy_nats_mqtt_settings()
        (self.dir / "nats.conf").write_text(
            f"server_name: tianmu-test-{self.port}\nlisten: 127.0.0.1:-1\n"
            f'jetstream {{\n  store_dir: "{self.dir / "js"}"\n}}\n'
            f"mqtt {{\n  listen: 127.0.0.1:{self.port}\n{mqtt_block}}}\n")
        self.proc = None

    def start(self, timeout: float = 30) -> None:
        log = open(self.dir / "nats.log", "ab")  # noqa: SIM115 - the child keeps it; closed with the process
        self.proc = subprocess.Popen([self.exe, "-c", str(self.dir / "nats.conf")], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout  # bounded poll: the broker's boot, not a timing assertion
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    pytest.fail(f"the private nats-server did not start: {(self.dir / 'nats.log').read_text()[-2000:]}")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, like `kill -9`: no shutdown, no flush of anything the broker still holds in memory."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def _deploy_nats_mqtt_settings() -> str:
    """The durability and capacity lines of deploy/nats/tianmu.conf's mqtt block (not its listener)."""
    conf = Path(__file__).resolve().parents[3] / "deploy" / "nats" / "tianmu.conf"
    return "".join(f"  {line.strip()}\n" for line in conf.read_text().splitlines()
                   if line.strip().startswith(("max_ack_pending", "ack_wait")))


@pytest.fixture
def private_nats(tmp_path):
    """A private, killable NATS JetStream MQTT broker; fails in CI when nats-server is not installed."""
    exe = shutil.which("nats-server") or next((p for p in ("/usr/sbin/nats-server",) if os.path.exists(p)), None)
    if exe is None:
        service_missing("nats-server is not installed (Debian package `nats-server`)")
    broker = PrivateNats(exe, tmp_path)
    broker.start()
    yield broker
    broker.kill()
