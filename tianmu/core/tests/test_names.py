"""Names read the same everywhere: family name first for Chinese names (陈立明, never 立明 陈), one helper used by
pages, the admin and exports; regions in the page's language."""

from __future__ import annotations

import pytest
from django.utils import translation

from tianmu.core.models import Region, User
from tianmu.core.names import full_name, person_name, region_name, region_path

pytestmark = pytest.mark.django_db


def test_full_names():
    assert full_name("立明", "陈") == "陈立明"
    assert full_name("Mary", "Smith") == "Mary Smith"
    assert full_name("", "区林业水利局") == "区林业水利局" and full_name("晓燕", "") == "晓燕"
    assert full_name("  立明 ", " 陈") == "陈立明"


def test_users_everywhere(client, world):
    admin = world["users"]["admin"]
    chen = User.objects.create(username="duty2", role="commander", region=world["district"], last_name="陈",
                               first_name="立明")
    assert str(chen) == "陈立明" == chen.get_full_name() == chen.display_name == person_name(chen)
    assert person_name(None) == "" and str(User(username="nameless")) == "nameless"
    client.force_login(chen)
    assert "陈立明" in client.get("/events/").content.decode() and "立明 陈" not in client.get("/events/").content.decode()
    client.force_login(admin)
    listing = client.get("/admin/core/user/").content.decode()
    assert "陈立明" in listing and "立明 陈" not in listing


def test_region_names_follow_the_language(world):
    town = world["town_a"]
    assert town.name_en == "Jia Town"  # given on save, from the pinyin of 甲镇
    village = world["village_a"]
    village.name_en = ""
    assert region_name(town, "zh-hans") == "甲镇" and region_name(town, "en") == "Jia Town"
    assert region_name(village, "en") == "甲一村"  # no English name yet: the Chinese one
    village.parent = town
    with translation.override("en"):
        assert region_path(village) == "Jia Town · 甲一村"
    assert region_path(Region(code="330112", name="临安区", level="district")) == "临安区"
