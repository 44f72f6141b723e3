"""The API at /api/v1/: the core routes, the command map, and one router per registered record kind."""

from tianmu.commandmap.api import router as map_router
from tianmu.core.api import build_api, core_router
from tianmu.core.registry.api import record_routers
from tianmu.sensing.api import router as sensing_router

api = build_api()
api.add_router("/", core_router)
api.add_router("/map", map_router)
api.add_router("/sensing", sensing_router)
for prefix, router in record_routers():
    api.add_router(prefix, router)
