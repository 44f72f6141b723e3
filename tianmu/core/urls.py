from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("events/", views.event_list, name="events"),
    path("events/stream", views.event_stream, name="event_stream"),
    path("events/catalogue/", views.event_catalogue, name="event_catalogue"),
    path("ops/events/", views.ops_events, name="ops_events"),
    # Any declared lifecycle's transition from a page button (core/workflow.py).
    path("wf/<str:key>/<int:pk>/<str:name>/", views.transition_view, name="transition"),
]
