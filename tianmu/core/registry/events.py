"""The event types every record kind emits, declared when the kind is registered:
`{app_label}.{model}.created / updated / deleted / imported / generated` (e.g. `registry.shelter.created`,
`sensing.station.imported`). Emitted by core/registry/services.py."""

from __future__ import annotations

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from ..eventtypes import declare

__all__ = ["VERBS", "RecordChanged", "RecordUpdated", "RecordsAdded", "declare_kind_events"]


class RecordChanged(BaseModel):
    code: str
    name: str
    kind: str = Field(description=_("记录类型的 slug,如 shelters"))


class RecordUpdated(RecordChanged):
    changes: dict[str, list] | None = Field(
        None, description=_("每个改动的字段:[修改前, 修改后];在管理后台保存时不提供"))


class RecordsAdded(BaseModel):
    kind: str = Field(description=_("记录类型的 slug"))
    count: int
    by_town: dict[str, int] = Field(description=_("各镇街(代码)的记录数"))


VERBS = {
    "created": (RecordChanged, _("新建了一条{kind}记录"), "core.registry.services.create_record / save_instance"),
    "updated": (RecordUpdated, _("修改了一条{kind}记录"), "core.registry.services.update_record / save_instance"),
    "deleted": (RecordChanged, _("删除了一条{kind}记录"), "core.registry.services.delete_record"),
    "imported": (RecordsAdded, _("从表格批量导入了{kind}记录"), "core.registry.services.bulk_create_records (import)"),
    "generated": (RecordsAdded, _("演示数据生成器批量生成了{kind}记录"),
                  "core.registry.services.bulk_create_records (demo)"),
}


def declare_kind_events(kind) -> None:
    for verb, (schema, description, emitted_by) in VERBS.items():
        declare(kind.event_type(verb), schema, format_lazy(description, kind=kind.model._meta.verbose_name),
                emitted_by=emitted_by, declared_in=__name__)
