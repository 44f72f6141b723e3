"""ASGI entry point (uvicorn): `uvicorn tianmu.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tianmu.settings")
application = get_asgi_application()
