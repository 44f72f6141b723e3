"""Admin for every record kind: scoped lists, history, and saves through the same services as the API."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from ..scope import can_write_region, scope_queryset
from .forms import limit_text
from .kinds import kinds
from .services import delete_record, save_instance

__all__ = ["RecordAdmin", "register_record_admins"]


class RecordAdmin(SimpleHistoryAdmin):
    kind = None
    search_fields = ("code", "name")
    list_select_related = ("region",)
    autocomplete_fields = ("region",)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request.user,
                              up_the_chain=self.kind is not None and self.kind.serves_below)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        limit_text(db_field, formfield)  # the same text limit as the one validation path
        return formfield

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can_write_region(request.user, obj.region))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or can_write_region(request.user, obj.region))

    def save_model(self, request, obj, form, change):
        save_instance(request.user, self.kind, obj, created=not change)

    def delete_model(self, request, obj):
        delete_record(request.user, self.kind, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            delete_record(request.user, self.kind, obj)


def register_record_admins(site=admin.site) -> None:
    for kind in kinds():
        if site.is_registered(kind.model):
            continue
        attrs = {
            "kind": kind,
            "list_display": tuple(c for c in kind.list_columns if c not in kind.computed),
            "list_filter": tuple(kind.filter_fields),
            "search_fields": tuple(kind.search_fields),
        }
        site.register(kind.model, type(f"{kind.model.__name__}Admin", (RecordAdmin,), attrs))
