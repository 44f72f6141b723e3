"""Security headers beyond Django's own (a strict Content-Security-Policy: every asset is vendored), the
language, and the limits on requests (sizes, query string, parameters)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from .errors import bilingual, formatted

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob: {tiles}",
    "connect-src 'self'",
    "font-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        tiles = ""
        if settings.TILE_URL:
            from urllib.parse import urlsplit

            parts = urlsplit(settings.TILE_URL.replace("{s}", "a"))
            tiles = f"{parts.scheme}://{parts.netloc.replace('a.', '*.', 1)}" if parts.netloc else ""
        self.csp = CSP.format(tiles=tiles).replace("  ", " ")

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(), microphone=()")
        return response


class LanguageMiddleware:
    """Chinese unless the person chose English (the language switch's cookie, or ?lang=en).

    The browser's Accept-Language is deliberately ignored: a duty officer on a borrowed English-language
    laptop must still get the Chinese platform.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        from django.utils import translation

        try:
            lang = request.GET.get("lang")
        except TooManyFieldsSent:  # RequestLimitsMiddleware answers it
            lang = None
        lang = lang or request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if lang not in self.languages:
            lang = settings.LANGUAGE_CODE
        translation.activate(lang)
        request.LANGUAGE_CODE = lang
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", lang)
        return response


# ---- request limits ---------------------------------------------------------------------------------------------

def is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{n / 1024:.1f}".removesuffix(".0") + " KB"


def _nul_in_json(value, path: str = "") -> str | None:
    """The dotted path of the first string (key or value) in decoded JSON that holds a NUL character."""
    if isinstance(value, str):
        return (path or "__all__") if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return where.replace("\x00", "")
        found = _nul_in_json(item, where)
        if found:
            return found
    return None


# An API error response that has no body of ours (a URL no route matches, a method a route does not take, Django's
# own 400) gets the API's error shape with one of these codes and messages.
STATUS_ERRORS = {
    400: ("bad_request", _("请求无效")),
    401: ("unauthorized", _("请先登录或提供有效的接口令牌")),
    403: ("forbidden", _("超出您的权限或管辖区域")),
    404: ("not_found", _("接口或记录不存在")),
    405: ("method_not_allowed", _("该接口不支持此请求方法")),
    413: ("payload_too_large", _("请求过大")),
    414: ("uri_too_long", _("查询字符串过长")),
    429: ("too_many_requests", _("请求过于频繁,请稍后再试")),
}
SERVER_ERROR = ("server_error", _("服务器内部错误,请稍后重试"))
NUL = _("不能包含空字符(NUL)")


def error_body(code: str, message) -> dict:
    """{"code", "message", "message_en"}: the API's shape of an error that concerns no one field."""
    text = bilingual(message)
    return {"code": code, "message": text["zh"], "message_en": text["en"]}


def field_errors_body(errors: list[tuple[str, object]]) -> dict:
    """{"code": "validation_error", "errors": [{"field", "message", "message_en"}, …]}."""
    out = []
    for field, message in errors:
        text = bilingual(message)
        out.append({"field": field, "message": text["zh"], "message_en": text["en"]})
    return {"code": "validation_error", "errors": out}


class RequestLimitsMiddleware:
    """Refuses a request over the limits set in settings.py before a view, or Django's parsing, takes it in:

    - a body over TIANMU_MAX_REQUEST_BYTES (uploads included), or over DATA_UPLOAD_MAX_MEMORY_SIZE when it carries
      no files, is a 413 without being read; a form or JSON body Django refuses while parsing it (RequestDataTooBig,
      too many fields or files) is a 413 too;
    - a query string over TIANMU_MAX_QUERY_STRING bytes is a 414;
    - a NUL character in the path, a query parameter, a form field or a JSON string (PostgreSQL can neither store
      nor compare one), or a query parameter over TIANMU_MAX_PARAM_LENGTH characters, is an error on that field:
      422 in the API, 400 on a page.

    The API answers in its error shape ({"code", "message", "message_en"}, or {"code": "validation_error",
    "errors": [{"field", "message", "message_en"}]}), a page with an error page listing the same messages. Every
    other API error response without a body of ours (no route for the URL, a method not allowed) gets that shape.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.refuse(request)
        if response is None:
            response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not response.streaming and \
                not response.get("Content-Type", "").startswith("application/json"):
            response = self.api_error(response)
        return response

    def refuse(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        content_type = request.META.get("CONTENT_TYPE", "")
        multipart = content_type.startswith("multipart/")
        limit = settings.TIANMU_MAX_REQUEST_BYTES
        if not multipart:
            limit = min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if length > limit:
            return self.too_large(request, limit)
        if len(request.META.get("QUERY_STRING", "")) > settings.TIANMU_MAX_QUERY_STRING:
            return self.error(request, 414, "uri_too_long", formatted(_("查询字符串过长:不能超过 %(limit)s 字节"),
                                                                      {"limit": settings.TIANMU_MAX_QUERY_STRING}))
        try:
            problems = self.field_problems(request, content_type, multipart, length)
        except RequestDataTooBig:
            return self.too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        except (TooManyFieldsSent, TooManyFilesSent):
            return self.error(request, 413, "payload_too_large", formatted(
                _("字段或文件过多:每个请求最多 %(limit)s 个"), {"limit": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}))
        if problems:
            return self.field_error(request, problems)
        return None

    @staticmethod
    def field_problems(request, content_type: str, multipart: bool, length: int) -> list[tuple[str, object]]:
        problems: dict[str, object] = {}  # one message per field
        if "\x00" in request.path:
            problems["path"] = NUL
        too_long = formatted(_("过长:不能超过 %(limit)s 个字符"), {"limit": settings.TIANMU_MAX_PARAM_LENGTH})
        for name, values in request.GET.lists():
            for value in values:
                if "\x00" in name + value:
                    problems.setdefault(name.replace("\x00", "") or "__all__", NUL)
                elif len(value) > settings.TIANMU_MAX_PARAM_LENGTH:
                    problems.setdefault(name, too_long)
        if request.method == "POST" and (multipart or content_type.startswith("application/x-www-form-urlencoded")):
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    problems.setdefault(name.replace("\x00", "") or "__all__", NUL)
        elif request.method in ("POST", "PUT", "PATCH") and "json" in content_type and length:
            body = request.body
            if b"\\u0000" in body or b"\x00" in body:
                try:
                    where = _nul_in_json(json.loads(body))
                except ValueError:
                    where = None  # not JSON: the API says so
                if where:
                    problems.setdefault(where, NUL)
        return list(problems.items())

    def too_large(self, request, limit: int):
        return self.error(request, 413, "payload_too_large", formatted(_("请求过大:请求体不能超过 %(limit)s"),
                                                                       {"limit": _size(limit)}))

    def error(self, request, status: int, code: str, message):
        if is_api(request):
            return JsonResponse(error_body(code, message), status=status, json_dumps_params={"ensure_ascii": False})
        return self.page(request, status, [{"field": "", "message": str(message)}])

    def field_error(self, request, problems: list[tuple[str, object]]):
        if is_api(request):
            return JsonResponse(field_errors_body(problems), status=422, json_dumps_params={"ensure_ascii": False})
        return self.page(request, 400, [{"field": field, "message": str(message)} for field, message in problems])

    @staticmethod
    def page(request, status: int, errors: list[dict]):
        title = STATUS_ERRORS.get(status, STATUS_ERRORS[400])[1]
        return render(request, "core/request_error.html", {"status": status, "title": title, "errors": errors},
                      status=status)

    @staticmethod
    def api_error(response):
        status = response.status_code
        code, message = STATUS_ERRORS.get(status, SERVER_ERROR if status >= 500 else ("error", _("请求无效")))
        out = JsonResponse(error_body(code, message), status=status, json_dumps_params={"ensure_ascii": False})
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                out[header] = response[header]
        return out


# ---- error pages ------------------------------------------------------------------------------------------------

class ErrorPagesMiddleware:
    """People get the platform's own 404 / 403 / 500 pages (templates/404.html, 403.html, 500.html) even when
    DEBUG is on, as in the demo: Django's technical pages list every URL pattern and, for a 500, the code and
    settings. A developer who wants them sets TIANMU_DEBUG_PAGES=1. The API keeps its JSON errors."""

    STATUSES = (403, 404, 500)
    # Django's own pages (technical 404 and 500, the CSRF failure page) carry this tag; a view's own page with
    # such a status (the one-tap link's "链接无效", say) does not, and is left as the view made it.
    DJANGO_PAGE = b'<meta name="robots" content="NONE,NOARCHIVE">'

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code in self.STATUSES and settings.DEBUG and not settings.TIANMU_DEBUG_PAGES
                and not is_api(request) and not getattr(response, "tianmu_error_page", False)
                and response.get("Content-Type", "").startswith("text/html")
                and not getattr(response, "streaming", False)
                and self.DJANGO_PAGE in response.content[:2000]):
            return error_page(request, response.status_code)
        return response


def error_page(request, status: int, exception=None):
    """The page for a status (also Django's handler404 / handler403 / handler500 when DEBUG is off)."""
    from django.http import HttpResponse
    from django.template import loader

    try:
        if status == 500:  # no database, no user, no context processors: it must render whatever broke
            body = loader.get_template("500.html").render({"request_path": request.path})
        else:
            body = loader.render_to_string(f"{status}.html", {"request_path": request.path}, request=request)
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        body = f"<!DOCTYPE html><title>天目</title><h1>{status}</h1>"
    response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    response.tianmu_error_page = True
    return response


def page_not_found(request, exception=None):
    return error_page(request, 404)


def permission_denied(request, exception=None):
    return error_page(request, 403)


def server_error(request):
    return error_page(request, 500)
