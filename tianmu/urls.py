"""Root URLconf: Django's own pages, the API, and the page URLs every installed app declares."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from tianmu.api import api
from tianmu.core.plugins import url_includes
from tianmu.core.registry.admin import register_record_admins

# Every declared record kind gets its admin here, once all apps are loaded (no per-app admin.py needed).
register_record_admins()

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="core/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False), name="api_docs"),
    path("favicon.ico", RedirectView.as_view(url="/static/core/favicon.svg", permanent=True)),
    *(path(prefix, include(module)) for prefix, module in url_includes()),
]

# The platform's own error pages (also with DEBUG on: core.middleware.ErrorPagesMiddleware).
handler403 = "tianmu.core.middleware.permission_denied"
handler404 = "tianmu.core.middleware.page_not_found"
handler500 = "tianmu.core.middleware.server_error"
