from django.db import models
from django.utils.translation import gettext_lazy as _

from tianmu.core.models import RegionalModel


class NoticeCategory(models.TextChoices):
    WORK = "work", _("工作通知")
    WARNING = "warning", _("预警通知")
    MEETING = "meeting", _("会议通知")


class NoticeStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SUBMITTED = "submitted", _("待审核")
    PUBLISHED = "published", _("已发布")


class Notice(RegionalModel):
    """A notice to a region's staff: it belongs to a region, not to a point. Drafted, submitted, then published
    by a second person (lifecycles.py)."""

    category = models.CharField(_("类别"), max_length=16, choices=NoticeCategory.choices, default=NoticeCategory.WORK)
    body = models.TextField(_("正文"), blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.DRAFT,
                              editable=False)

    class Meta(RegionalModel.Meta):
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
