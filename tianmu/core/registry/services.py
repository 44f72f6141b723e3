"""The only code that changes records of any kind: validate, check scope, write in one transaction, record
history and emit an event. Pages, API, admin, imports and the demo generator all call these."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext_lazy as _

from ..errors import ScopeError, ServiceError, validation_messages
from ..events import emit
from ..geo import coordinate_problems, locator
from ..scope import can_write_region, check_role, check_write
from .forms import build_form, normalize_input, with_defaults

__all__ = ["validate_record", "create_record", "update_record", "delete_record", "record_snapshot",
           "bulk_create_records", "save_instance"]


def record_snapshot(kind, obj) -> dict:
    """Field values of a record as JSON-ready data (region as its code)."""
    opts = obj._meta
    data = {name: opts.get_field(name).value_from_object(obj) for name in kind.editable_fields()}
    if "region_code_" in obj.__dict__:
        data["region"] = obj.region_code_
    else:
        data["region"] = obj.region.code if obj.region_id else None
    for name in kind.link_fields():
        related = getattr(obj, name)
        data[name] = related.code if related is not None else None
    for key, value in list(data.items()):
        if hasattr(value, "isoformat"):
            data[key] = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            data[key] = str(value)
    return data


def validate_record(actor, kind, data: dict, *, instance=None, scope_errors_as_fields: bool = False):
    """Validate input for a new record (or changes to `instance`) and return the unsaved object.

    Raises ServiceError with per-field messages, or ScopeError when the record's region lies outside what
    the actor may change (as a field error on `region` when scope_errors_as_fields, for imports).
    """
    data = normalize_input(kind, data)
    if instance is not None:
        merged = record_snapshot(kind, instance)
        merged.update(data)
        data = merged
    else:
        data = with_defaults(kind, data)
    form = build_form(kind, data, instance=instance, actor=actor, limit_regions=False)
    errors: dict[str, list] = {}
    if not form.is_valid():
        for field, errs in form.errors.as_data().items():
            errors.setdefault(field, []).extend(msg for e in errs for msg in validation_messages(e))
    region = form.cleaned_data.get("region") if hasattr(form, "cleaned_data") else None
    if kind.placed():
        region = _place(data, region, errors)
    if region is not None and not can_write_region(actor, region):
        if scope_errors_as_fields:
            errors.setdefault("region", []).append(_("该区域不在您的管辖范围内"))
        else:
            check_write(actor, region)
    if errors:
        raise ServiceError(errors)
    obj = form.instance
    obj.region = region
    return obj


def _place(data: dict, region, errors: dict):
    """A placed record's coordinate checks; the region, located from the point when not given."""
    lon, lat = data.get("lon"), data.get("lat")
    if "lon" not in errors and "lat" not in errors:
        for name, problem in coordinate_problems(lon, lat).items():
            errors.setdefault(name, []).append(problem)
    if not errors:
        lon, lat = float(lon), float(lat)
        if region is None:
            region = locator.locate(lon, lat)
            if region is None:
                errors.setdefault("region", []).append(_("无法根据坐标确定所属区域,请填写区划代码"))
        elif not locator.contains(region, lon, lat):
            errors.setdefault("lon", []).append(_("坐标不在所选区域内,请核对经纬度或区划代码"))
    return region


def _save(actor, kind, obj, *, reason: str):
    obj._history_user = actor if getattr(actor, "pk", None) else None
    obj._change_reason = reason
    obj.save()


def create_record(actor, kind, data: dict):
    """Create a record of `kind` from field data (region as a code; for a placed kind optional if lon/lat
    given)."""
    check_role(actor)
    obj = validate_record(actor, kind, data)
    with transaction.atomic():
        _save(actor, kind, obj, reason="create")
        emit(kind.event_type("created"), actor=actor, region=obj.region, subject=kind.subject(obj),
             payload={"code": obj.code, "name": obj.name, "kind": kind.slug})
    return obj


def update_record(actor, kind, obj, data: dict):
    """Change fields of an existing record; both its old and new region must be in the actor's scope."""
    check_write(actor, obj.region)
    before = record_snapshot(kind, obj)
    obj = validate_record(actor, kind, data, instance=obj)
    after = record_snapshot(kind, obj)
    changes = {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}
    if not changes:
        return obj
    with transaction.atomic():
        _save(actor, kind, obj, reason="update")
        emit(kind.event_type("updated"), actor=actor, region=obj.region, subject=kind.subject(obj),
             payload={"code": obj.code, "name": obj.name, "kind": kind.slug, "changes": changes})
    return obj


def delete_record(actor, kind, obj) -> None:
    check_write(actor, obj.region)
    subject, payload = kind.subject(obj), {"code": obj.code, "name": obj.name, "kind": kind.slug}
    region = obj.region
    try:
        with transaction.atomic():
            obj._history_user = actor if getattr(actor, "pk", None) else None
            obj.delete()
            emit(kind.event_type("deleted"), actor=actor, region=region, subject=subject, payload=payload)
    except ProtectedError as exc:
        raise ServiceError({"__all__": [_("该记录仍被其他数据引用,不能删除")]}) from exc


def bulk_create_records(actor, kind, objects: list, *, event_type: str = "imported") -> int:
    """Write already-validated objects in one transaction with history and one summary event."""
    from simple_history.utils import bulk_create_with_history

    if not objects:
        return 0
    for obj in objects:
        if not can_write_region(actor, obj.region):
            raise ScopeError()
    with transaction.atomic():
        bulk_create_with_history(objects, kind.model, batch_size=500,
                                 default_user=actor if getattr(actor, "pk", None) else None,
                                 default_change_reason=event_type)
        by_town: dict[str, int] = {}
        for obj in objects:
            code = obj.region.code[:9]
            by_town[code] = by_town.get(code, 0) + 1
        emit(kind.event_type(event_type), actor=actor,
             region=getattr(actor, "region", None), subject=kind.slug,
             payload={"kind": kind.slug, "count": len(objects), "by_town": by_town})
    return len(objects)


def save_instance(actor, kind, obj, *, created: bool):
    """Save an object an admin form already validated: same scope check, history and event as the API."""
    check_write(actor, obj.region)
    if not created:
        original = kind.model.objects.select_related("region").get(pk=obj.pk)
        check_write(actor, original.region)
    with transaction.atomic():
        _save(actor, kind, obj, reason="admin")
        emit(kind.event_type("created" if created else "updated"), actor=actor, region=obj.region,
             subject=kind.subject(obj), payload={"code": obj.code, "name": obj.name, "kind": kind.slug})
    return obj
