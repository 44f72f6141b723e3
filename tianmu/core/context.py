"""Template context shared by every page: the menu the installed apps declare, map settings."""

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def _menu(request) -> list[dict]:
    """The top menu for this user: every app's MenuItem it may see; the "records" entry opens onto the
    declared record kinds."""
    from .plugins import menu_for
    from .registry.kinds import kinds

    user = getattr(request, "user", None)
    out = []
    for item in menu_for(user):
        entry = {"key": item.key, "label": item.label, "href": "", "children": []}
        if item.key == "records":
            entry["children"] = [{"label": k.verbose_name_plural(), "href": reverse("records:list", args=[k.slug]),
                                  "color": k.color} for k in kinds()]
        else:
            try:
                entry["href"] = reverse(item.url)
            except NoReverseMatch:
                continue
        out.append(entry)
    return out


def platform(request):
    from .attention import sources_for

    user = getattr(request, "user", None)
    return {
        "attention_sources": sources_for(user) if user is not None else [],
        "attention_poll": getattr(settings, "TIANMU_ATTENTION_POLL_SECONDS", 15),
        "menu": _menu(request) if getattr(getattr(request, "user", None), "is_authenticated", False) else [],
        "tile_url": settings.TILE_URL,
        "tile_attribution": settings.TILE_ATTRIBUTION,
        "district_name": settings.TIANMU["DISTRICT_NAME"],
    }
