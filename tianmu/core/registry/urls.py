from django.urls import path

from . import views

app_name = "records"

urlpatterns = [
    path("<slug:slug>/", views.record_list, name="list"),
    path("<slug:slug>/new/", views.record_create, name="create"),
    path("<slug:slug>/import/", views.record_import, name="import"),
    path("<slug:slug>/export.xlsx", views.record_export_xlsx, name="export_xlsx"),
    path("<slug:slug>/export.geojson", views.record_export_geojson, name="export_geojson"),
    path("<slug:slug>/template.xlsx", views.record_template, name="template"),
    path("<slug:slug>/<int:pk>/", views.record_detail, name="detail"),
    path("<slug:slug>/<int:pk>/edit/", views.record_edit, name="edit"),
    path("<slug:slug>/<int:pk>/delete/", views.record_delete, name="delete"),
]
