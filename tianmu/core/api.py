"""The API base: authentication (session or bearer token), error shapes, and the core routes.

Errors always look like
    {"code": "validation_error", "errors": [{"field": "lat", "message": "…", "message_en": "…"}]}
    {"code": "forbidden", "message": "…", "message_en": "…"}
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Query, Router, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.params import P
from ninja.security import HttpBearer, SessionAuth

from .errors import ServiceError, bilingual, formatted
from .middleware import STATUS_ERRORS, error_body
from .models import ApiToken, Region
from .scope import region_prefix

__all__ = ["build_api", "TianmuAPI", "TokenAuth", "core_router", "PageNumber", "page_size_param"]

# Pagination of API lists (the limits are settings, docs/security.md): out of range is a 422 on the parameter.
PageNumber = Query[int, P(ge=1, le=settings.TIANMU_MAX_PAGE, description="Page number, from 1")]


def page_size_param(limit: int | None = None):
    """The `page_size` parameter of a list: 1 to `limit` rows, never more than settings.TIANMU_MAX_PAGE_SIZE."""
    top = min(limit or settings.TIANMU_MAX_PAGE_SIZE, settings.TIANMU_MAX_PAGE_SIZE)
    return Query[int, P(ge=1, le=top, description=f"Rows per page, 1 to {top}")]


class TokenAuth(HttpBearer):
    """`Authorization: Bearer tm_…` for other departments' systems.

    A verified token is remembered in this process for CACHE_SECONDS, so a busy client costs no lookup per
    request; revoking a token or deactivating its user takes effect within that time. An expired token
    (`expires_at` passed) is refused at once, cached or not.
    """

    CACHE_SECONDS = 30
    _cache: dict[str, tuple[float, object, object]] = {}

    def authenticate(self, request, token):
        if not token:
            return None
        key_hash = ApiToken.hash_key(token)
        hit = self._cache.get(key_hash)
        if hit is not None and hit[0] > time.monotonic():
            deadline, user, expires_at = hit
            if expires_at is not None and expires_at <= timezone.now():
                self._cache.pop(key_hash, None)
                return None
            request.user = user
            return user
        api_token = self._lookup(key_hash)
        if api_token is None:
            return None
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[key_hash] = (time.monotonic() + self.CACHE_SECONDS, api_token.user, api_token.expires_at)
        request.user = api_token.user
        return api_token.user

    def _lookup(self, key_hash):
        now = timezone.now()
        try:
            api_token = ApiToken.objects.select_related("user", "user__region").defer("user__region__boundary").get(
                key_hash=key_hash, revoked=False)
        except ApiToken.DoesNotExist:
            return None
        if not api_token.user.is_active or api_token.expired(now):
            return None
        if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        return api_token


class ScopedSessionAuth(SessionAuth):
    """Session login (browser pages calling the API); CSRF is checked for unsafe methods."""


# pydantic's error types in our words (Chinese source, English in the catalogue); the placeholders are filled
# from the error's context (ge, le, max_length, …).
PYDANTIC_ZH = {
    "missing": _("此项为必填项"),
    "float_parsing": _("必须是数字"),
    "float_type": _("必须是数字"),
    "finite_number": _("必须是有限的数字"),
    "int_parsing": _("必须是整数"),
    "int_parsing_size": _("必须是整数"),
    "int_type": _("必须是整数"),
    "int_from_float": _("必须是整数"),
    "bool_parsing": _("必须是布尔值(true/false)"),
    "bool_type": _("必须是布尔值(true/false)"),
    "string_type": _("必须是文本"),
    "string_too_long": _("文本过长:不能超过 %(max_length)s 个字符"),
    "string_too_short": _("文本过短:至少 %(min_length)s 个字符"),
    "too_long": _("项目过多:不能超过 %(max_length)s 个"),
    "greater_than_equal": _("不能小于 %(ge)s"),
    "greater_than": _("应大于 %(gt)s"),
    "less_than_equal": _("不能大于 %(le)s"),
    "less_than": _("应小于 %(lt)s"),
    "literal_error": _("不是有效的选项"),
    "enum": _("不是有效的选项"),
    "date_parsing": _("日期格式应为 YYYY-MM-DD"),
    "date_from_datetime_parsing": _("日期格式应为 YYYY-MM-DD"),
    "datetime_parsing": _("时间格式应为 ISO 8601"),
    "datetime_from_date_parsing": _("时间格式应为 ISO 8601"),
    "json_invalid": _("请求体不是有效的 JSON"),
    "model_attributes_type": _("请求体应为 JSON 对象"),
    "dict_type": _("请求体应为 JSON 对象"),
    "list_type": _("必须是列表"),
    "extra_forbidden": _("不允许的字段"),
}
INVALID = _("输入无效")
SOURCES = ("body", "query", "path", "form", "file", "header", "cookie")


def _validation_payload(errors: list[dict]) -> dict:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", [])]
        if loc and loc[0] in SOURCES:  # ("query", "page"); ("body", <the body parameter>, "name", …)
            loc = loc[2:] if loc[0] == "body" else loc[1:]
        message = PYDANTIC_ZH.get(err.get("type", ""))
        if message is not None:
            text = bilingual(formatted(message, {k: v for k, v in (err.get("ctx") or {}).items()}))
        else:  # a type we have no words for: ours in Chinese, pydantic's (English) in message_en
            text = {"zh": bilingual(INVALID)["zh"], "en": err.get("msg", "") or bilingual(INVALID)["en"]}
        out.append({"field": ".".join(loc) or "__all__", "message": text["zh"], "message_en": text["en"]})
    return {"code": "validation_error", "errors": out}


# Ninja's own HttpError texts (English), in our words.
HTTP_ERROR_TEXTS = {
    "Cannot parse request body": _("请求体不是有效的 JSON"),
    "CSRF check Failed": _("CSRF 校验失败,请刷新页面后重试"),
}


# What each tag group holds, in the order Swagger lists the groups (a tag's first word names its group).
TAG_GROUPS = {
    "core": "Liveness, the caller, administrative regions",
    "map": "Command map: layers, statistics, search",
    "sensing": "Monitoring: latest values, readings, alarms, thresholds; stations and sensors",
    "comms": "Command communications: responsible persons, dispatches, confirmations (叫应), inbox, board",
    "registry": "Emergency base data (应急基础数据)",
    "warnings": "Warnings: drafts, review, issue as CAP 1.2, updates, cancellation; imported CAP alerts",
}


def split_tag(tag: str) -> tuple[str, str]:
    """A router tag "<ascii words> · <中文标题>" as (name, title): "registry · shelters · 避灾安置场所" →
    ("registry / shelters", "避灾安置场所"). The OpenAPI tag is the plain-ASCII name, so client generators make
    plain module and class names from it; the title goes into the tag's description."""
    parts = tag.split(" · ")
    n = next((i for i, part in enumerate(parts) if not part.isascii()), len(parts)) or len(parts)
    return " / ".join(parts[:n]), " · ".join(parts[n:])


