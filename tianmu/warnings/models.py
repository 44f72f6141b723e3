"""Warnings (预警) and the CAP messages published for them.

A HazardWarning is one version of a warning: drafted (by a person or from alarms), submitted, approved, issued, and
then replaced by a new version (`previous` points back), cancelled, or expired. Its people and times are fields;
its state changes only through the lifecycle (lifecycles.py). Warnings imported from another authority's CAP
file are `origin = external` and read-only. Every published message (Alert, Update, Cancel) is a CapMessage
holding the XML exactly as published."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .choices import HazardType, Level, Origin, WarningState

__all__ = ["HazardWarning", "CapMessage"]

USER = settings.AUTH_USER_MODEL


class HazardWarning(models.Model):
    """One version of a warning for one or more regions or a drawn polygon."""

    origin = models.CharField(_("来源"), max_length=12, choices=Origin.choices, default=Origin.MANUAL)
    hazard_type = models.CharField(_("预警类型"), max_length=24, choices=HazardType.choices, db_index=True)
    level = models.CharField(_("预警等级"), max_length=8, choices=Level.choices, db_index=True)
    state = models.CharField(_("状态"), max_length=12, choices=WarningState.choices, default=WarningState.DRAFT,
                             db_index=True, editable=False)
    region = models.ForeignKey("core.Region", verbose_name=_("责任区域"), on_delete=models.PROTECT,
                               related_name="+", help_text=_("一个镇街的预警归该镇街,跨镇街或全区的归区里"))
    areas = models.ManyToManyField("core.Region", verbose_name=_("预警区域"), blank=True, related_name="+")
    polygon = models.JSONField(_("划定区域(GeoJSON)"), null=True, blank=True)
    onset = models.DateTimeField(_("生效时间"))
    expires = models.DateTimeField(_("失效时间"), db_index=True)
    headline = models.CharField(_("标题"), max_length=200)
    description = models.TextField(_("预警内容"))
    instruction_public = models.TextField(_("公众防御指引"), blank=True)
    instruction_responders = models.TextField(_("责任人行动要求"), blank=True)
    headline_en = models.CharField(_("英文标题"), max_length=200, blank=True)
    description_en = models.TextField(_("英文内容"), blank=True)
    instruction_en = models.TextField(_("英文防御指引"), blank=True)
    citations = models.JSONField(_("依据(监测告警)"), default=list, blank=True)
    alarm_ids = models.JSONField(default=list, blank=True)
    previous = models.OneToOneField("self", verbose_name=_("上一版本"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="next_version")
    version = models.PositiveIntegerField(_("版本"), default=1)
    created_by = models.ForeignKey(USER, verbose_name=_("起草人"), null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(_("起草时间"), default=timezone.now, db_index=True)
    submitted_by = models.ForeignKey(USER, verbose_name=_("提交人"), null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(_("提交时间"), null=True, blank=True)
    approved_by = models.ForeignKey(USER, verbose_name=_("审核人"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    issued_by = models.ForeignKey(USER, verbose_name=_("签发人"), null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    issued_at = models.DateTimeField(_("发布时间"), null=True, blank=True)
    ended_by = models.ForeignKey(USER, verbose_name=_("解除人"), null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_note = models.TextField(_("解除说明"), blank=True)
    # External (imported) warnings: who sent them and their own identifier.
    external_sender = models.CharField(_("外部发布单位"), max_length=200, blank=True)
    external_identifier = models.CharField(_("外部标识"), max_length=200, blank=True, db_index=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("预警")
        verbose_name_plural = _("预警")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "expires"])]

    def __str__(self) -> str:
        return self.headline

    @property
    def external(self) -> bool:
        return self.origin == Origin.EXTERNAL

    def subject(self) -> str:
        return f"warning:{self.pk}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("warnings:detail", args=[self.pk])

    def chain(self) -> list[HazardWarning]:
        """This version and every earlier one, oldest first."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.previous
        return out[::-1]


class CapMessage(models.Model):
    """A CAP 1.2 message as published (or, for external warnings, as received)."""

    warning = models.ForeignKey(HazardWarning, verbose_name=_("预警"), on_delete=models.PROTECT, related_name="messages")
    msg_type = models.CharField(_("消息类型"), max_length=8)  # Alert / Update / Cancel
    identifier = models.CharField(_("标识"), max_length=200)
    sender = models.CharField(_("发送方"), max_length=200)
    sent = models.DateTimeField(_("发送时间"), db_index=True)
    references = models.TextField(_("引用"), blank=True)
    xml = models.TextField(_("CAP 文件"))
    received = models.BooleanField(_("外部导入"), default=False)

    class Meta:
        verbose_name = _("CAP 消息")
        verbose_name_plural = _("CAP 消息")
        ordering = ["-sent", "-id"]
        constraints = [models.UniqueConstraint(fields=["sender", "identifier"], name="warnings_cap_unique")]

    def __str__(self) -> str:
        return self.identifier

    def reference(self) -> str:
        """`sender,identifier,sent` as CAP's <references> lists it."""
        from .cap import cap_time

        return f"{self.sender},{self.identifier},{cap_time(self.sent)}"
