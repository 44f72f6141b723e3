"""The API at /api/v1/: the routers every installed app declares (core.plugins.api_routers)."""

from tianmu.core.api import build_api
from tianmu.core.plugins import api_routers

api = build_api()
for prefix, router in api_routers():
    api.add_router(prefix, router)
