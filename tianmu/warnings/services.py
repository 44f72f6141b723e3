"""The only code that changes warnings: draft, edit, revise (a new version), the lifecycle's transitions
(lifecycles.py), drafts from alarms (merged per town and type within a window), expiry, and imports of other
authorities' CAP alerts. Every function validates (per field, bilingual), checks the permission table in the
warning's region, writes in one transaction with history, and emits a declared event.

Dissemination is not done here: "warnings.warning.issued" (Alert or Update) and "warnings.warning.cancelled"
carry `payload()`, which is what a dispatcher needs; `dispatch_arguments()` turns it into the keyword arguments
of comms.services.dispatch, for the one handler that wires them (docs/warnings.md, "Dissemination")."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from tianmu.core.choices import RegionLevel
from tianmu.core.errors import ServiceError, formatted
from tianmu.core.events import emit
from tianmu.core.models import Region
from tianmu.core.scope import check

from .choices import EDITABLE, HazardType, Level, Origin, WarningState, level_rank
from .conf import conf, type_levels
from .lifecycles import WARNING
from .models import CapMessage, HazardWarning

__all__ = ["payload", "dispatch_arguments", "clean", "owner_region", "draft_warning", "edit_warning",
           "revise_warning", "submit", "approve", "reject", "issue", "cancel", "supersede", "expire_due",
           "publish_message",
           "draft_from_alarm", "import_cap", "DRAFT_ACTION", "IMPORT_ACTION"]

DRAFT_ACTION = "warnings.warning.draft"
IMPORT_ACTION = "warnings.external.import"
TEXT_FIELDS = ("headline", "description", "instruction_public", "instruction_responders", "headline_en",
               "description_en", "instruction_en")
FIELDS = ("hazard_type", "level", "areas", "polygon", "onset", "expires", *TEXT_FIELDS)


# ---- what events carry ---------------------------------------------------------------------------------------

def payload(w: HazardWarning) -> dict:
    """The warning as its events carry it (events.WarningPayload)."""
    areas = sorted(w.areas.all(), key=lambda r: r.code)
    last = w.messages.order_by("-sent", "-id").first() if w.pk else None
    text = w.description + (("\n" + w.instruction_public) if w.instruction_public else "")
    return {
        "warning": w.pk, "version": w.version, "previous": w.previous_id, "origin": w.origin,
        "hazard_type": w.hazard_type, "level": w.level, "state": w.state, "region": w.region.code,
        "regions": [r.code for r in areas], "region_ids": [r.pk for r in areas], "polygon": bool(w.polygon),
        "title": w.headline, "text": text, "url": w.get_absolute_url(), "onset": w.onset.isoformat(),
        "expires": w.expires.isoformat(), "identifier": last.identifier if last else None,
        "msg_type": last.msg_type if last else None,
    }


# A warning's type as the command-communications network files it (subscriptions filter by core.choices.Hazard).
COMMS_HAZARD = {HazardType.GEOHAZARD: "geological"}


def dispatch_arguments(event_payload: dict) -> dict:
    """The keyword arguments of comms.services.dispatch(actor, **…) for an issued or cancelled warning's event
    (handlers.disseminate; a cancelled warning is disseminated as its cancellation, an update as the new text)."""
    cancelled = event_payload["state"] == WarningState.CANCELLED
    title = event_payload["title"]
    if event_payload.get("msg_type") == "Update" and not cancelled:
        title = f"【更新】{title}"
    hazard = event_payload["hazard_type"]
    return {
        "source": "warnings.warning", "subject_id": event_payload["warning"], "subject_url": event_payload["url"],
        "title": f"【解除】{title}" if cancelled else title, "text": event_payload["text"],
        "level": event_payload["level"], "regions": event_payload["regions"],
        "hazard_types": (COMMS_HAZARD.get(hazard, hazard),),
        # An all-clear informs; only the warning itself asks each person to confirm (叫应, orange and red).
        **({"confirm": False} if cancelled else {}),
    }


# ---- validation ----------------------------------------------------------------------------------------------

def _district() -> Region | None:
    return Region.objects.filter(level=RegionLevel.DISTRICT).order_by("code").first()


def _datetime(value, field: str, errors: dict):
    if value in (None, ""):
        errors.setdefault(field, []).append(_("请填写时间"))
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = parse_datetime(str(value).strip().replace(" ", "T")) if isinstance(value, str) else None
        if dt is None:
            errors.setdefault(field, []).append(_("时间格式不正确,例如 2026-07-30T08:00"))
            return None
    if timezone.is_naive(dt):  # typed on a page: Beijing time (TIME_ZONE)
        dt = timezone.make_aware(dt)
    return dt


def _polygon(value, errors: dict):
    """A GeoJSON Polygon (lon, lat; one ring) inside the district, not self-intersecting; returned closed."""
    from shapely.geometry import LinearRing, Polygon, shape

    if value in (None, "", {}):
        return None
    try:
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, dict) or data.get("type") != "Polygon":
            raise ValueError
        rings = data.get("coordinates")
        if not isinstance(rings, list) or len(rings) != 1 or not isinstance(rings[0], list):
            raise ValueError
        points = [(float(p[0]), float(p[1])) for p in rings[0]]
    except (ValueError, TypeError, IndexError, KeyError, json.JSONDecodeError):
        errors.setdefault("polygon", []).append(_("划定区域须是 GeoJSON 多边形(一个外环,经度在前)"))
        return None
    if len(points) > conf("WARNINGS_CAP_MAX_POLYGON_POINTS"):
        errors.setdefault("polygon", []).append(_("划定区域的顶点太多"))
        return None
    if points and points[0] != points[-1]:
        points.append(points[0])
    if len(set(points)) < 3 or len(points) < 4:
        errors.setdefault("polygon", []).append(_("划定区域至少需要三个不同的顶点"))
        return None
    if any(not (-180 <= lon <= 180 and -90 <= lat <= 90) for lon, lat in points):
        errors.setdefault("polygon", []).append(_("划定区域的坐标超出经纬度范围"))
        return None
    ring = LinearRing(points)
    if not ring.is_simple or not Polygon(points).is_valid or Polygon(points).area == 0:
        errors.setdefault("polygon", []).append(_("划定区域的边自相交,请重新绘制"))
        return None
    district = _district()
    if district is not None and district.boundary:
        boundary = shape(Region.objects.only("boundary").get(pk=district.pk).boundary).buffer(0.001)
        if not boundary.contains(Polygon(points)):
            errors.setdefault("polygon", []).append(_("划定区域超出本区范围"))
            return None
    return {"type": "Polygon", "coordinates": [[[round(lon, 6), round(lat, 6)] for lon, lat in points]]}


def _areas(value, errors: dict) -> list[Region]:
    if value in (None, ""):
        return []
    codes = [c.strip() for c in (value.replace(",", " ").split() if isinstance(value, str) else value)
             if isinstance(c, str) and c.strip()]
    if len(codes) > conf("WARNINGS_MAX_AREAS"):
        errors.setdefault("areas", []).append(_("预警区域太多"))
        return []
    found = {r.code: r for r in Region.objects.filter(code__in=codes)}
    unknown = [c for c in codes if c not in found]
    if unknown:
        errors.setdefault("areas", []).append(formatted(_("没有这些区划代码:%(codes)s"),
                                                        {"codes": ", ".join(unknown[:10])}))
    return [found[c] for c in dict.fromkeys(codes) if c in found]


def owner_region(areas: list[Region], polygon: dict | None) -> Region | None:
    """Whose warning it is: one town's (all its areas and the polygon inside one town) or the district's."""
    from shapely.geometry import shape

    towns: set[str] = set()
    district = _district()
    for r in areas:
        if r.level == RegionLevel.DISTRICT:
            return r
        towns.add(r.code[:9])
    if polygon:
        geom = shape(polygon)
        for town in Region.objects.filter(level=RegionLevel.TOWN).only("code", "boundary"):
            if town.boundary and shape(town.boundary).intersects(geom) and \
                    shape(town.boundary).intersection(geom).area > geom.area * 0.001:
                towns.add(town.code)
    if len(towns) == 1:
        return Region.objects.filter(code=next(iter(towns))).first() or district
    return district


def clean(data: dict, *, instance: HazardWarning | None = None, now: datetime | None = None) -> dict:
    """Validate a draft's fields; ServiceError with every field's problems (never a partial answer)."""
    now = now or timezone.now()
    errors: dict[str, list] = {}
    base = {f: getattr(instance, f) for f in FIELDS if f not in ("areas",)} if instance else {}
    if instance is not None:
        base["areas"] = [r.code for r in instance.areas.all()]
    merged = {**base, **{k: v for k, v in data.items() if k in FIELDS}}
    out: dict = {}
    hazard = merged.get("hazard_type") or ""
    if hazard not in HazardType.values or hazard == HazardType.OTHER:
        errors["hazard_type"] = [_("请选择预警类型")]
    level = merged.get("level") or ""
    if level not in Level.values:
        errors["level"] = [_("请选择预警等级(蓝、黄、橙、红)")]
    elif "hazard_type" not in errors and level not in type_levels(hazard):
        names = "、".join(str(Level(v).label) for v in type_levels(hazard))
        errors["level"] = [formatted(_("%(type)s预警没有这个等级,可选:%(levels)s"),
                                     {"type": HazardType(hazard).label, "levels": names})]
    out["hazard_type"], out["level"] = hazard, level
    out["areas"] = _areas(merged.get("areas"), errors)
    out["polygon"] = _polygon(merged.get("polygon"), errors)
    if not out["areas"] and not out["polygon"] and "areas" not in errors and "polygon" not in errors:
        errors["areas"] = [_("请至少选择一个镇街或村社,或在地图上划定区域")]
    onset = _datetime(merged.get("onset") or now, "onset", errors)
    expires = _datetime(merged.get("expires"), "expires", errors)
    if expires is not None:
        if expires <= now:
            errors.setdefault("expires", []).append(_("失效时间已过,请填写将来的时间"))
        elif onset is not None and expires <= onset:
            errors.setdefault("expires", []).append(_("失效时间须晚于生效时间"))
    out["onset"], out["expires"] = onset, expires
    limits = {"headline": conf("WARNINGS_HEADLINE_MAX"), "headline_en": conf("WARNINGS_HEADLINE_MAX")}
    for name in TEXT_FIELDS:
        value = merged.get(name) or ""
        if not isinstance(value, str):
            errors[name] = [_("须为文字")]
            continue
        value = value.strip()
        limit = limits.get(name, conf("WARNINGS_TEXT_MAX"))
        if len(value) > limit:
            errors[name] = [formatted(_("不能超过 %(n)s 个字"), {"n": limit})]
        out[name] = value
    for name in ("headline", "description"):
        if not out.get(name) and name not in errors:
            errors[name] = [_("请填写此项")]
    if errors:
        raise ServiceError(errors)
    return out


def _apply_fields(w: HazardWarning, cleaned: dict) -> list[Region]:
    areas = cleaned.pop("areas")
    for name, value in cleaned.items():
        setattr(w, name, value)
    return areas


def _save(w: HazardWarning, actor, reason: str, areas: list[Region] | None = None) -> None:
    w._history_user = actor if getattr(actor, "pk", None) else None
    w._change_reason = reason
    w.save()
    if areas is not None:
        w.areas.set(areas)


# ---- drafts --------------------------------------------------------------------------------------------------

def draft_warning(actor, data: dict, *, previous: HazardWarning | None = None) -> HazardWarning:
    """A person drafts a warning (or a new version of an issued one). Scope: the owner region (one town or
    the district) must be within the actor's reach for "warnings.warning.draft"."""
    check(actor, DRAFT_ACTION)
    cleaned = clean(data)
    region = owner_region(cleaned["areas"], cleaned["polygon"])
    check(actor, DRAFT_ACTION, region)
    with transaction.atomic():
        w = HazardWarning(region=region, created_by=actor if getattr(actor, "pk", None) else None,
                          origin=Origin.MANUAL, previous=previous,
                          version=(previous.version + 1) if previous else 1)
        if previous is not None:
            w.citations, w.alarm_ids = list(previous.citations), list(previous.alarm_ids)
        areas = _apply_fields(w, cleaned)
        _save(w, actor, "draft", areas)
        emit("warnings.warning.drafted", actor=actor, region=region, subject=w.subject(), payload=payload(w))
    return w


