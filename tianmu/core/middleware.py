"""Security headers beyond Django's own: a strict Content-Security-Policy (every asset is vendored)."""

from __future__ import annotations

from django.conf import settings

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

        lang = request.GET.get("lang") or request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if lang not in self.languages:
            lang = settings.LANGUAGE_CODE
        translation.activate(lang)
        request.LANGUAGE_CODE = lang
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", lang)
        return response
