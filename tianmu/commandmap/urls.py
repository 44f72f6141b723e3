from django.urls import path

from . import views

app_name = "commandmap"

urlpatterns = [
    path("", views.index, name="index"),
    path("nearby/", views.nearby_page, name="nearby"),
]
