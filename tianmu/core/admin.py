"""Admin for regions, users, API tokens, the event log and dead letters; record kinds register themselves.

Staff who are not superusers administer by delegation, bounded by the permission table (core/scope.py): users and
API tokens of accounts they may manage (`users.manage` in their home region, roles no higher than their own, never
superuser or staff accounts other than their own), saved through core/accounts.py; regions and groups read-only;
dead letters only with `operations`. Django's own model permissions still decide whether a page opens at all.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from . import accounts
from .models import ApiToken, DeadLetter, Event, Region, User
from .scope import (
    action_prefix,
    assignable_roles,
    can,
    can_manage_user,
    managed_users_q,
    scope_q,
    scope_queryset,
    users_in_reach_q,
)

admin.site.site_header = _("天目应急指挥平台 · 管理后台")
admin.site.site_title = _("天目")


class SuperuserChangesOnly:
    """Everyone with the view permission may look; only superusers add, change or delete."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Region)
class RegionAdmin(SuperuserChangesOnly, admin.ModelAdmin):
    """Region codes are the scope itself: a delegate who could edit one could widen their own reach."""

    list_display = ("code", "name", "level", "kind", "parent", "population", "households")
    list_filter = ("level",)
    search_fields = ("code", "name")
    exclude = ("boundary",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.filter(scope_q(request.user, "code"))


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class TianmuGroupAdmin(SuperuserChangesOnly, GroupAdmin):
    """Groups carry Django permissions: only superusers give them."""


class SuperuserOnly:
    """The login throttle's records (django-axes) name every account and address in the district, and deleting
    one unlocks an account: superusers only, whatever permissions a delegate holds."""

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


# axes comes before tianmu.core in INSTALLED_APPS, so admin autodiscovery has registered its admins by now.
for _model, _admin in list(admin.site._registry.items()):
    if _model._meta.app_label == "axes":
        admin.site.unregister(_model)
        admin.site.register(_model, type(type(_admin).__name__, (SuperuserOnly, type(_admin)), {}))


def _may_manage(request) -> bool:
    return action_prefix(request.user, "users.manage") is not None


def _manageable_regions(request):
    prefix = action_prefix(request.user, "users.manage")
    if prefix is None:
        return Region.objects.none()
    return Region.objects.filter(code__startswith=prefix) if prefix else Region.objects.all()


class UserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "role", "region")


@admin.register(User)
class TianmuUserAdmin(UserAdmin):
    list_display = ("username", "name", "role", "region", "is_active", "is_staff")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "last_name", "first_name", "phone")
    fieldsets = UserAdmin.fieldsets + ((_("角色与区域"), {"fields": ("role", "region", "phone", "title")}),)
    add_form = UserCreationForm
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1",
                                                               "password2", "role", "region")}),)
    autocomplete_fields = ("region",)

    @admin.display(description=_("姓名"), ordering="last_name")
    def name(self, obj):
        return obj.get_full_name()  # family name first (core/names.py)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(users_in_reach_q(request.user))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, *accounts.PRIVILEGE_FIELDS, "last_login", "date_joined")

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role":
            allowed = set(assignable_roles(request.user))
            kwargs["choices"] = [(v, label) for v, label in db_field.choices if v in allowed]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "region":
            kwargs["queryset"] = _manageable_regions(request)
            kwargs["required"] = not request.user.is_superuser
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and _may_manage(request)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj) and _may_manage(request)
        return allowed and (obj is None or can_manage_user(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj) and _may_manage(request)
        return allowed and (obj is None or (obj.pk != request.user.pk and can_manage_user(request.user, obj)))

    def save_model(self, request, obj, form, change):
        accounts.save_user(request.user, obj, created=not change, fields=form.changed_data)

    def delete_model(self, request, obj):
        accounts.delete_user(request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.filter(managed_users_q(request.user)).exclude(pk=request.user.pk):
            accounts.delete_user(request.user, obj)

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            request._tianmu_password_view = True
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        if getattr(request, "_tianmu_password_view", False):
            accounts.password_changed(request.user, obj)
        return super().log_change(request, obj, message)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked")
    list_filter = ("revoked",)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    fields = ("user", "name", "expires_at", "revoked", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(users_in_reach_q(request.user, "user"))

    def get_fields(self, request, obj=None):
        return self.fields if obj is not None else ("user", "name", "expires_at")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "user") if obj is not None else fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(managed_users_q(request.user)).select_related("region")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and _may_manage(request)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj) and _may_manage(request)
        return allowed and (obj is None or can_manage_user(request.user, obj.user))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj) and _may_manage(request)
        return allowed and (obj is None or can_manage_user(request.user, obj.user))

    def save_model(self, request, obj, form, change):
        if change:
            accounts.save_token(request.user, obj, fields=form.changed_data)
            return
        key = accounts.issue_token(request.user, obj)
        messages.warning(request, _("接口令牌已签发,请立即复制,此后不再显示: %(key)s") % {"key": key})

    def delete_model(self, request, obj):
        accounts.delete_token(request.user, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("user").filter(managed_users_q(request.user, "user")):
            accounts.delete_token(request.user, obj)


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
    """Dead letters hold whole events and messages of every region: operations staff only (district writers)."""

    list_display = ("id", "created_at", "source", "key", "reason", "resolved")
    list_filter = ("source", "resolved")

    def _operations(self, request) -> bool:
        return can(request.user, "operations")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if self._operations(request) else qs.none()

    def has_module_permission(self, request):
        return self._operations(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._operations(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._operations(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._operations(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._operations(request) and super().has_delete_permission(request, obj)
