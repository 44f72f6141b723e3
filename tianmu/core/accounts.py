"""Accounts: the services that create, change and delete users and API tokens, and their event types.

The admin (core/admin.py) saves through these, so delegated administration has one guard: scope.py decides who may
change which account (`users.manage` in the permission table, `can_manage_user`, `assignable_roles`), and every
change is an event (`core.user.*`, `core.token.*`) in the same transaction, so the audit log shows who gave whom
which role. A token's key is returned once by `issue_token` and never stored.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field

from .errors import ScopeError
from .events import emit
from .eventtypes import declare
from .models import ApiToken, User
from .scope import assignable_roles, can_manage_user

__all__ = ["check_user_change", "save_user", "delete_user", "password_changed", "issue_token", "save_token",
           "delete_token"]


class UserChanged(BaseModel):
    user: int
    username: str
    role: str
    fields: list[str] = Field(description=_("改动的字段名(不含任何密码内容)"))


class PasswordChanged(BaseModel):
    user: int
    username: str


class TokenChanged(BaseModel):
    token: int
    name: str
    user: int
    username: str
    expires_at: str | None = Field(description=_("到期时间(ISO 8601),空为长期有效"))
    revoked: bool
    fields: list[str]


SERVICE = "core.accounts"
declare("core.user.created", UserChanged, _("新建了一个用户账号"), emitted_by=f"{SERVICE}.save_user")
declare("core.user.updated", UserChanged, _("修改了一个用户账号(角色、区域、权限或资料)"),
        emitted_by=f"{SERVICE}.save_user")
declare("core.user.deleted", UserChanged, _("删除了一个用户账号"), emitted_by=f"{SERVICE}.delete_user")
declare("core.user.password_changed", PasswordChanged, _("管理员设置了一个用户的密码"),
        emitted_by=f"{SERVICE}.password_changed")
declare("core.token.issued", TokenChanged, _("签发了一个接口令牌"), emitted_by=f"{SERVICE}.issue_token")
declare("core.token.updated", TokenChanged, _("修改了一个接口令牌(名称、有效期或吊销)"),
        emitted_by=f"{SERVICE}.save_token")
declare("core.token.deleted", TokenChanged, _("删除了一个接口令牌"), emitted_by=f"{SERVICE}.delete_token")

# What only a superuser may change on an account: Django's own powers.
PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")


# ---- users -----------------------------------------------------------------------------------------------------------

def check_user_change(actor, user, original: User | None) -> None:
    """Raise ScopeError unless the actor may save `user` (unsaved changes; `original` as stored, None if new).

    The account as it was and as it would be must both be the actor's to manage (scope.can_manage_user): so the
    actor never reaches outside their region, never gives a role above their own and never moves anyone,
    themselves included, into a wider region. A non-superuser never changes superuser or staff status."""
    if actor.is_superuser:
        return
    if original is not None and not can_manage_user(actor, original):
        raise ScopeError(_("您无权修改该用户"))
    if user.role not in assignable_roles(actor):
        raise ScopeError(_("不能授予高于您自己的角色"))
    if not can_manage_user(actor, user):
        raise ScopeError(_("该用户的所属区域不在您的管辖范围内"))
    was = original or User()
    if user.is_superuser != was.is_superuser or user.is_staff != was.is_staff:
        raise ScopeError(_("只有超级管理员可以修改后台权限"))


def _user_payload(user, fields) -> dict:
    return {"user": user.pk, "username": user.username, "role": user.role, "fields": sorted(fields)}


def save_user(actor, user: User, *, created: bool, fields=()) -> User:
    """Save a user an admin form validated (`fields`: the names the form changed)."""
    original = None if created else User.objects.select_related("region").get(pk=user.pk)
    check_user_change(actor, user, original)
    with transaction.atomic():
        user.save()
        changed = [f for f in fields if f not in ("password", "password1", "password2", "usable_password")]
        emit("core.user.created" if created else "core.user.updated", actor=actor, region=user.region,
             subject=f"user:{user.pk}", payload=_user_payload(user, changed))
    return user


def delete_user(actor, user: User) -> None:
    if not can_manage_user(actor, user):
        raise ScopeError(_("您无权修改该用户"))
    with transaction.atomic():
        emit("core.user.deleted", actor=actor, region=user.region, subject=f"user:{user.pk}",
             payload=_user_payload(user, []))
        user.delete()


def password_changed(actor, user: User) -> None:
    """Record that the actor set the user's password (the admin's password form saved it, in this transaction)."""
    if not can_manage_user(actor, user):
        raise ScopeError(_("您无权修改该用户"))
    emit("core.user.password_changed", actor=actor, region=user.region, subject=f"user:{user.pk}",
         payload={"user": user.pk, "username": user.username})


# ---- API tokens ------------------------------------------------------------------------------------------------------

def _check_token(actor, token: ApiToken) -> None:
    if not can_manage_user(actor, token.user):
        raise ScopeError(_("您无权管理该用户的接口令牌"))


def _token_payload(token: ApiToken, fields) -> dict:
    return {"token": token.pk, "name": token.name, "user": token.user_id, "username": token.user.username,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None, "revoked": token.revoked,
            "fields": sorted(fields)}


def issue_token(actor, token: ApiToken) -> str:
    """Save a new token (user, name, optional expiry set) with a fresh key; return the key, shown once."""
    _check_token(actor, token)
    key = ApiToken.new_key()
    token.prefix, token.key_hash = key[:8], ApiToken.hash_key(key)
    with transaction.atomic():
        token.save()
        emit("core.token.issued", actor=actor, region=token.user.region, subject=f"token:{token.pk}",
             payload=_token_payload(token, []))
    return key


def save_token(actor, token: ApiToken, *, fields=()) -> ApiToken:
    original = ApiToken.objects.select_related("user").get(pk=token.pk)
    _check_token(actor, original)
    _check_token(actor, token)
    with transaction.atomic():
        token.save()
        emit("core.token.updated", actor=actor, region=token.user.region, subject=f"token:{token.pk}",
             payload=_token_payload(token, fields))
    return token


def delete_token(actor, token: ApiToken) -> None:
    _check_token(actor, token)
    with transaction.atomic():
        emit("core.token.deleted", actor=actor, region=token.user.region, subject=f"token:{token.pk}",
             payload=_token_payload(token, []))
        token.delete()
