"""{% nearby_panel lon lat title %}: the 周边资源 panel at a point, for any page (a sensor's, an alarm's, a
record's). The panel's script (commandmap/nearby.js) asks GET /api/v1/map/nearby and lets the user change the
radius; nothing is read on the server."""

from __future__ import annotations

import math

from django import template

from tianmu.commandmap.views import nearby_config

register = template.Library()


@register.inclusion_tag("commandmap/_nearby.html", takes_context=True)
def nearby_panel(context, lon, lat, title="", exclude=""):
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        return {"panel": None}
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return {"panel": None}
    return {"panel": nearby_config(lon, lat, title=title, exclude=exclude)}
