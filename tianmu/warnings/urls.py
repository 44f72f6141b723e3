from django.urls import path

from . import views

app_name = "warnings"

urlpatterns = [
    path("", views.list_page, name="list"),
    path("new/", views.form_page, name="new"),
    path("import/", views.import_page, name="import"),
    path("<int:pk>/", views.detail_page, name="detail"),
    path("<int:pk>/edit/", views.form_page, name="edit"),
    path("<int:pk>/revise/", views.revise, name="revise"),
    path("<int:pk>/act/<str:name>/", views.act, name="act"),
    # Public, without login: the CAP files we published and the feeds of current warnings.
    path("cap/<int:pk>.xml", views.cap_file, name="cap"),
    path("feed.atom", views.feed_atom, name="feed_atom"),
    path("feed.json", views.feed_json, name="feed_json"),
]
