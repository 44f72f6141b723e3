"""Helpers run inside `tianmu shell` subprocesses by test_crash.py: build a small world with one dispatch to many
persons in a fresh database, and report the deliveries as JSON."""

from __future__ import annotations

import json

from django.db import transaction


def build(n: int) -> None:
    from tianmu.comms.models import Recipient
    from tianmu.comms.services import dispatch
    from tianmu.core.models import Region, User

    with transaction.atomic():
        district = Region.objects.create(code="330112", name="临安区", level="district", lon=119.4, lat=30.2)
        town = Region.objects.create(code="330112001", name="甲镇", level="town", parent=district, lon=119.3, lat=30.2)
        village = Region.objects.create(code="330112001001", name="甲一村", level="village", parent=town, lon=119.3,
                                        lat=30.2)
        actor = User.objects.create(username="duty", role="commander", region=district)
        Recipient.objects.bulk_create([
            Recipient(code=f"ZR{i:04d}", name=f"责任人{i}", region=village, duty="village_lead",
                      mobile=f"1990112{i:04d}", channels="dingtalk,sms" if i % 3 == 0 else "sms,dingtalk")
            for i in range(n)])
        dispatch(actor, source="crash", subject_id="1", title="暴雨黄色预警", text="请做好防范。", level="yellow",
                 regions=[village.code], confirm=False)


def report() -> None:
    from tianmu.comms.models import Delivery

    rows = list(Delivery.objects.order_by("pk").values("pk", "dispatch_id", "channel", "status", "attempts", "reason",
                                                       "recipient__mobile"))
    for row in rows:
        row["key"] = f"tm{row['dispatch_id']}d{row['pk']}"
    print("REPORT" + json.dumps(rows, ensure_ascii=False))
