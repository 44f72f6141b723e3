"""River basins from a GeoJSON FeatureCollection (`import_basins`): every feature is checked — its outline
(basins.outline_problems: valid, inside the district, size and vertex limits), its code (unique in the file),
its parent (in the file or already registered and readable), its fields and its region (the record kinds' form
and scope checks) — and nothing is written unless every feature passes. A feature whose code is registered
changes that basin (new / changed / unchanged, as the Excel import reports). One transaction, history on every
basin, one `sensing.basin.imported` event.

Properties read: code, name (required), name_en, river, system, parent (a basin code), region (a region code;
default the district: a basin that crosses towns belongs to the district), contact, phone, notes.
"""

from __future__ import annotations

import json

import shapely
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from tianmu.core.errors import ScopeError, ServiceError
from tianmu.core.events import emit
from tianmu.core.models import Region
from tianmu.core.registry.io import ImportReport
from tianmu.core.registry.kinds import get_kind
from tianmu.core.registry.services import CODE_IN_USE, record_snapshot, validate_record
from tianmu.core.scope import can_write_region, check
from tianmu.core.sheets import message, mib

from ..basins import area_km2, district_shape, outline_problems, outline_text, visible_basins
from ..conf import conf
from ..models import Basin

__all__ = ["import_basins", "PROPERTIES"]

PROPERTIES = ("code", "name", "name_en", "river", "system", "parent", "region", "contact", "phone", "notes")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _parse(data: bytes, report: ImportReport) -> list | None:
    """The file's features, or None after reporting why the file as a whole is refused."""
    most = int(conf("SENSING_BASIN_MAX_BYTES"))
    if len(data) > most:
        report.add(None, None, "file", message(_("文件超过 %(max)s MB"), max=mib(most)))
        return None
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting too deep to parse
        report.add(None, None, "file", _("不是有效的 GeoJSON(应为 UTF-8 编码的 JSON)"))
        return None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"),
                                                                                              list):
        report.add(None, None, "file", _("应为 GeoJSON FeatureCollection"))
        return None
    crs = (doc.get("crs") or {}).get("properties", {}).get("name", "") if isinstance(doc.get("crs"), dict) else ""
    if crs and not any(s in str(crs) for s in ("4326", "CRS84", "4490")):
        report.add(None, None, "file", _("坐标系应为 WGS84(EPSG:4326)或 CGCS2000 经纬度"))
        return None
    features = doc["features"]
    if len(features) > int(conf("SENSING_BASIN_MAX_FEATURES")):
        report.add(None, None, "file", message(_("要素超过 %(max)s 个"), max=conf("SENSING_BASIN_MAX_FEATURES")))
        return None
    return features


def _within_region(shape, region) -> bool:
    """Whether a town's (or village's) own basin lies inside that region, with the district's tolerance."""
    boundary = Region.objects.filter(pk=region.pk).values_list("boundary", flat=True).first()
    if not boundary:
        return True
    area = shapely.from_geojson(outline_text(boundary))
    area = area if area.is_valid else shapely.make_valid(area)
    outside = shapely.difference(shape, area.buffer(float(conf("SENSING_BASIN_OUTSIDE_M")) / 111_320.0))
    return outside.is_empty or outside.area <= 0


