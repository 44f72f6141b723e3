"""Errors raised by services, carrying per-field messages in Chinese and English."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils import translation

__all__ = ["ScopeError", "ServiceError", "bilingual"]


def bilingual(message) -> dict[str, str]:
    """Render a (lazy) translatable message in both platform languages."""
    with translation.override("zh-hans"):
        zh = str(message)
    with translation.override("en"):
        en = str(message)
    return {"zh": zh, "en": en}


class ScopeError(PermissionDenied):
    """The actor may not read or change this record: outside their region, or their role forbids it."""

    def __init__(self, message=None):
        from django.utils.translation import gettext_lazy as _

        self.message = message or _("超出您的权限或管辖区域")
        super().__init__(str(self.message))


class ServiceError(Exception):
    """Invalid input for a service. `errors` maps a field name ('__all__' for the record) to messages."""

    def __init__(self, errors: dict[str, list]):
        self.errors = {field: list(msgs) for field, msgs in errors.items()}
        super().__init__("; ".join(f"{f}: {', '.join(str(m) for m in ms)}" for f, ms in self.errors.items()))

    def as_list(self) -> list[dict]:
        out = []
        for field, msgs in self.errors.items():
            for msg in msgs:
                text = bilingual(msg)
                out.append({"field": field, "message": text["zh"], "message_en": text["en"]})
        return out
