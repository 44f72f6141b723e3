"""The list and detail API read records as values rows (`record_rows`), not model instances: the JSON must
be exactly what `serialize` gives for the same record (same keys, same order, same values), the count must be
right on every page, and a page must cost one query."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tianmu.conftest import OUTSIDE_MARK, record_data
from tianmu.core.registry.api import serialize
from tianmu.core.registry.kinds import kind_for_model, kinds, mask
from tianmu.core.registry.queries import visible
from tianmu.core.registry.services import create_record

KINDS = kinds()
ids = [k.slug for k in KINDS]


def _link_everything(records):
    """Set every link field (a station's hazard, a sensor's station) of the 'a' records, so that both a set
    and an unset link ('b') are compared."""
    for slug, pair in records.items():
        kind = next(k for k in KINDS if k.slug == slug)
        for name in kind.link_fields():
            target = kind_for_model(kind.field(name).related_model)
            if target is not None:
                kind.model.objects.filter(pk=pair["a"].pk).update(**{name: records[target.slug]["a"]})


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_list_and_detail_are_serialize_exactly(kind, world, records, client):
    _link_everything(records)
    admin = world["users"]["admin"]
    # Records held by the district itself (no town) and by a town, as well as the villages' ones.
    create_record(admin, kind, record_data(kind, world["district"], "d"))
    create_record(admin, kind, record_data(kind, world["town_b"], "t"))
    client.force_login(world["users"]["leader"])
    expected = [serialize(kind, obj) for obj in visible(world["users"]["leader"], kind).order_by("code")]
    for row in expected:  # personal fields the leader may not see come masked (RecordKind.personal_fields)
        for name in kind.masked_fields(world["users"]["leader"]):
            row[name] = mask(row[name]) if row[name] else row[name]
    assert len(expected) == 4 and any(e["town"] is None for e in expected)
    assert any(e["region"] == e["town"] == world["town_b"].code for e in expected)

    r = client.get(f"/api/v1/{kind.slug}/", {"page_size": 50})
    assert r.status_code == 200, r.content
    body = r.json()
    assert list(body) == ["count", "page", "page_size", "results"]
    assert body["count"] == 4 and body["page"] == 1 and body["page_size"] == 50
    # Same values and the same key order (json.dumps keeps insertion order).
    assert json.dumps(body["results"], ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)

    for exp in expected:
        r = client.get(f"/api/v1/{kind.slug}/{exp['id']}")
        assert r.status_code == 200, r.content
        assert json.dumps(r.json(), ensure_ascii=False) == json.dumps(exp, ensure_ascii=False)


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_list_count_on_every_page(kind, world, client):
    admin = world["users"]["admin"]
    for i in range(5):
        create_record(admin, kind, record_data(kind, world["village_a"], f"p{i}"))
    for i in range(2):
        create_record(admin, kind, record_data(kind, world["village_b"], f"p{i}"))

    def page(user, **params):
        client.force_login(world["users"][user])
        r = client.get(f"/api/v1/{kind.slug}/", params)
        assert r.status_code == 200, r.content
        body = r.json()
        return body["count"], [row["code"] for row in body["results"]]

    assert [page("leader", page=n, page_size=2) for n in (1, 2, 3, 4, 5)] == [
        (7, _codes(kind, "leader", world)[0:2]), (7, _codes(kind, "leader", world)[2:4]),
        (7, _codes(kind, "leader", world)[4:6]), (7, _codes(kind, "leader", world)[6:7]), (7, [])]
    assert page("leader", page_size=7)[0] == 7 and page("leader", page=2, page_size=7) == (7, [])
    assert page("leader", page_size=1000)[0] == 7
    # Scoped: town A's staff count only their own, on every page, also past the end.
    assert [page("town_staff", page=n, page_size=2)[0] for n in (1, 2, 3, 4)] == [5, 5, 5, 5]
    assert all(OUTSIDE_MARK not in code for n in (1, 2, 3) for code in page("town_staff", page=n, page_size=2)[1])
    assert page("other_town_staff", page_size=1) == (2, _codes(kind, "other_town_staff", world)[:1])
    # Filtered: the count follows the filter; nothing found is 0.
    assert page("leader", q=OUTSIDE_MARK, page_size=1)[0] == 2
    assert page("leader", region=world["town_a"].code, page=3, page_size=2)[0] == 5
    assert page("leader", q="no-such-record-anywhere") == (0, [])


def _codes(kind, user, world) -> list[str]:
    return list(visible(world["users"][user], kind).order_by("code").values_list("code", flat=True))


@pytest.mark.parametrize("kind", KINDS, ids=ids)
def test_a_page_is_one_query(kind, world, records, client):
    client.force_login(world["users"]["town_staff"])
    client.get(f"/api/v1/{kind.slug}/")  # session, user and town names loaded once
    table = kind.model._meta.db_table
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(f"/api/v1/{kind.slug}/", {"page_size": 1})
    assert r.status_code == 200 and r.json()["count"] == 1
    assert len([q for q in ctx.captured_queries if f'"{table}"' in q["sql"]]) == 1
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(f"/api/v1/{kind.slug}/{records[kind.slug]['a'].pk}")
    assert r.status_code == 200
    assert len([q for q in ctx.captured_queries if f'"{table}"' in q["sql"]]) == 1
