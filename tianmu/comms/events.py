"""Event types of the command-communications network. Sends themselves are recorded on their delivery rows
(status, times, the gateway's id); the events are the decisions: a dispatch made or cancelled, a person
confirming, an escalation, a person no channel reached."""

from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from tianmu.core.eventtypes import declare


class DispatchPayload(BaseModel):
    dispatch: int = Field(description=_("发送批次编号"))
    source: str
    subject_id: str
    level: str
    regions: list[str]
    recipients: int = Field(description=_("责任人数"))
    confirm: bool


class DispatchCancelledPayload(BaseModel):
    dispatch: int
    cancelled: int = Field(description=_("撤销的待发消息数"))


class ConfirmedPayload(BaseModel):
    dispatch: int
    delivery: int
    recipient: int
    via: str


class EscalatedPayload(BaseModel):
    dispatch: int
    delivery: int = Field(description=_("超时未确认的消息"))
    recipient: int
    step: str = Field(description=_("next_channel 或 superior"))
    to_recipient: int
    channel: str


class FailedPayload(BaseModel):
    dispatch: int
    delivery: int
    recipient: int
    channel: str
    reason: str


declare("comms.dispatch.created", DispatchPayload, _("一条消息按订阅发给了责任人(每人一条待发消息)"),
        emitted_by="tianmu.comms.services.dispatch")
declare("comms.dispatch.cancelled", DispatchCancelledPayload, _("发送批次被撤销,待发消息不再发送"),
        emitted_by="tianmu.comms.services.cancel")
declare("comms.delivery.confirmed", ConfirmedPayload, _("责任人确认收到(叫应)"),
        emitted_by="tianmu.comms.services.confirm")
declare("comms.delivery.escalated", EscalatedPayload, _("超时未确认,转下一渠道或上级责任人"),
        emitted_by="tianmu.comms.services.escalate_due")
declare("comms.delivery.failed", FailedPayload, _("所有渠道都未能送达某责任人"),
        emitted_by="tianmu.comms.sending")