def edit_warning(actor, w: HazardWarning, data: dict) -> HazardWarning:
    """Change a draft (only drafts change; a submitted one is sent back first)."""
    with transaction.atomic():
        w = WARNING.lock(w)
        check(actor, DRAFT_ACTION, w.region)
        if w.external:
            raise ServiceError({"state": [_("外部导入的预警是只读的,由原发布机关更新或解除")]})
        if w.state not in EDITABLE:
            raise ServiceError({"state": [_("只有草稿可以修改;待审核的请先退回")]})
        cleaned = clean(data, instance=w)
        region = owner_region(cleaned["areas"], cleaned["polygon"])
        check(actor, DRAFT_ACTION, region)
        w.region = region
        areas = _apply_fields(w, cleaned)
        _save(w, actor, "edit", areas)
        emit("warnings.warning.edited", actor=actor, region=region, subject=w.subject(), payload=payload(w))
    return w


def revise_warning(actor, w: HazardWarning, data: dict | None = None) -> HazardWarning:
    """Start a new version of an issued warning: a draft copying it (with `data`'s changes) that, once
    approved and issued, replaces it (CAP Update referencing the earlier messages)."""
    check(actor, DRAFT_ACTION, w.region)
    if w.external:
        raise ServiceError({"state": [_("外部导入的预警是只读的,由原发布机关更新或解除")]})
    if w.state != WarningState.ISSUED:
        raise ServiceError({"state": [_("只有已发布的预警可以更新")]})
    pending = HazardWarning.objects.filter(previous=w).first()
    if pending is not None:
        raise ServiceError({"state": [formatted(_("已有待发布的新版本(编号 %(id)s)"), {"id": pending.pk})]})
    base = {f: getattr(w, f) for f in FIELDS if f != "areas"}
    base["areas"] = [r.code for r in w.areas.all()]
    if base["expires"] <= timezone.now():
        base["expires"] = timezone.now() + timedelta(hours=conf("WARNINGS_DEFAULT_VALIDITY_HOURS"))
    return draft_warning(actor, {**base, **(data or {})}, previous=w)


