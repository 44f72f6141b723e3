"""Core data: administrative regions, users with roles, API tokens, the event outbox and dead letters, and the
abstract bases of record kinds (RegionalModel, PlacedModel)."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .choices import RegionLevel, Role

__all__ = ["Region", "User", "ApiToken", "Event", "EventCursor", "SeenMark", "DeadLetter", "RegionalModel", "PlacedModel"]


class RegionLightManager(models.Manager):
    """Regions without their boundary GeoJSON: used for related-object access (user.region, record.region),
    which never needs the polygon and would otherwise load ~18 KB for the district on every request."""

    def get_queryset(self):
        return super().get_queryset().defer("boundary")


class Region(models.Model):
    """An administrative region: the district, a town (镇街) or a village/community (村社).

    Codes follow GB/T 2260 and its township extension: 6 digits for the district, 9 for a town, 12 for a
    village, so a region's subtree is every region whose code starts with its code.
    """

    code = models.CharField(_("区划代码"), max_length=12, unique=True)
    name = models.CharField(_("名称"), max_length=64)
    name_en = models.CharField(_("英文名称"), max_length=128, blank=True,
                               help_text=_("英文界面显示的名称(拼音加类型,如 Longgang Town);留空保存时按拼音生成"))
    level = models.CharField(_("层级"), max_length=16, choices=RegionLevel.choices, db_index=True)
    kind = models.CharField(_("类型"), max_length=16, blank=True, help_text=_("镇/街道/村/社区"))
    parent = models.ForeignKey("self", verbose_name=_("上级"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    population = models.PositiveIntegerField(_("常住人口"), default=0)
    households = models.PositiveIntegerField(_("户数"), default=0)
    area_km2 = models.FloatField(_("面积(km²)"), default=0)
    lon = models.FloatField(_("中心经度"))
    lat = models.FloatField(_("中心纬度"))
    min_lon = models.FloatField(default=0)
    min_lat = models.FloatField(default=0)
    max_lon = models.FloatField(default=0)
    max_lat = models.FloatField(default=0)
    boundary = models.JSONField(_("边界(GeoJSON)"), null=True, blank=True)

    objects = models.Manager()
    light = RegionLightManager()

    class Meta:
        verbose_name = _("行政区划")
        verbose_name_plural = _("行政区划")
        ordering = ["code"]
        base_manager_name = "light"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.name_en and self.name:
            from .names import english_region_name

            self.name_en = english_region_name(self.name)[:128]
        super().save(*args, **kwargs)

    @property
    def town(self) -> Region | None:
        """The town (镇街) this region lies in, or None for the district."""
        if self.level == RegionLevel.TOWN:
            return self
        if self.level == RegionLevel.VILLAGE:
            return self.parent
        return None

    def contains(self, other: Region | None) -> bool:
        return other is not None and other.code.startswith(self.code)


class User(AbstractUser):
    """A person (or department system) with one role and one home region that bounds what it sees."""

    role = models.CharField(_("角色"), max_length=24, choices=Role.choices, default=Role.VILLAGE_RESPONDER)
    region = models.ForeignKey(Region, verbose_name=_("所属区域"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="users")
    phone = models.CharField(_("电话"), max_length=32, blank=True)
    title = models.CharField(_("职务"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    def get_full_name(self) -> str:
        """Family name first for Chinese names (陈立明), "given family" for Latin ones (core/names.py)."""
        from .names import full_name

        return full_name(self.first_name, self.last_name)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def can_write(self) -> bool:
        """Whether the role changes data anywhere (the permission table in core/scope.py decides)."""
        from .scope import write_prefix

        return write_prefix(self) is not None


class ApiToken(models.Model):
    """A bearer token for another department's system. Only a hash is stored; the key is shown once."""

    user = models.ForeignKey(User, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("名称"), max_length=64)
    prefix = models.CharField(max_length=8, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    expires_at = models.DateTimeField(_("有效期至"), null=True, blank=True,
                                      help_text=_("留空为长期有效;到期后接口拒绝此令牌(401)"))
    revoked = models.BooleanField(_("已吊销"), default=False)

    class Meta:
        verbose_name = _("接口令牌")
        verbose_name_plural = _("接口令牌")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def new_key(cls) -> str:
        return "tm_" + secrets.token_urlsafe(32)


class Event(models.Model):
    """A domain event, appended by a service in the same transaction as the change it describes.

    The table is the outbox: consumers read it in id order with a saved cursor (EventCursor), so a crash
    loses nothing, and it is the audit trail of who did what when.
    """

    type = models.CharField(_("事件类型"), max_length=64, db_index=True)
    region = models.ForeignKey(Region, verbose_name=_("区域"), null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    region_code = models.CharField(max_length=12, blank=True, db_index=True)
    actor = models.ForeignKey(User, verbose_name=_("操作人"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    subject = models.CharField(_("对象"), max_length=128, blank=True, db_index=True)
    payload = models.JSONField(_("内容"), default=dict)
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    # PostgreSQL: the id of the transaction that wrote the event (pg_current_xact_id()); 0 on SQLite, whose
    # writers commit one at a time, and for events written before this column existed. Consumers read in
    # (txid, id) order and only events of transactions older than every running one, so an event whose
    # transaction commits late is never skipped (see events.py).
    txid = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("领域事件")
        verbose_name_plural = _("领域事件")
        ordering = ["id"]
        indexes = [models.Index(fields=["txid", "id"], name="core_event_txid_id")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} {self.subject}"


class EventCursor(models.Model):
    """How far a named consumer has processed the event outbox, and how its handler is faring.

    The position is the (txid, id) of the last event passed, in the order consumers read (events.py)."""

    consumer = models.CharField(_("消费者"), max_length=64, primary_key=True)
    position = models.BigIntegerField(_("位置"), default=0)
    txid = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    processed = models.BigIntegerField(_("已处理"), default=0)
    last_success_at = models.DateTimeField(_("最近成功"), null=True, blank=True)
    failures = models.PositiveIntegerField(_("连续失败"), default=0)
    failing_event = models.BigIntegerField(_("失败的事件"), null=True, blank=True)
    retry_at = models.DateTimeField(_("下次重试"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    last_error_at = models.DateTimeField(_("最近错误时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("事件消费游标")
        verbose_name_plural = _("事件消费游标")


class SeenMark(models.Model):
    """When a person last looked at something that counts what is new (the alarm list: "new since you last
    looked"), one row per user and key. Written by `core.attention.mark_seen`, never by a form."""

    user = models.ForeignKey(User, verbose_name=_("用户"), on_delete=models.CASCADE, related_name="seen_marks")
    key = models.CharField(_("对象"), max_length=64)
    seen_at = models.DateTimeField(_("最后查看时间"), default=timezone.now)

    class Meta:
        verbose_name = _("查看记录")
        verbose_name_plural = _("查看记录")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="core_seenmark_user_key")]

    def __str__(self) -> str:
        return f"{self.user} · {self.key}"


class DeadLetter(models.Model):
    """A message a worker could not process, kept with the reason so nothing is silently lost."""

    source = models.CharField(_("来源"), max_length=100, db_index=True)
    key = models.CharField(_("标识"), max_length=200, blank=True)
    payload = models.TextField(_("原始内容"))
    reason = models.TextField(_("原因"))
    created_at = models.DateTimeField(_("时间"), default=timezone.now, db_index=True)
    resolved = models.BooleanField(_("已处理"), default=False)

    class Meta:
        verbose_name = _("死信")
        verbose_name_plural = _("死信")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.source}: {self.reason[:60]}"


class RegionalModel(models.Model):
    """Base for every record that belongs to a region without sitting at a point (a plan, a notice, a duty roster):
    a code, a name, a region (given by its code) and who to call, with change history. The record-kind
    framework (core/registry/) gives such models lists, filters, statistics by type and town, Excel
    import/export, the API, history and scope checks, but no map layer and no spatial filters."""

    code = models.CharField(_("编码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=128, db_index=True)
    region = models.ForeignKey(Region, verbose_name=_("所属区域"), on_delete=models.PROTECT, related_name="+")
    contact = models.CharField(_("负责人"), max_length=64, blank=True)
    phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    notes = models.TextField(_("备注"), blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    history = HistoricalRecords(inherit=True)

    class Meta:
        abstract = True
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


def _right_after(anchor: str, *fields: models.Field) -> tuple[models.Field, ...]:
    """Give `fields` places in field order right after RegionalModel's `anchor` field. Django orders a model's
    fields by creation, so without this a subclass's fields would come after contact, phone and notes; with it,
    placed records keep the order they always had (code, name, region, lon, lat, address, contact, …) in
    forms, sheets, the API and the admin."""
    start = RegionalModel._meta.get_field(anchor).creation_counter
    for i, f in enumerate(fields, start=1):
        f.creation_counter = start + i / (len(fields) + 1)
    return fields


class PlacedModel(RegionalModel):
    """Base for every record that sits at a place inside a region: a regional record with a point (WGS84
    lon/lat) and an address. Its region may be left out and is then located from the point."""

    lon, lat, address = _right_after(
        "region",
        models.FloatField(_("经度")),
        models.FloatField(_("纬度")),
        models.CharField(_("地址"), max_length=200, blank=True),
    )

    class Meta(RegionalModel.Meta):
        abstract = True
