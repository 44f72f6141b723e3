"""The demo step "warnings.decisions": after a storm, the drafts come from the real handler and the demo's
people review, approve (a second person), issue, update and cancel them through the services."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tianmu.core.choices import Role
from tianmu.core.models import User
from tianmu.sensing.services import ingest_messages
from tianmu.sensing.tests.conftest import base_time, make_sensor, make_station
from tianmu.warnings.choices import WarningState
from tianmu.warnings.demo import decisions_step
from tianmu.warnings.models import CapMessage, HazardWarning

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_people_decide_after_the_storm(world):
    from .test_from_alarms import seed_default_thresholds

    seed_default_thresholds()
    admin = world["users"]["admin"]
    User.objects.create(username="duty", role=Role.COMMANDER, region=world["district"])
    t0 = base_time()
    for i, region in enumerate((world["village_a"], world["village_b"])):
        station = make_station(admin, region, f"ST-D{i}")
        sensor = make_sensor(admin, station, f"RG-D{i}", valid_min=0, valid_max=300)
        body = {"readings": [{"ts": (t0 + j * timedelta(minutes=20)).isoformat(), "value": 10.0} for j in range(7)]}
        ingest_messages([(f"tianmu/v1/{station.code}/{sensor.code}/data", json.dumps(body).encode())])
    line = decisions_step(None)  # what `tianmu demo` prints
    drafts = HazardWarning.objects.filter(origin="alarm").count()
    assert drafts >= 2 and f"起草 {drafts} 份草稿" in line and "更新 1 份" in line and "解除 1 份" in line
    assert set(CapMessage.objects.values_list("msg_type", flat=True)) == {"Alert", "Update", "Cancel"}
    assert HazardWarning.objects.filter(state=WarningState.UPDATED).count() == 1
    issued = HazardWarning.objects.exclude(state=WarningState.DRAFT)
    assert all(w.approved_by.username == "admin" and w.issued_by.username == "duty" for w in issued
               if w.state != WarningState.UPDATED or w.approved_by)
    assert not HazardWarning.objects.filter(issued_by=None).exclude(state=WarningState.DRAFT).exists()
