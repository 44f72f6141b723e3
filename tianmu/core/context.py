"""Template context shared by every page: navigation of the registered record kinds, map settings."""

from django.conf import settings


def platform(request):
    from .registry.kinds import kinds

    return {
        "record_kinds": [{"slug": k.slug, "name": k.verbose_name_plural(), "color": k.color} for k in kinds()],
        "tile_url": settings.TILE_URL,
        "tile_attribution": settings.TILE_ATTRIBUTION,
        "district_name": settings.TIANMU["DISTRICT_NAME"],
    }
