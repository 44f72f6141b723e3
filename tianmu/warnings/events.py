"""The event types warnings emit. The lifecycle's (lifecycles.py: submitted, rejected, approved, issued, cancelled)
carry WarningPayload plus the transition's fields; the rest (the system's updated and expired among them) are
declared here.

Dissemination (叫应, the comms app) is wired by one handler on "warnings.warning.issued" (msg_type Alert or
Update) and "warnings.warning.cancelled": WarningPayload holds everything a dispatcher needs (docs/warnings.md)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from tianmu.core.eventtypes import declare

__all__ = ["WarningPayload"]


class WarningPayload(BaseModel):
    """A warning version as it is after the change (subject `warning:{id}`)."""

    warning: int = Field(description=_("预警编号"))
    version: int = Field(description=_("版本号"))
    previous: int | None = Field(description=_("所更新的上一版本编号"))
    origin: str = Field(description=_("来源:manual / alarm / external"))
    hazard_type: str = Field(description=_("预警类型"))
    level: str = Field(description=_("等级:blue / yellow / orange / red"))
    state: str = Field(description=_("状态"))
    region: str = Field(description=_("责任区域代码"))
    regions: list[str] = Field(description=_("预警区域代码(镇街、村社)"))
    region_ids: list[int] = Field(description=_("预警区域编号"))
    polygon: bool = Field(description=_("是否有地图划定区域"))
    title: str = Field(description=_("标题"))
    text: str = Field(description=_("预警内容与公众防御指引"))
    url: str = Field(description=_("预警页面地址(站内路径)"))
    onset: str = Field(description=_("生效时间(ISO 8601)"))
    expires: str = Field(description=_("失效时间(ISO 8601)"))
    identifier: str | None = Field(description=_("最近一条 CAP 消息的标识"))
    msg_type: str | None = Field(description=_("最近一条 CAP 消息的类型:Alert / Update / Cancel"))


class Ended(WarningPayload):
    """The system ended a version: replaced by its next version (updated) or past its expiry (expired)."""

    from_state: str = Field(description=_("变化前的状态"))
    to_state: str = Field(description=_("变化后的状态"))
    by: int | None = Field(description=_("替代它的新版本编号(更新时)"))


class Merged(WarningPayload):
    alarm: int = Field(description=_("并入的告警编号"))
    raised_from: str | None = Field(description=_("因告警升级而提高前的等级"))


SERVICES = "warnings.services"

declare("warnings.warning.drafted", WarningPayload, _("起草了一条预警(人工、新版本或由监测告警)"),
        emitted_by=SERVICES)
declare("warnings.warning.edited", WarningPayload, _("修改了预警草稿"), emitted_by=SERVICES)
declare("warnings.warning.merged", Merged, _("同一镇街时间窗内的告警并入已有的预警草稿"),
        emitted_by="warnings.handlers.draft_from_alarms")
declare("warnings.warning.updated", Ended, _("新版本签发,此版本被替代"), emitted_by="warnings.services.supersede")
declare("warnings.warning.expired", Ended, _("预警到了失效时间"), emitted_by="warnings.services.expire_due")
declare("warnings.warning.imported", WarningPayload, _("导入了其他机关发布的 CAP 预警(只读)"),
        emitted_by="warnings.services.import_cap")
