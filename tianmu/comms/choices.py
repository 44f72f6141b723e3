"""Choices of the command-communications network (指挥通信网)."""

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["Duty", "Channel", "CHANNELS", "DeliveryStatus", "OPEN_STATUSES", "DispatchStatus", "ConfirmVia"]


class Duty(models.TextChoices):
    """What a responsible person (责任人) answers for."""

    TOWN_LEAD = "town_lead", _("镇街防汛责任人")
    VILLAGE_LEAD = "village_lead", _("村社防汛责任人")
    GRID_WORKER = "grid_worker", _("网格员")
    MONITOR = "monitor", _("隐患点监测员")
    SHELTER_MANAGER = "shelter_manager", _("避灾安置场所管理员")
    ENTERPRISE_OFFICER = "enterprise_officer", _("企业安全员")
    DUTY_OFFICER = "duty_officer", _("值班人员")
    OTHER = "other", _("其他")


class Channel(models.TextChoices):
    INBOX = "inbox", _("站内消息")
    SMS = "sms", _("短信")
    DINGTALK = "dingtalk", _("钉钉")
    EMAIL = "email", _("电子邮件")
    BROADCAST = "broadcast", _("应急广播")


CHANNELS = [c.value for c in Channel]


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    DELIVERED = "delivered", _("已送达")
    FAILED = "failed", _("失败")
    CANCELLED = "cancelled", _("已撤销")


OPEN_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


class DispatchStatus(models.TextChoices):
    ACTIVE = "active", _("进行中")
    CANCELLED = "cancelled", _("已撤销")


class ConfirmVia(models.TextChoices):
    LINK = "link", _("短信/钉钉链接")
    INBOX = "inbox", _("站内确认")
    API = "api", _("接口")
    PHONE = "phone", _("电话回访登记")