# ---- the lifecycle's transitions -----------------------------------------------------------------------------

def submit(actor, w, note: str = "") -> HazardWarning:
    return WARNING.perform(actor, w, "submit", note=note)


def reject(actor, w, note: str = "") -> HazardWarning:
    return WARNING.perform(actor, w, "reject", note=note)


def approve(actor, w, note: str = "") -> HazardWarning:
    return WARNING.perform(actor, w, "approve", note=note)


def issue(actor, w, note: str = "") -> HazardWarning:
    return WARNING.perform(actor, w, "issue", note=note)


def cancel(actor, w, note: str = "") -> HazardWarning:
    return WARNING.perform(actor, w, "cancel", note=note)


def _end(w: HazardWarning, state: str, *, actor, at: datetime, by: int | None, reason: str) -> None:
    before = w.state
    w.state, w.ended_at = state, at
    _save(w, actor, reason)
    emit(f"warnings.warning.{state}", actor=actor, region=w.region, subject=w.subject(),
         payload={**payload(w), "from_state": before, "to_state": state, "by": by})


def supersede(new: HazardWarning, *, actor, at: datetime) -> None:
    """The previous version of `new`, just issued, is replaced by it (state "updated"). Called by the issue
    transition, in its transaction."""
    prev = WARNING.lock(new.previous_id)
    if prev.state != WarningState.ISSUED:
        raise ServiceError({"previous": [_("上一版本已不在发布状态(已解除或过期),不能作为更新发布")]})
    _end(prev, WarningState.UPDATED, actor=actor, at=at, by=new.pk, reason="updated")