def import_basins(actor, data: bytes, *, dry_run: bool = True) -> ImportReport:
    """Check every feature of a GeoJSON FeatureCollection of basins; write them all, in one transaction, only
    if all pass and not `dry_run`. Rows in the report are the features' 1-based positions."""
    check(actor, "sensing.basins.import")
    kind = get_kind("basins")
    report = ImportReport(dry_run=dry_run)
    features = _parse(data, report)
    if features is None:
        return report
    report.rows = len(features)
    district = district_shape()
    district_code = Region.objects.filter(level="district").values_list("code", flat=True).first()
    existing = {b.code: b for b in Basin.objects.select_related("region", "parent")
                .filter(code__in=[_text((f.get("properties") or {}).get("code")) for f in features
                                  if isinstance(f, dict) and isinstance(f.get("properties"), dict)])}
    readable = set(visible_basins(actor).values_list("code", flat=True))
    seen: dict[str, int] = {}
    planned = []  # (row, unsaved basin, shape, parent code, the registered basin as it was or None)
    for row, feature in enumerate(features, start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or feature.get("type") != "Feature":
            report.add(row, None, "feature", _("应为带 properties 的 GeoJSON Feature"))
            continue
        values = {name: _text(props.get(name)) for name in PROPERTIES}
        code, name = values["code"], values["name"]

        def bad(field, msg, _row=row, _code=code, _name=name):
            report.add(_row, field, field, msg, code=_code, name=_name)

        shape, problems = outline_problems(feature.get("geometry"), district)
        for problem in problems:
            bad("geometry", problem)
        if code and code in seen:
            bad("code", message(_("编码与第 %(row)s 个要素重复"), row=seen[code]))
            continue
        if code:
            seen[code] = row
        values["region"] = values["region"] or district_code or ""
        parent = values.pop("parent")
        instance = existing.get(code)
        if instance is not None and not can_write_region(actor, instance.region):
            bad("code", CODE_IN_USE)
            continue
        # What the basin is now, taken before the form check (which changes the instance it is given).
        before = None
        if instance is not None:
            snapshot = record_snapshot(kind, instance)
            snapshot.pop("parent", None)
            before = (snapshot, outline_text(instance.boundary or ""),
                      instance.parent.code if instance.parent_id else "")
        try:
            obj = validate_record(actor, kind, {**values, "parent": ""}, instance=instance,
                                  scope_errors_as_fields=True)
        except ServiceError as exc:
            for field, msgs in exc.errors.items():
                for msg in msgs:
                    bad(field, msg)
            continue
        except ScopeError as exc:
            bad("region", exc.message)
            continue
        if shape is not None and obj.region_id and obj.region.level != "district" and not _within_region(shape,
                                                                                                   obj.region):
            bad("geometry", message(_("边界超出所属区域(%(region)s)范围,请核对区划代码"), region=obj.region.name))
            continue
        if parent and parent == code:
            bad("parent", _("上级流域不能是本流域或其下级流域"))
            continue
        planned.append((row, obj, shape, parent, before))
    # Parents: in the file, or registered and readable; no cycles through the file and the register.
    in_file = {obj.code: parent for _row, obj, _shape, parent, _inst in planned}
    registered = {b.code: (b.parent.code if b.parent_id else "") for b in Basin.objects.select_related("parent")
                  .filter(code__in=readable)}
    for row, obj, _shape, parent, _inst in planned:
        if not parent:
            continue
        if parent not in in_file and parent not in readable:
            report.add(row, "parent", "parent", _("上级流域编码不存在"), code=obj.code, name=obj.name)
            continue
        node, steps = parent, 0
        while node and steps <= len(in_file) + len(registered):
            if node == obj.code:
                report.add(row, "parent", "parent", _("上级流域不能是本流域或其下级流域"), code=obj.code,
                           name=obj.name)
                break
            node = in_file.get(node, registered.get(node, ""))
            steps += 1
    report.errors.sort(key=lambda e: e["row"] or 0)
    if not report.ok:
        return report
    writes = []
    for _row, obj, shape, parent, before in planned:
        text = json.loads(shapely.to_geojson(shape))
        obj.boundary, obj.area_km2 = text, area_km2(shape)
        after_snapshot = record_snapshot(kind, obj)
        after_snapshot.pop("parent", None)
        after = (after_snapshot, outline_text(text), parent)
        if before is None:
            report.created += 1
        elif before != after:
            report.updated += 1
        else:
            report.unchanged += 1
            continue
        writes.append((obj, parent, before is None))
    if dry_run or not writes:
        return report
    _write(actor, kind, writes, report)
    return report


def _write(actor, kind, writes, report: ImportReport) -> None:
    """Save in parent-first order (a parent new in the file exists before its children point at it)."""
    by_code = {obj.code: (obj, parent, created) for obj, parent, created in writes}
    order, placed = [], set()

    def visit(code):
        if code in placed or code not in by_code:
            return
        placed.add(code)
        visit(by_code[code][1])
        order.append(code)

    for code in by_code:
        visit(code)
    user = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        saved: dict[str, Basin] = {}
        by_town: dict[str, int] = {}
        for code in order:
            obj, parent, created = by_code[code]
            obj.parent = saved.get(parent) or (Basin.objects.get(code=parent) if parent else None)
            obj._history_user = user
            obj._change_reason = "import"
            obj.save()
            saved[code] = obj
            by_town[obj.region.code[:9]] = by_town.get(obj.region.code[:9], 0) + 1
        emit(kind.event_type("imported"), actor=actor, region=getattr(actor, "region", None), subject=kind.slug,
             payload={"kind": kind.slug, "count": len(order), "by_town": by_town})
