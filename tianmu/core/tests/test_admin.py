"""The admin is scoped and saves through the same services (history user, events)."""

from __future__ import annotations

import pytest

from tianmu.conftest import record_data
from tianmu.core.models import Event
from tianmu.core.registry.kinds import kinds

KINDS = kinds()


@pytest.mark.parametrize("kind", KINDS, ids=[k.slug for k in KINDS])
def test_admin_pages_and_save_through_services(kind, world, records, client):
    admin = world["users"]["admin"]
    client.force_login(admin)
    meta = kind.model._meta
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    assert client.get(base).status_code == 200
    obj = records[kind.slug]["a"]
    r = client.get(f"{base}{obj.pk}/change/")
    assert r.status_code == 200
    form = r.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or value is False:
            continue
        data[name] = getattr(value, "pk", value)
    data.update({"name": "后台改名", "region": obj.region.pk})
    r = client.post(f"{base}{obj.pk}/change/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    obj.refresh_from_db()
    assert obj.name == "后台改名"
    assert obj.history.first().history_user == admin
    assert Event.objects.filter(type=kind.event_type("updated"), subject=f"{kind.label()}:{obj.pk}").exists()
    assert client.get(f"{base}{obj.pk}/history/").status_code == 200


def test_admin_is_for_staff_only(world, client):
    client.force_login(world["users"]["town_staff"])
    r = client.get("/admin/registry/shelter/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    _ = record_data
