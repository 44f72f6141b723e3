"""The command-communications network (指挥通信网): responsible persons and their channels (a record kind),
dispatches (one message to everyone responsible for some regions) and their deliveries (one row per person and
channel: the outbox the send worker works through), and the call-and-respond (叫应) state on them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tianmu.core.choices import Hazard, WarningLevel
from tianmu.core.models import Region, RegionalModel, User

from .choices import CHANNELS, ConfirmVia, DeliveryStatus, DispatchStatus, Duty

__all__ = ["Recipient", "Dispatch", "Delivery", "MOBILE_RE", "split_list"]

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def split_list(text: str) -> list[str]:
    """'sms, dingtalk;inbox' or '短信、钉钉' cells → ['sms', 'dingtalk', 'inbox'] (separators: , ; 、 space)."""
    return [p for p in re.split(r"[,;，；、\s]+", text or "") if p]


class Recipient(RegionalModel):
    """A responsible person (责任人): who answers for a region (town or village flood-control lead, grid worker,
    hazard-point monitor, shelter manager, enterprise safety officer), how to reach them (channels tried in
    order), whom to escalate to (their superior), and what they subscribe to (a region subtree, hazard types,
    a minimum level). `name` is the person's name, family name first."""

    duty = models.CharField(_("责任类型"), max_length=24, choices=Duty.choices, default=Duty.VILLAGE_LEAD,
                            db_index=True)
    position = models.CharField(_("职务"), max_length=64, blank=True)
    mobile = models.CharField(_("手机号码"), max_length=11, blank=True, db_index=True,
                              help_text=_("11位手机号,用于短信和钉钉@提醒"))
    dingtalk_user = models.CharField(_("钉钉用户ID"), max_length=64, blank=True)
    email = models.EmailField(_("电子邮箱"), blank=True)
    broadcast_point = models.CharField(_("应急广播点编号"), max_length=64, blank=True)
    channels = models.CharField(_("通知渠道(按顺序)"), max_length=100, blank=True,
                                help_text=_("如 inbox,sms,dingtalk;留空按系统默认顺序"))
    account = models.CharField(_("关联账号"), max_length=150, blank=True, db_index=True,
                               help_text=_("平台用户名:站内消息和叫应按钮出现在该用户的收件箱"))
    superior = models.ForeignKey("self", verbose_name=_("上级责任人"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="subordinates")
    hazard_source = models.ForeignKey("registry.HazardSource", verbose_name=_("负责的危险源"), null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    shelter = models.ForeignKey("registry.Shelter", verbose_name=_("负责的避灾场所"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    watch_code = models.CharField(_("订阅区域代码"), max_length=12, blank=True, db_index=True,
                                  help_text=_("接收该区域(含下级)的预警和指令;留空为所属区域"))
    hazard_types = models.CharField(_("订阅灾种"), max_length=200, blank=True,
                                    help_text=_("如 typhoon,rainstorm;留空为全部灾种"))
    min_level = models.CharField(_("最低接收级别"), max_length=8, choices=WarningLevel.choices, blank=True,
                                 default=WarningLevel.BLUE, help_text=_("留空为全部级别"))
    active = models.BooleanField(_("在岗"), default=True, db_index=True)

    class Meta(RegionalModel.Meta):
        verbose_name = _("责任人")
        verbose_name_plural = _("责任人")

    def clean(self):
        errors = {}
        if self.mobile and not MOBILE_RE.match(self.mobile):
            errors["mobile"] = _("手机号码应为11位数字,以1开头")
        bad = [c for c in split_list(self.channels) if c not in CHANNELS]
        if bad:
            errors["channels"] = _("未知的通知渠道:%(bad)s(可用:%(ok)s)") % {"bad": "、".join(bad),
                                                                            "ok": ",".join(CHANNELS)}
        else:
            self.channels = ",".join(split_list(self.channels))
        hazards = set(Hazard.values)
        bad = [h for h in split_list(self.hazard_types) if h not in hazards]
        if bad:
            errors["hazard_types"] = _("未知的灾种:%(bad)s(可用:%(ok)s)") % {"bad": "、".join(bad),
                                                                          "ok": ",".join(Hazard.values)}
        else:
            self.hazard_types = ",".join(split_list(self.hazard_types))
        if self.superior_id and self.pk and self.superior_id == self.pk:
            errors["superior"] = _("上级责任人不能是本人")
        if self.watch_code and not Region.objects.filter(code=self.watch_code).exists():
            errors["watch_code"] = _("没有这个区划代码")
        if self.account and not User.objects.filter(username=self.account).exists():
            errors["account"] = _("没有这个平台用户名")
        if errors:
            raise ValidationError(errors)

    def channel_list(self) -> list[str]:
        from .conf import conf

        return split_list(self.channels) or list(conf("COMMS_DEFAULT_CHANNELS"))


class Dispatch(models.Model):
    """One message sent to everyone responsible for some regions (a warning's dissemination, a commander's
    order): what, to which regions and hazards, at which level, and whether recipients must confirm (叫应).
    `source` and `subject_id` name the caller's object (e.g. "warnings.warning", "42"); comms knows nothing
    more of it."""

    source = models.CharField(_("来源"), max_length=64, db_index=True)
    subject_id = models.CharField(_("来源对象"), max_length=64, blank=True, db_index=True)
    subject_url = models.CharField(_("来源链接"), max_length=300, blank=True)
    title = models.CharField(_("标题"), max_length=200)
    text = models.TextField(_("正文"))
    level = models.CharField(_("级别"), max_length=8, choices=WarningLevel.choices, blank=True)
    regions = models.JSONField(_("发送区域"), default=list)
    hazard_types = models.JSONField(_("灾种"), default=list, blank=True)
    confirm = models.BooleanField(_("要求叫应"), default=False)
    confirm_minutes = models.PositiveIntegerField(_("叫应时限(分钟)"), default=30)
    region = models.ForeignKey(Region, verbose_name=_("所属区域"), on_delete=models.PROTECT, related_name="+",
                               help_text=_("发送区域的共同上级:决定谁能查看和撤销"))
    status = models.CharField(_("状态"), max_length=12, choices=DispatchStatus.choices,
                              default=DispatchStatus.ACTIVE)
    created_by = models.ForeignKey(User, verbose_name=_("发送人"), null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("发送时间"), default=timezone.now, db_index=True)
    cancelled_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("发送批次")
        verbose_name_plural = _("发送批次")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    """One message to one person over one channel: the outbox row the send worker claims (lease), sends, and
    records (status, reason, the gateway's message id, billed segments). At most one row per dispatch, person
    and channel (a unique constraint): escalation to the next channel or the superior makes a new row, a retry
    reuses the row. Confirmation (叫应) is per person and dispatch, stamped on every row of theirs."""

    dispatch = models.ForeignKey(Dispatch, verbose_name=_("发送批次"), on_delete=models.CASCADE,
                                 related_name="deliveries")
    recipient = models.ForeignKey(Recipient, verbose_name=_("责任人"), on_delete=models.PROTECT, related_name="+")
    region = models.ForeignKey(Region, verbose_name=_("所属区域"), on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("渠道"), max_length=12)
    # "" for the dispatch's own message; "esc:<recipient id>" for a superior's notice that that person has not
    # confirmed (so a superior who also receives the message itself gets both).
    purpose = models.CharField(_("用途"), max_length=24, blank=True, default="")
    note = models.CharField(_("附言"), max_length=300, blank=True)
    address = models.CharField(_("发送地址"), max_length=200, blank=True)
    status = models.CharField(_("状态"), max_length=12, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.QUEUED, db_index=True)
    reason = models.CharField(_("原因"), max_length=300, blank=True)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    next_attempt_at = models.DateTimeField(_("下次尝试"), default=timezone.now, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    # Stamped (and committed) just before each remote send, cleared with its result: a row found with one after a
    # crash may have reached the far end (sending.py decides per channel whether to send again).
    attempt_key = models.CharField(_("进行中的发送"), max_length=64, blank=True)
    provider_id = models.CharField(_("网关消息ID"), max_length=128, blank=True)
    segments = models.PositiveIntegerField(_("计费条数"), default=0)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    confirm_required = models.BooleanField(_("要求叫应"), default=False)
    confirm_due_at = models.DateTimeField(_("叫应截止"), null=True, blank=True, db_index=True)
    confirmed_at = models.DateTimeField(_("确认时间"), null=True, blank=True)
    confirmed_by = models.ForeignKey(User, verbose_name=_("确认账号"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    confirmed_via = models.CharField(_("确认方式"), max_length=8, choices=ConfirmVia.choices, blank=True)
    escalation = models.PositiveSmallIntegerField(_("升级次数"), default=0)
    escalated_from = models.ForeignKey("self", verbose_name=_("由此升级"), null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    escalated_at = models.DateTimeField(_("已升级"), null=True, blank=True,
                                        help_text=_("本条超时未确认,已转下一渠道或上级"))
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("消息投递")
        verbose_name_plural = _("消息投递")
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["dispatch", "recipient", "channel", "purpose"],
                                               name="comms_delivery_once_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.dispatch_id}/{self.recipient_id}/{self.channel}"

    @property
    def key(self) -> str:
        """The idempotency key the gateways see (SMS out_id, broadcast request_id, email Message-ID): fixed for
        the row, so a re-send after a crash is recognised by the far end."""
        return f"tm{self.dispatch_id}d{self.pk}"
