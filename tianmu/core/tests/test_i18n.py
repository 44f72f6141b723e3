"""The English catalogue is complete and compiled (source strings are Chinese)."""

from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "en" / "LC_MESSAGES"


def test_every_entry_is_translated_and_compiled():
    po = polib.pofile(str(LOCALE / "django.po"))
    assert po.untranslated_entries() == [] and po.fuzzy_entries() == []
    mo = polib.mofile(str(LOCALE / "django.mo"))
    compiled = {(e.msgctxt, e.msgid): e.msgstr or e.msgstr_plural for e in mo}
    for entry in po.translated_entries():
        assert (entry.msgctxt, entry.msgid) in compiled, f"django.mo is older than django.po: {entry.msgid}"
