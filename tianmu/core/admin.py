"""Admin for regions, users, API tokens, the event log and dead letters; record kinds register themselves."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from .models import ApiToken, DeadLetter, Event, Region, User
from .scope import scope_q, scope_queryset

admin.site.site_header = _("天目应急指挥平台 · 管理后台")
admin.site.site_title = _("天目")


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "level", "kind", "parent", "population", "households")
    list_filter = ("level",)
    search_fields = ("code", "name")
    exclude = ("boundary",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(scope_q(request.user, "code"))


@admin.register(User)
class TianmuUserAdmin(UserAdmin):
    list_display = ("username", "last_name", "first_name", "role", "region", "is_active")
    list_filter = ("role", "is_active")
    fieldsets = UserAdmin.fieldsets + ((_("角色与区域"), {"fields": ("role", "region", "phone", "title")}),)
    autocomplete_fields = ("region",)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "type", "subject", "region_code", "actor")
    list_filter = ("type",)
    search_fields = ("type", "subject")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user, "region_code")


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "source", "key", "reason", "resolved")
    list_filter = ("source", "resolved")


