"""Errors raised by services, carrying per-field messages in Chinese and English."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils import translation
from django.utils.functional import lazy

__all__ = ["ScopeError", "ServiceError", "bilingual", "formatted", "validation_messages"]


def bilingual(message) -> dict[str, str]:
    """Render a (lazy) translatable message in both platform languages."""
    with translation.override("zh-hans"):
        zh = str(message)
    with translation.override("en"):
        en = str(message)
    return {"zh": zh, "en": en}


def _format(message, params) -> str:
    # `message % params`, not `str(message) % params`: a lazy plural (ngettext_lazy) picks its form from params.
    return str(message % params) if params else str(message)


# A translatable message with %-placeholders, filled in whenever it is rendered: bilingual() then gives each
# language its own text (`_("…%(n)s…") % {...}` would fix the text in the language active at the time).
formatted = lazy(_format, str)


def validation_messages(error) -> list:
    """The messages of a Django ValidationError, still translatable (`error.messages` renders them in the
    language active at validation, so "This field is required." would be Chinese in message_en)."""
    return [formatted(e.message, e.params) for e in error.error_list]


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