def expire_due(now: datetime | None = None) -> int:
    """Expire every issued warning whose validity has ended (the periodic task; the system is the actor)."""
    now = now or timezone.now()
    done = 0
    for pk in HazardWarning.objects.filter(state=WarningState.ISSUED, expires__lte=now).values_list("pk", flat=True):
        with transaction.atomic():
            w = WARNING.lock(pk)
            if w.state != WarningState.ISSUED or w.expires > now:
                continue
            _end(w, WarningState.EXPIRED, actor=None, at=now, by=None, reason="expired")
            done += 1
    return done


def publish_message(w: HazardWarning, msg_type: str, at: datetime) -> CapMessage:
    """Write the CAP message of an issue (Alert / Update) or a cancellation (Cancel), as it is published. Called
    by the lifecycle's apply hooks, inside the transition's transaction."""
    from .cap import build_alert, new_identifier, sender, validate

    earlier = list(CapMessage.objects.filter(warning__in=[v.pk for v in w.chain()]).order_by("sent", "id"))
    message = CapMessage(warning=w, msg_type=msg_type, identifier=new_identifier(at), sender=sender(), sent=at,
                         references=" ".join(m.reference() for m in earlier) if msg_type != "Alert" else "")
    message.xml = build_alert(w, message)
    validate(message.xml.encode())  # a message that fails the XSD is a bug: never publish it
    message.save()
    return message


