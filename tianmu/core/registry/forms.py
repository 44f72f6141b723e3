"""The one validation path for records of every kind: pages, API and imports all use `RecordForm`."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.forms import modelform_factory
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from ..models import Region
from ..scope import region_prefix, scope_queryset

__all__ = ["record_form_class", "normalize_input", "with_defaults", "build_form", "TRUE_WORDS", "FALSE_WORDS",
           "text_limit", "limit_text"]

TRUE_WORDS = {"1", "true", "yes", "y", "是", "有", "已", "t", "√", "✓"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "无", "未", "f", "×", ""}

_FORM_CACHE: dict[str, type[forms.ModelForm]] = {}


class RegionField(forms.ModelChoiceField):
    """A region given by its code (e.g. 330112001001). Optional for placed kinds (located from the coordinates
    when blank), required for regional ones."""

    def label_from_instance(self, obj):
        indent = {"district": "", "town": "— ", "village": "—— "}.get(obj.level, "")
        return f"{indent}{obj.name} ({obj.code})"


def text_limit() -> int:
    """The longest text a record's long-text field (a TextField: notes, a notice's body) may hold, in characters
    (settings.TIANMU_MAX_TEXT_LENGTH). Short fields have their model's max_length."""
    return settings.TIANMU_MAX_TEXT_LENGTH


def limit_text(model_field, form_field) -> None:
    """Give a long-text form field its maximum length (validated, and `maxlength` in the page)."""
    if isinstance(model_field, models.TextField) and form_field is not None and not form_field.max_length:
        form_field.max_length = text_limit()
        form_field.validators.append(MaxLengthValidator(text_limit()))
        form_field.widget.attrs["maxlength"] = str(text_limit())


def record_form_class(kind) -> type[forms.ModelForm]:
    if kind.slug not in _FORM_CACHE:
        form = modelform_factory(kind.model, fields=kind.editable_fields())
        for name, form_field in form.base_fields.items():
            limit_text(kind.field(name), form_field)
        _FORM_CACHE[kind.slug] = form
    return _FORM_CACHE[kind.slug]


def build_form(kind, data=None, *, instance=None, actor=None, limit_regions: bool = True):
    """A bound or unbound RecordForm. Links to other placed records offer only those the actor may read;
    region choices are the actor's regions (all regions when validating, so that the service can say
    why a region is refused)."""
    form = record_form_class(kind)(data=data, instance=instance)
    for name in kind.link_fields():
        field = form.fields[name]
        field.to_field_name = "code"  # linked records are named by their code, in forms, API and sheets
        if any(f.name == "region" for f in field.queryset.model._meta.fields):
            field.queryset = scope_queryset(field.queryset, actor)
    qs = Region.objects.all()
    prefix = region_prefix(actor) if (actor is not None and limit_regions) else ""
    if prefix:
        qs = qs.filter(code__startswith=prefix)
    elif prefix is None:
        qs = qs.none()
    placed = kind.placed()
    form.fields["region"] = RegionField(
        queryset=qs.order_by("code"), to_field_name="code", required=not placed,
        label=kind.field("region").verbose_name,
        help_text=_("留空则按坐标自动确定所属村社") if placed else _("村社或镇街的区划代码"),
        error_messages={"required": _("请填写区划代码")},
    )
    for name in ("lon", "lat"):
        if name in form.fields:
            form.fields[name].widget.attrs.update({"step": "0.000001"})
    return form


def _choice_lookup(field) -> dict[str, str]:
    table = {}
    for value, label in field.flatchoices:
        table[str(value).lower()] = value
        for lang in ("zh-hans", "en"):
            with translation.override(lang):
                table[str(label).strip().lower()] = value
    return table


def with_defaults(kind, data: dict) -> dict:
    """Fill fields the caller left out with the model's defaults (an API client that omits `has_water`
    means the default, not False)."""
    out = dict(data)
    for name in kind.editable_fields():
        field = kind.field(name)
        if name not in out and field.has_default():
            out[name] = field.get_default()
    return out


def normalize_input(kind, data: dict) -> dict:
    """Accept what people type in spreadsheets: choice labels in Chinese or English, 是/否 for booleans."""
    out = {}
    for key, value in data.items():
        if key not in kind.editable_fields():
            out[key] = value
            continue
        field = kind.field(key)
        if isinstance(value, str):
            value = value.strip()
        if field.choices and value not in (None, ""):
            value = _choice_lookup(field).get(str(value).lower(), value)
        elif field.get_internal_type() == "BooleanField" and not isinstance(value, bool):
            text = "" if value is None else str(value).strip().lower()
            value = True if text in TRUE_WORDS else False if text in FALSE_WORDS else value
        elif (key == "region" or key in kind.link_fields()) and value is not None and not isinstance(value, str):
            value = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        out[key] = value
    return out
