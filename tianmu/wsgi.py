"""WSGI entry point, for servers without ASGI (live pages then fall back to polling)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
application = get_wsgi_application()
