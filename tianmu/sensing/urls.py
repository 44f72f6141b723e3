from django.urls import path

from . import views

app_name = "sensing"

urlpatterns = [
    path("", views.latest_page, name="latest"),
    path("alarms/", views.alarm_page, name="alarms"),
    path("alarms/<int:pk>/<str:action>/", views.alarm_action, name="alarm_action"),
]