# ---- from alarms to drafts -----------------------------------------------------------------------------------

def _citation(ev: dict) -> dict:
    from zoneinfo import ZoneInfo

    bj = ZoneInfo("Asia/Shanghai")
    unit = ev["unit"] or ""
    where = ev["station"] or ev["sensor_name"]
    series = ",".join(f"{ts.astimezone(bj):%H:%M} {v:g}" for ts, v in ev["readings"][-6:])
    value = "—" if ev["value"] is None else f"{ev['value']:g}{unit}"
    threshold = "—" if ev["threshold"] is None else f"{ev['threshold']:g}{unit}"
    text = (f"{ev['observed_at'].astimezone(bj):%m-%d %H:%M} {where}({ev['sensor']})"
            f"{ev['rule_label']}:{ev['metric_label']} {value},达到{Level(ev['level']).label}阈值 {threshold}"
            + (f";最近读数 {series}" if series else ""))
    return {"alarm": ev["id"], "level": ev["level"], "rule": ev["rule"], "at": ev["observed_at"].isoformat(),
            "text": text}


def _fit_level(hazard: str, level: str) -> str | None:
    allowed = type_levels(hazard)
    if level in allowed:
        return level
    lower = [lv for lv in allowed if level_rank(lv) <= level_rank(level)]
    return max(lower, key=level_rank) if lower else None


