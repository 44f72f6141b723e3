from django.urls import path
from django.utils.translation import gettext_lazy as _

from tianmu.core.views import transition_view

from . import views

# The alarm lifecycle's page buttons (sensing/lifecycles.py) post here; the generic view makes the transition.
ACK = {"key": "sensing.alarm", "name": "acknowledge", "done": _("告警已确认"), "fallback": "/sensing/alarms/"}
CLOSE = {"key": "sensing.alarm", "name": "close", "done": _("告警已关闭"), "fallback": "/sensing/alarms/"}

app_name = "sensing"

urlpatterns = [
    path("", views.latest_page, name="latest"),
    path("alarms/", views.alarm_page, name="alarms"),
    path("alarms/export.xlsx", views.alarm_export, name="alarms_export"),
    path("attention/", views.attention, name="attention"),
    path("alarms/<int:pk>/", views.alarm_detail_page, name="alarm"),
    path("alarms/<int:pk>/acknowledge/", transition_view, ACK, name="acknowledge"),
    path("alarms/<int:pk>/close/", transition_view, CLOSE, name="close"),
    path("alarms/by-station/<path:key>/acknowledge/", views.acknowledge_station_view, name="acknowledge_station"),
    path("sensors/<int:pk>/", views.sensor_page, name="sensor"),
    path("dead-letters/", views.dead_letter_page, name="dead_letters"),
    path("rainfall/", views.rainfall_page, name="rainfall"),
    path("rainfall/export.xlsx", views.rainfall_export, name="rainfall_export"),
    path("rainfall/areal/", views.areal_page, name="areal"),
    path("rainfall/areal/export.xlsx", views.areal_export, name="areal_export"),
    path("rainfall/basins/<str:code>/", views.basin_rain_page, name="basin_rain"),
    path("basins/import/", views.basin_import_page, name="basin_import"),
    path("basins/export.geojson", views.basin_export, name="basin_export"),
]
