from django.urls import path

from . import views

app_name = "sensing"

urlpatterns = [
    path("", views.latest_page, name="latest"),
    path("alarms/", views.alarm_page, name="alarms"),
    path("alarms/<int:pk>/acknowledge/", views.acknowledge_view, name="acknowledge"),
    path("alarms/<int:pk>/close/", views.close_view, name="close"),
    path("alarms/by-station/<path:key>/acknowledge/", views.acknowledge_station_view, name="acknowledge_station"),
    path("sensors/<int:pk>/", views.sensor_page, name="sensor"),
    path("dead-letters/", views.dead_letter_page, name="dead_letters"),
]
