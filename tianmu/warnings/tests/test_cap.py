"""CAP 1.2: every issued, updated and cancelled warning validates against the OASIS XSD (lxml), with the
identifier pattern, Beijing time, zh-CN and en-US blocks, closed lat,lon polygons and GB/T 2260 geocodes; the
public feeds (Atom, JSON) and CAP files without login; imports of other authorities' alerts, good and bad."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from lxml import etree

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.warnings import services
from tianmu.warnings.cap import NS, XSD_PATH, schema
from tianmu.warnings.choices import Origin, WarningState
from tianmu.warnings.models import HazardWarning
from tianmu.warnings.queries import map_features

from .helpers import cap_xml, make_warning

pytestmark = pytest.mark.django_db
C = {"c": NS}
IDENTIFIER = re.compile(r"^330112\d{8}_\d{14}_\d$")


def parsed(message):
    root = etree.fromstring(message.xml.encode())
    assert schema().validate(root), schema().error_log
    return root


def test_the_schema_shipped_is_the_oasis_one():
    doc = etree.parse(str(XSD_PATH))
    assert doc.getroot().get("targetNamespace") == "urn:oasis:names:tc:emergency:cap:1.2"
    assert "Copyright OASIS Open 2010" in XSD_PATH.read_text()
    assert not schema().validate(etree.fromstring(b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>'))


def test_alert_update_and_cancel_validate_against_the_xsd(world, users):
    c1, c2 = users["commander"], users["commander_2"]
    poly = {"type": "Polygon", "coordinates": [[[119.28, 30.13], [119.32, 30.13], [119.32, 30.17], [119.28, 30.13]]]}
    first = make_warning(c1, world["village_a"], "issued", level="orange", approver=c2, polygon=poly)
    alert = parsed(first.messages.get())
    assert alert.findtext("c:msgType", namespaces=C) == "Alert"
    ident = alert.findtext("c:identifier", namespaces=C)
    assert IDENTIFIER.match(ident), ident
    assert alert.findtext("c:sent", namespaces=C).endswith("+08:00")
    infos = alert.findall("c:info", C)
    assert [i.findtext("c:language", namespaces=C) for i in infos] == ["zh-CN", "en-US"]
    zh, en = infos
    assert zh.findtext("c:severity", namespaces=C) == "Severe" and zh.findtext("c:headline", namespaces=C) == first.headline
    assert en.findtext("c:headline", namespaces=C).startswith("Orange")
    areas = zh.findall("c:area", C)
    assert areas[0].findtext("c:geocode/c:valueName", namespaces=C) == "GB/T 2260"
    assert areas[0].findtext("c:geocode/c:value", namespaces=C) == world["village_a"].code
    for polygon in zh.iterfind("c:area/c:polygon", C):
        pairs = polygon.text.split()
        assert len(pairs) >= 4 and pairs[0] == pairs[-1]
        lat, lon = map(float, pairs[0].split(","))
        assert 29 < lat < 31 and 118 < lon < 121  # lat first
    assert len(zh.findall("c:area", C)) == 2  # the village and the drawn polygon

    new = services.revise_warning(c1, first, {"level": "red"})
    for step, who in (("submit", c1), ("approve", c2), ("issue", c1)):
        new = getattr(services, step)(who, new)
    update = parsed(new.messages.get())
    assert update.findtext("c:msgType", namespaces=C) == "Update"
    sender, ref_id, sent = update.findtext("c:references", namespaces=C).split(",")
    assert (sender, ref_id) == (alert.findtext("c:sender", namespaces=C), ident)
    assert sent == alert.findtext("c:sent", namespaces=C)

    new = services.cancel(c1, new, note="雨停")
    cancel = parsed(new.messages.get(msg_type="Cancel"))
    assert cancel.findtext("c:msgType", namespaces=C) == "Cancel"
    assert len(cancel.findtext("c:references", namespaces=C).split()) == 2
    assert cancel.find("c:info/c:responseType", C).text == "AllClear"


def test_feeds_and_cap_files_are_public_cacheable_and_list_current_warnings_only(world, users, client):
    issued = make_warning(users["commander"], world["town_a"], "issued", headline="甲镇<暴雨>预警")
    draft = make_warning(users["commander"], world["town_a"], headline="草稿不公开")
    cancelled = make_warning(users["commander"], world["town_a"], "issued", headline="已解除的")
    services.cancel(users["commander"], cancelled, note="解除")
    anonymous = Client()
    r = anonymous.get("/warnings/feed.json")
    assert r.status_code == 200 and "public" in r["Cache-Control"]
    alerts = r.json()["alerts"]
    assert [a["id"] for a in alerts] == [issued.pk]
    assert draft.headline not in r.content.decode()
    cap = anonymous.get(alerts[0]["cap"])
    assert cap.status_code == 200 and cap["Content-Type"].startswith("application/cap+xml")
    assert schema().validate(etree.fromstring(cap.content))
    atom = anonymous.get("/warnings/feed.atom")
    assert atom.status_code == 200 and "public" in atom["Cache-Control"]
    feed = etree.fromstring(atom.content)
    entries = feed.findall("{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 1
    link = entries[0].find("{http://www.w3.org/2005/Atom}link")
    assert link.get("type") == "application/cap+xml" and link.get("href") == alerts[0]["cap"]
    assert entries[0].findtext("{http://www.w3.org/2005/Atom}title") == "甲镇<暴雨>预警"  # escaped, parsed back
    assert anonymous.get("/warnings/").status_code == 302  # the rest needs a login


def test_the_feed_is_size_limited(world, users, settings):
    settings.WARNINGS_FEED_MAX = 2
    for i in range(3):
        make_warning(users["commander"], world["town_a"], "issued", headline=f"预警{i}")
    assert len(Client().get("/warnings/feed.json").json()["alerts"]) == 2


# ---- imports -------------------------------------------------------------------------------------------------

def test_a_foreign_alert_is_imported_read_only_and_shown_on_the_map(world, users):
    w = services.import_cap(users["commander"], cap_xml(code=world["village_a"].code))
    assert w.origin == Origin.EXTERNAL and w.state == WarningState.ISSUED and w.level == "orange"
    assert w.hazard_type == "rainstorm" and list(w.areas.all()) == [world["village_a"]]
    assert w.external_sender == "杭州市气象台" and w.polygon["type"] == "Polygon"
    features = map_features(users["commander"])["features"]
    assert {f["properties"]["id"] for f in features} == {w.pk}
    assert all(f["properties"]["external"] for f in features)
    with pytest.raises(ServiceError):
        services.cancel(users["commander"], w, note="x")
    with pytest.raises(ServiceError):
        services.edit_warning(users["commander"], w, {"headline": "x"})
    with pytest.raises(ServiceError):
        services.revise_warning(users["commander"], w)


def test_a_foreign_cancel_ends_the_alert_it_references(world, users):
    first_xml = cap_xml(identifier="A1", code=world["village_a"].code)
    first = services.import_cap(users["commander"], first_xml)
    sent = etree.fromstring(first_xml).findtext("c:sent", namespaces=C)
    cancel = services.import_cap(users["commander"], cap_xml(identifier="A2", msg_type="Cancel",
                                                             references=f"hzqx.zj.gov.cn,A1,{sent}",
                                                             code=world["village_a"].code))
    first.refresh_from_db()
    assert first.state == WarningState.UPDATED and cancel.state == WarningState.CANCELLED
    assert cancel.previous == first
    assert map_features(users["commander"])["features"] == []


@pytest.mark.parametrize(("data", "needle"), [
    (b"not xml at all", "XML"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"><identifier>x</identifier></alert>', "CAP 1.2"),
    (cap_xml().replace(b"<sender>hzqx.zj.gov.cn</sender>", b""), "CAP 1.2"),
    (cap_xml().replace(b"<severity>Severe</severity>", b"<severity>Terrible</severity>"), "CAP 1.2"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>', "DTD"),
    (cap_xml(polygon="30.1,119.3 30.2,119.3 30.2,119.4"), "多边形"),
    (cap_xml(code="310101001001", lon=121.47, lat=31.23), "不在本区"),
    (cap_xml(msg_type="Cancel", references="hzqx.zj.gov.cn,NOPE,2026-07-30T08:00:00+08:00"), "没有导入过"),
    (cap_xml(severity="Unknown"), "等级"),
])
def test_bad_files_are_refused_with_a_clear_message(world, users, data, needle):
    with pytest.raises(ServiceError) as err:
        services.import_cap(users["commander"], data)
    messages = err.value.as_list()
    assert messages[0]["field"] == "file" and needle in messages[0]["message"], messages
    assert messages[0]["message_en"] != messages[0]["message"]
    assert not HazardWarning.objects.exists()


def test_the_same_alert_twice_and_oversized_files_are_refused(world, users, settings):
    services.import_cap(users["commander"], cap_xml(code=world["village_a"].code))
    with pytest.raises(ServiceError):
        services.import_cap(users["commander"], cap_xml(code=world["village_a"].code))
    settings.WARNINGS_CAP_MAX_BYTES = 200
    with pytest.raises(ServiceError) as err:
        services.import_cap(users["commander"], cap_xml(identifier="other", code=world["village_a"].code))
    assert "KB" in err.value.as_list()[0]["message"]


def test_only_district_writers_import(world, users):
    for role in ("town_staff", "village_responder", "leader", "api_client"):
        with pytest.raises(ScopeError):
            services.import_cap(users[role], cap_xml(code=world["village_a"].code))


def test_import_through_api_and_page(world, users):
    client = Client()
    client.force_login(users["commander"])
    r = client.post("/api/v1/warnings/import", {"file": SimpleUploadedFile("a.xml", cap_xml(code=world["village_a"].code))})
    assert r.status_code == 201, r.content
    assert r.json()["origin"] == "external"
    r = client.post("/api/v1/warnings/import", {"file": SimpleUploadedFile("a.xml", b"<x/>")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = client.post("/warnings/import/", {"file": SimpleUploadedFile("a.xml", b"<x/>")})
    assert r.status_code == 422 and "CAP" in r.content.decode()
    r = client.post("/warnings/import/", {"file": SimpleUploadedFile("b.xml", cap_xml(identifier="B", code=world["village_a"].code))})
    assert r.status_code == 302
    page = client.get(r["Location"]).content.decode()
    assert "杭州市气象台" in page
    received = HazardWarning.objects.get(external_identifier="B").messages.get()
    assert Client().get(f"/warnings/cap/{received.pk}.xml").status_code == 404  # not ours to republish
    assert client.get(f"/warnings/cap/{received.pk}.xml").status_code == 200
    assert json.loads(client.get("/warnings/feed.json").content)["alerts"] == []


def test_control_characters_people_type_never_break_a_cap_message(world, users):
    w = make_warning(users["commander"], world["town_a"], "issued", headline="甲镇\x1f预警", description="内容\x0b")  # NUL never arrives: core's middleware refuses it
    w = services.cancel(users["commander"], w, note="0\x1f0")
    for message in w.messages.all():
        parsed(message)
    assert "\x1f" not in w.messages.get(msg_type="Cancel").xml
