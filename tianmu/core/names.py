"""How people and places are named on pages, in the admin and in exports: one helper each, so a name reads the
same everywhere.

- People: family name first, without a space, for Chinese names (陈立明, never 立明 陈); Latin-script names
  keep "given family". An account without a name shows its username.
- Places: a region's English name (`Region.name_en`, pinyin and kind, e.g. Longgang Town) on English pages when
  it has one, else its Chinese name."""

from __future__ import annotations

import re

from django.utils import translation

__all__ = ["person_name", "full_name", "region_name", "region_path", "english_region_name", "KIND_SUFFIXES"]

# The kind of a region, from the end of its Chinese name, as English pages say it (longest first).
KIND_SUFFIXES = (("街道", "Subdistrict"), ("社区", "Community"), ("居委会", "Community"), ("乡", "Township"),
                 ("镇", "Town"), ("村", "Village"), ("区", "District"), ("县", "County"), ("市", "City"))

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def full_name(first: str, last: str) -> str:
    """A person's name from its parts: 陈 + 立明 → 陈立明; Mary + Smith → Mary Smith."""
    first, last = (first or "").strip(), (last or "").strip()
    if not first or not last:
        return last or first
    if _CJK.search(first) or _CJK.search(last):
        return last + first
    return f"{first} {last}"


def person_name(user) -> str:
    """The name a page shows for a user (or '' for none)."""
    if user is None:
        return ""
    return full_name(getattr(user, "first_name", ""), getattr(user, "last_name", "")) or getattr(user, "username", "")


def region_name(region, language: str | None = None) -> str:
    """A region's name in the page's language."""
    if region is None:
        return ""
    language = language or translation.get_language() or ""
    if language.startswith("en") and getattr(region, "name_en", ""):
        return region.name_en
    return region.name


def region_path(region, language: str | None = None) -> str:
    """A village with its town (龙岗镇 · 青溪社区); a town or the district alone."""
    if region is None:
        return ""
    parent = getattr(region, "parent", None) if getattr(region, "level", "") == "village" else None
    name = region_name(region, language)
    return f"{region_name(parent, language)} · {name}" if parent is not None else name


def english_region_name(name: str) -> str:
    """A region's English name from its Chinese one: the pinyin of its stem, with an apostrophe where a syllable
    starting with a vowel would run into the one before (临安区 → Lin'an District), and its kind (锦城街道 →
    Jincheng Subdistrict, 龙岗镇 → Longgang Town, 青溪社区 → Qingxi Community). Editable afterwards
    (Region.name_en); a name that is not Chinese is kept."""
    from pypinyin import lazy_pinyin

    name = (name or "").strip()
    if not _CJK.search(name):
        return name
    stem, kind = name, ""
    for suffix, english in KIND_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem, kind = name[: -len(suffix)], english
            break
    syllables = [s for s in lazy_pinyin(stem) if s.strip()]
    word = ""
    for i, syl in enumerate(syllables):
        if i and syl[:1] in "aoe" and word[-1:].isalpha():
            word += "'"
        word += syl
    word = word[:1].upper() + word[1:]
    return f"{word} {kind}".strip()
