"""Live attention on every page: what apps declare (`TianmuApp.attention`), and the per-user "when did I last look"
marks behind their "new since you last looked" counters.

An app declares an `Attention(key, url, menu_key)`; `url` names a JSON view that answers
`GET ?after=<cursor>&levels=<a,b>` with `{"count": n, "cursor": c, "alerts": [{"id", "level", "title", "body",
"url"}]}`: `count` is what is new since the user last looked (the view's own page calls `mark_seen`), `alerts`
what arrived after the cursor at the levels asked for (the page rings and shows a desktop notification for
each), `cursor` where to resume. The first call, without `after`, returns the cursor and no alerts. base.html
draws one counter per source and polls them all (core/static/core/attention.js)."""

from __future__ import annotations

from datetime import datetime

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from .models import SeenMark

__all__ = ["mark_seen", "last_seen", "sources_for"]


def mark_seen(user, key: str, when: datetime | None = None) -> datetime:
    """Record that `user` has just looked at `key` (e.g. opened the alarm list). Not a domain change: no event,
    no history; a person's own reading position."""
    when = when or timezone.now()
    if getattr(user, "is_authenticated", False):
        SeenMark.objects.update_or_create(user=user, key=key, defaults={"seen_at": when})
    return when


def last_seen(user, key: str) -> datetime | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return SeenMark.objects.filter(user=user, key=key).values_list("seen_at", flat=True).first()


def sources_for(user) -> list[dict]:
    """The attention sources of the installed apps, for the page script (only for a signed-in person)."""
    from .plugins import platform_apps

    if not getattr(user, "is_authenticated", False):
        return []
    out = []
    for app in platform_apps():
        for source in app.attention:
            try:
                out.append({"key": source.key, "url": reverse(source.url), "page": reverse(source.page),
                            "label": str(source.label), "levels": list(source.levels),
                            "optional": list(source.optional_levels), "optional_label": str(source.optional_label)})
            except NoReverseMatch:
                continue
    return out