class TianmuAPI(NinjaAPI):
    """NinjaAPI with a contract client generators can use: unique, readable operationIds and ASCII tags.

    operationId: an explicit `operation_id=` wins (record kinds use `<slug>_<verb>`, e.g. shelters_list);
    otherwise `<group>_<view function>`, the group being the first word of the operation's tag (core_me,
    map_layers, sensing_alarm_acknowledge). Ninja's default, `<module>_<function>`, is the same for every
    record kind. Tags: see split_tag; the document lists them group by group (TAG_GROUPS), with descriptions.
    """

    def get_openapi_operation_id(self, operation) -> str:
        if operation.tags:
            group = operation.tags[0].split()[0]  # "sensing · 监测感知" → sensing
        else:  # tianmu.<app>.api → <app>
            group = operation.view_func.__module__.removesuffix(".api").rsplit(".", 1)[-1]
        return f"{group}_{operation.view_func.__name__}"

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        titles: dict[str, str] = {}
        for operations in schema["paths"].values():
            for op in operations.values():
                names = []
                for tag in op.get("tags", ()):
                    name, title = split_tag(tag)
                    titles.setdefault(name, title)
                    names.append(name)
                if names:
                    op["tags"] = names
        groups = list(TAG_GROUPS)

        def rank(name: str) -> int:
            group = name.split()[0]
            return groups.index(group) if group in groups else len(groups)

        tags = []
        for name in sorted(titles, key=rank):  # stable: within a group, in the order the routes come
            about = " — ".join(x for x in (titles[name], TAG_GROUPS.get(name.split()[0], "")) if x)
            tags.append({"name": name, "description": about} if about else {"name": name})
        schema["tags"] = tags
        return schema


