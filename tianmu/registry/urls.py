from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("shelters/<int:pk>/availability/", views.availability_post, name="shelter_availability"),
]
