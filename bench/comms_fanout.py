"""Benchmark of the command-communications network (not a test): a district-wide dispatch to N responsible
persons, and the send worker's throughput to a loopback SMS gateway; each against a baseline measured in the same
run on the same machine:

  dispatch()  vs  a bare bulk_create of the same number of delivery rows (no resolution, validation, event);
  worker      vs  the same number of bare HTTP POSTs to the same loopback gateway (no claim, lease, in-flight
                  stamp, result commit).

Only the ratios compare across runs (the machine is shared). Usage, from the repository root:
    PYTHONPATH=. .venv/bin/python bench/comms_fanout.py [--persons 5000]
Uses a fresh SQLite database in a temporary directory, or TIANMU_DATABASE_URL if it names a database with
"bench" in its name (its tables are reset by migrating a fresh database you create)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=5000)
    args = parser.parse_args()
    url = os.environ.get("TIANMU_DATABASE_URL", "")
    if url and "bench" not in url.rsplit("/", 1)[-1]:
        sys.exit("TIANMU_DATABASE_URL must name a database with 'bench' in its name")
    tmp = tempfile.mkdtemp(prefix="comms-bench-")
    os.environ.setdefault("TIANMU_VAR_DIR", tmp)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tianmu.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import httpx

    from tianmu.comms.models import Delivery, Dispatch, Recipient
    from tianmu.comms.sending import SendWorker
    from tianmu.comms.services import dispatch
    from tianmu.comms.sink import Sink
    from tianmu.core.models import Region, User

    n = args.persons
    district = Region.objects.create(code="330112", name="临安区", level="district", lon=119.7, lat=30.2)
    towns = [Region.objects.create(code=f"330112{t:03d}", name=f"镇{t}", level="town", parent=district, lon=119.7,
                                   lat=30.2) for t in range(1, 19)]
    villages = [Region.objects.create(code=f"{t.code}{v:03d}", name=f"{t.name}村{v}", level="village", parent=t,
                                      lon=119.7, lat=30.2) for t in towns for v in range(1, 18)]
    actor = User.objects.create(username="bench", role="commander", region=district)
    Recipient.objects.bulk_create([
        Recipient(code=f"ZR{i:06d}", name=f"责任人{i}", region=villages[i % len(villages)], duty="village_lead",
                  mobile=f"199{i:08d}", channels="sms") for i in range(n)], batch_size=1000)
    people = list(Recipient.objects.select_related("region").order_by("pk"))

    # 1. dispatch() against a bare bulk_create of the same rows.
    t0 = time.perf_counter()
    d = dispatch(actor, source="bench", subject_id="1", title="暴雨红色预警", text="请立即组织转移。" * 3,
                 level="red", regions=[district.code])
    t_dispatch = time.perf_counter() - t0
    assert d.deliveries.count() == n
    base = Dispatch.objects.create(source="bench", title="b", text="b", region=district)
    t0 = time.perf_counter()
    Delivery.objects.bulk_create([Delivery(dispatch=base, recipient=p, region=p.region, channel="sms")
                                  for p in people], batch_size=500)
    t_bulk = time.perf_counter() - t0
    Delivery.objects.filter(dispatch=base).delete()

    # 2. The worker against bare POSTs to the same gateway.
    sink = Sink().start()
    for name, value in sink.settings().items():
        setattr(settings, name, value)
    settings.COMMS_RATE_LIMITS = {}
    sample = min(n, 2000)
    Delivery.objects.filter(dispatch=d).exclude(pk__in=list(
        Delivery.objects.filter(dispatch=d).order_by("pk").values_list("pk", flat=True)[:sample])).update(
        status="cancelled")
    t0 = time.perf_counter()
    SendWorker(batch=100, poll=0).run(once=True)
    t_worker = time.perf_counter() - t0
    sent = Delivery.objects.filter(dispatch=d, status__in=["sent", "delivered"]).count()
    assert sent == sample, sent
    t0 = time.perf_counter()
    with httpx.Client() as client:
        for i in range(sample):
            client.post(f"{sink.url}/sms", json={"to": f"199{i:08d}", "text": "x", "sign": "s", "out_id": f"b{i}"},
                        headers={"Authorization": f"Bearer {sink.state.sms_key}"})
    t_raw = time.perf_counter() - t0
    sink.stop()
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database {db}, {n} persons, {len(villages)} villages, load {os.getloadavg()[0]:.2f}")
    print(f"dispatch(): {t_dispatch * 1000:.0f} ms for {n} deliveries; bare bulk_create {t_bulk * 1000:.0f} ms; "
          f"ratio {t_dispatch / t_bulk:.2f}x")
    print(f"worker: {sample / t_worker:.0f} SMS/s ({t_worker:.2f} s for {sample}); bare POSTs {sample / t_raw:.0f}/s "
          f"(one pooled client, as the channels use); "
          f"ratio {t_worker / t_raw:.2f}x")


if __name__ == "__main__":
    main()