def draft_from_alarm(evidence: dict | None, *, now: datetime | None = None) -> HazardWarning | None:
    """An orange or red threshold alarm drafts a warning for its village and town, citing the readings and the
    rule, for a person to review (never issued without one). Alarms of one town and type within
    WARNINGS_MERGE_WINDOW_MINUTES merge into the open draft: the citation is appended, the village added, the
    level raised if higher. Nothing is drafted when an issued warning of that type already covers the town at
    that level or higher. Runs inside the event handler's transaction."""
    from .choices import RULE_TYPES

    if evidence is None or evidence["kind"] != "threshold" or evidence["level"] not in conf("WARNINGS_ALARM_LEVELS"):
        return None
    hazard = RULE_TYPES.get(evidence["rule"])
    level = _fit_level(hazard, evidence["level"]) if hazard else None
    if level is None:
        return None
    now = now or timezone.now()
    town = evidence["town"] or _district()
    area = evidence["village"] or town
    citation = _citation(evidence)
    issued = (HazardWarning.objects.filter(state=WarningState.ISSUED, hazard_type=hazard, region=town)
              .exclude(origin=Origin.EXTERNAL).order_by("-issued_at").first())
    if issued is not None and level_rank(issued.level) >= level_rank(level) and issued.areas.filter(pk=area.pk).exists():
        return None
    cutoff = now - timedelta(minutes=conf("WARNINGS_MERGE_WINDOW_MINUTES"))
    open_draft = (HazardWarning.objects.select_for_update().filter(
        origin=Origin.ALARM, hazard_type=hazard, region=town,
        state__in=[WarningState.DRAFT, WarningState.SUBMITTED], created_at__gte=cutoff)
        .order_by("-created_at").first())
    if open_draft is not None:
        w = open_draft
        raised_from = w.level if level_rank(level) > level_rank(w.level) else None
        if raised_from:
            w.level = level
            w.headline = _alarm_headline(town, hazard, level)
        w.citations = [*w.citations, citation]
        if evidence["id"] not in w.alarm_ids:
            w.alarm_ids = [*w.alarm_ids, evidence["id"]]
        w.description = _alarm_description(w.citations)
        w.expires = max(w.expires, now + timedelta(hours=conf("WARNINGS_DEFAULT_VALIDITY_HOURS")))
        _save(w, None, "alarm merged")
        w.areas.add(area)
        emit("warnings.warning.merged", region=town, subject=w.subject(),
             payload={**payload(w), "alarm": evidence["id"], "raised_from": raised_from})
        return w
    previous = issued if issued is not None and not HazardWarning.objects.filter(previous=issued).exists() else None
    w = HazardWarning(
        origin=Origin.ALARM, hazard_type=hazard, level=level, region=town, onset=now,
        expires=now + timedelta(hours=conf("WARNINGS_DEFAULT_VALIDITY_HOURS")),
        headline=_alarm_headline(town, hazard, level), citations=[citation], alarm_ids=[evidence["id"]],
        description=_alarm_description([citation]), instruction_public=str(_DEFAULT_INSTRUCTION),
        previous=previous, version=previous.version + 1 if previous else 1, created_at=now)
    # A new version keeps the areas of the one it replaces, so issuing it never drops a village.
    areas = [*previous.areas.all(), area] if previous is not None else [area]
    _save(w, None, "drafted from alarm", areas)
    emit("warnings.warning.drafted", region=town, subject=w.subject(), payload=payload(w))
    return w


_DEFAULT_INSTRUCTION = _("请注意防范,远离河道、山塘、地质灾害隐患点等危险区域,听从村社安排,做好转移准备。")


def _alarm_headline(town: Region, hazard: str, level: str) -> str:
    with _chinese():
        return f"{town.name}{HazardType(hazard).label}{Level(level).label}预警"


ALARM_DESCRIPTION_LINES = 5


def _alarm_description(citations: list[dict]) -> str:
    """The public text of an alarm draft: the most severe readings (at most five), then how many more; every
    citation stays in `citations` as evidence for the reviewer."""
    ranked = sorted(citations, key=lambda c: (-level_rank(c["level"]), c["at"]))
    lines = [c["text"].split(";")[0] for c in ranked[:ALARM_DESCRIPTION_LINES]]
    text = "据监测:\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(lines, 1))
    if len(citations) > ALARM_DESCRIPTION_LINES:
        text += f"\n等共 {len(citations)} 条监测告警。"
    return text


def _chinese():
    from django.utils import translation

    return translation.override("zh-hans")


# ---- other authorities' CAP alerts ---------------------------------------------------------------------------

_TYPE_WORDS = [("台风", HazardType.TYPHOON), ("typhoon", HazardType.TYPHOON), ("暴雨", HazardType.RAINSTORM),
               ("rainstorm", HazardType.RAINSTORM), ("地质", HazardType.GEOHAZARD), ("landslide", HazardType.GEOHAZARD),
               ("山洪", HazardType.FLASH_FLOOD), ("flash flood", HazardType.FLASH_FLOOD),
               ("森林火", HazardType.FOREST_FIRE), ("forest fire", HazardType.FOREST_FIRE),
               ("高温", HazardType.HIGH_TEMPERATURE), ("heat", HazardType.HIGH_TEMPERATURE),
               ("大风", HazardType.GALE), ("gale", HazardType.GALE)]


def _external_type(text: str) -> str:
    low = text.lower()
    for word, hazard in _TYPE_WORDS:
        if word in low:
            return hazard
    return HazardType.OTHER