def build_api() -> NinjaAPI:
    api = TianmuAPI(
        title="Tianmu 天目 API",
        version="1",
        description=(
            "临安区应急指挥平台数据接口 / Tianmu emergency command platform API. "
            "Authenticate with a session (browser) or `Authorization: Bearer <token>` (department systems). "
            "Every read is limited to the caller's region; errors carry per-field messages in Chinese and English."
        ),
        urls_namespace="api",
        docs_url="/docs",
        auth=[TokenAuth(), ScopedSessionAuth()],
    )

    @api.exception_handler(NinjaValidationError)
    def on_validation(request, exc):
        return api.create_response(request, _validation_payload(exc.errors), status=422)

    @api.exception_handler(ServiceError)
    def on_service_error(request, exc):
        return api.create_response(request, {"code": "validation_error", "errors": exc.as_list()}, status=422)

    @api.exception_handler(PermissionDenied)
    def on_forbidden(request, exc):
        msg = bilingual(getattr(exc, "message", None) or _("超出您的权限或管辖区域"))
        return api.create_response(request, {"code": "forbidden", "message": msg["zh"], "message_en": msg["en"]},
                                   status=403)

    @api.exception_handler(Http404)
    def on_not_found(request, exc):
        msg = bilingual(_("记录不存在或不在您的管辖范围内"))
        return api.create_response(request, {"code": "not_found", "message": msg["zh"], "message_en": msg["en"]},
                                   status=404)

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request, exc):
        msg = bilingual(_("请先登录或提供有效的接口令牌"))
        return api.create_response(request, {"code": "unauthorized", "message": msg["zh"],
                                             "message_en": msg["en"]}, status=401)

    @api.exception_handler(HttpError)
    def on_http_error(request, exc):
        known = next((ours for theirs, ours in HTTP_ERROR_TEXTS.items() if str(exc).startswith(theirs)), None)
        if known is not None:
            text = bilingual(known)
        else:  # ours in Chinese by the status, theirs (English) in message_en
            text = {"zh": bilingual(STATUS_ERRORS.get(exc.status_code, ("error", INVALID))[1])["zh"], "en": str(exc)}
        return api.create_response(request, {"code": "error", "message": text["zh"], "message_en": text["en"]},
                                   status=exc.status_code)

    @api.exception_handler(SuspiciousOperation)
    def on_suspicious(request, exc):
        # RequestLimitsMiddleware refuses oversized bodies before they are read; this is for what slips past it.
        if isinstance(exc, RequestDataTooBig):
            return api.create_response(request, error_body(*STATUS_ERRORS[413]), status=413)
        return api.create_response(request, error_body(*STATUS_ERRORS[400]), status=400)

    return api


core_router = Router(tags=["core"])


class RegionOut(Schema):
    code: str
    name: str
    level: str
    kind: str
    parent: str | None
    population: int
    households: int
    area_km2: float
    lon: float
    lat: float


class MeOut(Schema):
    username: str
    name: str
    role: str
    role_label: str
    region: str | None
    region_name: str | None
    can_write: bool


@core_router.get("/health", auth=None, summary="Liveness check (no auth, no database)")
def health(request):
    return {"status": "ok", "time": timezone.now().isoformat()}


@core_router.get("/me", response=MeOut, summary="The caller, their role and home region")
def me(request):
    u = request.auth
    return {"username": u.username, "name": u.display_name, "role": u.role, "role_label": str(u.get_role_display()),
            "region": u.region.code if u.region_id else None, "region_name": u.region.name if u.region_id else None,
            "can_write": u.can_write}


def _regions_for(actor):
    prefix = region_prefix(actor)
    qs = Region.objects.select_related("parent")
    if prefix is None:
        return qs.none()
    if prefix:
        # A town sees its own subtree and the chain above it (for context), but not other towns.
        parents = [prefix[:n] for n in (6, 9) if n < len(prefix)]
        from django.db.models import Q

        qs = qs.filter(Q(code__startswith=prefix) | Q(code__in=parents))
    return qs


@core_router.get("/regions", response=list[RegionOut], summary="Administrative regions visible to the caller")
def regions(request, level: str | None = None, parent: str | None = None):
    qs = _regions_for(request.auth)
    if level:
        qs = qs.filter(level=level)
    if parent:
        qs = qs.filter(parent__code=parent)
    return [
        {"code": r.code, "name": r.name, "level": r.level, "kind": r.kind, "parent": r.parent.code if r.parent else None,
         "population": r.population, "households": r.households, "area_km2": r.area_km2, "lon": r.lon, "lat": r.lat}
        for r in qs
    ]


@core_router.get("/regions/boundaries", summary="Region boundaries as GeoJSON (level=town|village|district)")
def region_boundaries(request, level: str = "town", parent: str | None = None):
    qs = _regions_for(request.auth).filter(level=level).exclude(boundary=None)
    if parent:
        qs = qs.filter(code__startswith=parent)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": r.boundary,
             "properties": {"code": r.code, "name": r.name, "level": r.level, "population": r.population,
                            "households": r.households}}
            for r in qs
        ],
    }


class PayloadFieldOut(Schema):
    name: str
    type: str
    required: bool
    description: str
    description_en: str


class EventTypeOut(Schema):
    name: str
    app: str
    app_name: str
    description: str
    description_en: str
    emitted_by: str
    fields: list[PayloadFieldOut]
    handlers: list[str]


@core_router.get("/events/types", response=list[EventTypeOut],
                 summary="The event catalogue: every declared event type ({app}.{object}.{verb}) with its meaning "
                         "(Chinese and English), payload fields, emitting app and the handlers that handle it")
def event_types(request):
    from .eventtypes import catalogue

    out = []
    for entry in catalogue():
        text = bilingual(entry["description"])
        fields = []
        for f in entry["fields"]:
            about = bilingual(f.description) if f.description else {"zh": "", "en": ""}
            fields.append({"name": f.name, "type": f.type, "required": f.required, "description": about["zh"],
                           "description_en": about["en"]})
        out.append({"name": entry["name"], "app": entry["app"], "app_name": bilingual(entry["app_name"])["zh"],
                    "description": text["zh"], "description_en": text["en"], "emitted_by": entry["emitted_by"],
                    "fields": fields, "handlers": entry["handlers"]})
    return out
