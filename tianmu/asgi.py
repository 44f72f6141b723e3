"""ASGI entry point (uvicorn): `uvicorn tianmu.asgi:application`.

Live streams (server-sent events) are served by Django's ASGI handler, which can hold thousands of idle
connections. Every other request goes to Django's WSGI handler in a thread pool (a2wsgi): the views are
synchronous, and Django's ASGI path hands each one to a thread anyway, at several times the overhead
(measured in bench/, see docs/performance.md).
"""

import os

from a2wsgi import WSGIMiddleware
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")

django_asgi = get_asgi_application()
django_wsgi = WSGIMiddleware(get_wsgi_application(), workers=int(os.environ.get("TIANMU_WSGI_THREADS", "8")))



async def application(scope, receive, send):
    """Paths ending in /stream are live feeds (e.g. /events/stream); everything else is a plain request."""
    if scope["type"] == "http" and not scope["path"].rstrip("/").endswith("/stream"):
        await django_wsgi(scope, receive, send)
    else:
        await django_asgi(scope, receive, send)