def import_cap(actor, data: bytes, *, now: datetime | None = None) -> HazardWarning:
    """Store another authority's CAP 1.2 alert (the city's, the weather service's) as a read-only external
    warning, shown on the map. Update and Cancel messages replace the warning they reference. Refused with a
    message on `file` when it is not valid CAP 1.2, not for this district, or already imported."""
    from shapely.geometry import shape

    from .cap import parse_alert

    check(actor, IMPORT_ACTION)
    now = now or timezone.now()
    alert = parse_alert(data)
    err = lambda msg: ServiceError({"file": [msg]})  # noqa: E731
    if alert.status not in ("Actual", "Exercise"):
        raise err(formatted(_("只导入实际或演练预警(status 为 %(status)s)"), {"status": alert.status}))
    if alert.msg_type not in ("Alert", "Update", "Cancel"):
        raise err(_("只导入 Alert、Update、Cancel 类型的 CAP 消息"))
    if CapMessage.objects.filter(sender=alert.sender, identifier=alert.identifier).exists():
        raise err(_("这条 CAP 消息已经导入过"))
    earlier = None
    for ref_sender, ref_id, _sent in alert.references:
        m = CapMessage.objects.filter(sender=ref_sender, identifier=ref_id).select_related("warning").first()
        if m is not None:
            earlier = m.warning
            while hasattr(earlier, "next_version"):
                earlier = earlier.next_version
    if alert.msg_type == "Cancel" and earlier is None:
        raise err(_("这条解除消息所引用的预警没有导入过"))
    info = alert.info()
    if info is None:
        raise err(_("CAP 消息没有 info 内容"))
    level = alert.level()
    if level is None:
        raise err(_("无法从严重程度(severity)或等级参数确定预警等级"))
    district = _district()
    codes = [v for name, v in info.geocodes if "2260" in name]
    areas = list(Region.objects.filter(code__in=codes, code__startswith=district.code if district else ""))
    polygons = [p for p in info.polygons]
    inside = []
    if polygons and district is not None and district.boundary:
        boundary = shape(Region.objects.only("boundary").get(pk=district.pk).boundary)
        inside = [p for p in polygons if shape(p).intersects(boundary)]
    if not areas and not inside:
        raise err(_("这条预警的区域(GB/T 2260 区划代码或多边形)不在本区"))
    geometry = None
    if inside:
        geometry = inside[0] if len(inside) == 1 else {
            "type": "MultiPolygon", "coordinates": [p["coordinates"] for p in inside]}
    expires = info.expires or (alert.sent + timedelta(hours=conf("WARNINGS_DEFAULT_VALIDITY_HOURS")))
    state = (WarningState.CANCELLED if alert.msg_type == "Cancel"
             else WarningState.EXPIRED if expires <= now else WarningState.ISSUED)
    region = owner_region(areas, None) if areas else district
    hazard = _external_type(f"{info.event} {info.headline}")
    with transaction.atomic():
        if earlier is not None:
            earlier = WARNING.lock(earlier)
            earlier.state, earlier.ended_at = WarningState.UPDATED, now
            _save(earlier, actor, f"replaced by CAP {alert.msg_type}")
        w = HazardWarning(
            origin=Origin.EXTERNAL, hazard_type=hazard, level=level, state=state, region=region, polygon=geometry,
            onset=info.onset or info.effective or alert.sent, expires=expires,
            headline=(info.headline or info.event)[:200], description=info.description[:conf("WARNINGS_TEXT_MAX")],
            instruction_public=info.instruction[:conf("WARNINGS_TEXT_MAX")], created_by=actor,
            issued_at=alert.sent, external_sender=(info.sender_name or alert.sender)[:200],
            external_identifier=alert.identifier[:200], previous=earlier,
            version=earlier.version + 1 if earlier else 1,
            ended_at=now if state != WarningState.ISSUED else None)
        _save(w, actor, f"CAP {alert.msg_type} imported", areas)
        CapMessage.objects.create(warning=w, msg_type=alert.msg_type, identifier=alert.identifier[:200],
                                  sender=alert.sender[:200], sent=alert.sent, xml=data.decode("utf-8", "replace"),
                                  references=" ".join(",".join(r) for r in alert.references), received=True)
        emit("warnings.warning.imported", actor=actor, region=region, subject=w.subject(), payload=payload(w))
    return w
