"""Delegated administration cannot escalate: a town user given staff status and every permission on users, tokens,
dead letters, regions and groups changes only users inside their town, never gives a role above their own, never
touches superuser/staff/groups/permissions, never moves themselves to a wider region, and sees only their town's
API tokens and no dead letters. Every attempt goes through the admin's own forms."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from tianmu.core.choices import Role
from tianmu.core.models import ApiToken, DeadLetter, Event, Region, User
from tianmu.core.scope import assignable_roles, can, can_manage_user, role_rank

USERS = "/admin/core/user/"


@pytest.fixture
def delegate(world):
    """Town A's staff member, made staff with every permission on core and auth models and a group of their own."""
    user = world["users"]["town_staff"]
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["core", "auth", "axes"]))
    group = Group.objects.create(name="镇街管理员")
    user.groups.add(group)
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per object


@pytest.fixture
def staff_client(client, delegate):
    client.force_login(delegate)
    return client


def form_data(form) -> dict:
    """The POST body the admin page would send for an unchanged form."""
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        value = value() if callable(value) else value
        if value is None or value is False:
            continue
        if isinstance(field, forms.SplitDateTimeField):
            local = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = local.date().isoformat(), local.strftime("%H:%M:%S")
        elif isinstance(value, list | tuple) or hasattr(value, "all"):
            data[name] = [getattr(v, "pk", v) for v in (value.all() if hasattr(value, "all") else value)]
        else:
            data[name] = getattr(value, "pk", value)
    return data


def change_user(client, user, **changes):
    page = client.get(f"{USERS}{user.pk}/change/")
    if page.status_code != 200:
        return page
    data = form_data(page.context["adminform"].form)
    data.update(changes)
    return client.post(f"{USERS}{user.pk}/change/", data)


def errors(response) -> dict:
    ctx = response.context
    return dict(ctx["adminform"].form.errors) if ctx and "adminform" in ctx else {}


# ---- the rank and the table ----------------------------------------------------------------------------------------

def test_role_rank_is_one_ordering_of_every_role():
    assert set(Role.values) == {r for r in Role.values if role_rank(r) >= 0}
    assert role_rank(Role.COMMANDER) == role_rank(Role.ADMIN) > role_rank(Role.LEADER) > role_rank(Role.TOWN_STAFF)
    assert role_rank(Role.TOWN_STAFF) > role_rank(Role.VILLAGE_RESPONDER) > role_rank(Role.API_CLIENT)


def test_who_may_manage_whom(world, delegate):
    users = world["users"]
    assert set(assignable_roles(delegate)) == {Role.TOWN_STAFF, Role.VILLAGE_RESPONDER, Role.API_CLIENT}
    assert assignable_roles(users["leader"]) == []  # the table gives leaders no "users.manage"
    assert set(assignable_roles(users["admin"])) == set(Role.values)
    responder = users["village_responder"]
    assert can_manage_user(delegate, responder)
    assert can_manage_user(delegate, delegate)
    assert not can_manage_user(delegate, users["other_town_staff"])  # another town
    assert not can_manage_user(delegate, users["commander"])        # the district
    assert not can_manage_user(users["village_responder"], responder)


@pytest.mark.parametrize("role", ["commander", "admin", "leader", "town_staff", "village_responder", "api_client",
                                  "other_town_staff"])
def test_the_user_admin_follows_the_permission_table(role, world, client):
    """Each role, made staff with every permission on users: changing village A1's responder succeeds exactly when
    the table grants "users.manage" in village A1 (the admin is left out of the write matrix)."""
    actor = world["users"][role]
    actor.is_staff = True
    actor.save()
    actor.user_permissions.set(Permission.objects.filter(content_type__app_label="core"))
    target = world["users"]["village_responder"]
    client.force_login(actor)
    r = change_user(client, target, title=f"by {role}")
    target.refresh_from_db()
    allowed = can(User.objects.get(pk=actor.pk), "users.manage", world["village_a"])
    assert (target.title == f"by {role}") is allowed, r.status_code
    assert allowed == (role in ("commander", "admin", "town_staff"))


# ---- escalating oneself ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"role": Role.COMMANDER},
    {"role": Role.LEADER},
    {"role": Role.ADMIN},
])
def test_a_delegate_cannot_raise_their_own_role(changes, staff_client, delegate):
    r = change_user(staff_client, delegate, **changes)
    assert r.status_code == 200 and "role" in errors(r)
    delegate.refresh_from_db()
    assert delegate.role == Role.TOWN_STAFF


def test_a_delegate_cannot_move_themselves_to_the_district_or_another_town(world, staff_client, delegate):
    for region in (world["district"], world["town_b"]):
        r = change_user(staff_client, delegate, region=region.pk)
        assert r.status_code == 200 and "region" in errors(r)
    delegate.refresh_from_db()
    assert delegate.region == world["town_a"]


def test_a_delegate_cannot_make_themselves_superuser_or_grant_permissions(staff_client, delegate):
    extra = Group.objects.create(name="区级全部权限")
    extra.permissions.set(Permission.objects.all())
    every = list(Permission.objects.values_list("pk", flat=True))
    r = change_user(staff_client, delegate, is_superuser="on", is_staff="on", groups=[extra.pk],
                    user_permissions=every, phone="0571-1")
    assert r.status_code == 302
    delegate.refresh_from_db()
    assert delegate.phone == "0571-1"  # the allowed change went through ...
    assert not delegate.is_superuser  # ... the rest was not part of the form
    assert list(delegate.groups.values_list("name", flat=True)) == ["镇街管理员"]
    assert delegate.user_permissions.count() < len(every)


def test_a_delegate_may_narrow_themselves(world, staff_client, delegate):
    r = change_user(staff_client, delegate, region=world["village_a"].pk)
    assert r.status_code == 302
    delegate.refresh_from_db()
    assert delegate.region == world["village_a"]


# ---- escalating others -------------------------------------------------------------------------------------------------

def test_a_delegate_changes_users_of_their_town_through_the_service(world, staff_client, delegate):
    responder = world["users"]["village_responder"]
    r = change_user(staff_client, responder, title="村应急员", role=Role.API_CLIENT)
    assert r.status_code == 302
    responder.refresh_from_db()
    assert (responder.title, responder.role) == ("村应急员", Role.API_CLIENT)
    event = Event.objects.get(type="core.user.updated")
    assert event.actor == delegate and event.region == world["village_a"]
    assert event.payload["user"] == responder.pk and set(event.payload["fields"]) == {"title", "role"}


@pytest.mark.parametrize("changes", [
    {"role": Role.COMMANDER}, {"role": Role.LEADER}, {"role": Role.ADMIN},
])
def test_a_delegate_cannot_raise_another_users_role(changes, world, staff_client):
    responder = world["users"]["village_responder"]
    r = change_user(staff_client, responder, **changes)
    assert r.status_code == 200 and "role" in errors(r)
    responder.refresh_from_db()
    assert responder.role == Role.VILLAGE_RESPONDER


def test_a_delegate_cannot_move_a_user_out_of_their_town(world, staff_client):
    responder = world["users"]["village_responder"]
    for region in (world["district"], world["village_b"]):
        r = change_user(staff_client, responder, region=region.pk)
        assert r.status_code == 200 and "region" in errors(r)
    responder.refresh_from_db()
    assert responder.region == world["village_a"]


def test_a_delegate_cannot_make_another_user_staff_or_superuser(world, staff_client):
    responder = world["users"]["village_responder"]
    r = change_user(staff_client, responder, is_staff="on", is_superuser="on",
                    user_permissions=list(Permission.objects.values_list("pk", flat=True)))
    assert r.status_code == 302
    responder.refresh_from_db()
    assert not responder.is_staff and not responder.is_superuser and not responder.user_permissions.exists()


@pytest.mark.parametrize("who", ["other_town_staff", "commander", "admin", "leader"])
def test_a_delegate_cannot_change_users_outside_their_town(who, world, staff_client):
    target = world["users"][who]
    before = (target.role, target.region_id, target.password, target.is_superuser)
    r = change_user(staff_client, target, title="改过")
    assert r.status_code in (302, 403, 404)
    if r.status_code == 302:
        assert r["Location"].endswith("/admin/")  # "does not exist" (outside the list): back to the index
    pw = staff_client.post(f"{USERS}{target.pk}/password/",
                           {"password1": "a-new-pass-9876", "password2": "a-new-pass-9876", "set_usable_password": "true"})
    assert pw.status_code in (302, 403, 404)
    target.refresh_from_db()
    assert (target.role, target.region_id, target.password, target.is_superuser) == before
    assert target.title != "改过"


def test_a_delegate_cannot_take_over_a_higher_role_or_a_staff_account_in_their_town(world, staff_client, delegate):
    """A leader (reads everything) or another staff account living in the delegate's town: viewable at most,
    never changed, and their password is not the delegate's to set."""
    leader = User.objects.create(username="town_leader", role=Role.LEADER, region=world["village_a"])
    colleague = User.objects.create(username="colleague", role=Role.TOWN_STAFF, region=world["town_a"],
                                    is_staff=True)
    for target in (leader, colleague):
        before = target.password
        r = change_user(staff_client, target, title="改过")
        assert r.status_code in (200, 403)
        pw = staff_client.post(f"{USERS}{target.pk}/password/", {"password1": "a-new-pass-9876",
                                                                  "password2": "a-new-pass-9876",
                                                                  "set_usable_password": "true"})
        assert pw.status_code == 403
        target.refresh_from_db()
        assert target.title != "改过" and target.password == before
    assert not can_manage_user(delegate, leader) and not can_manage_user(delegate, colleague)


def test_a_delegate_sets_a_password_in_their_town_and_it_is_recorded(world, staff_client, delegate):
    responder = world["users"]["village_responder"]
    r = staff_client.post(f"{USERS}{responder.pk}/password/", {"password1": "a-new-pass-9876",
                                                               "password2": "a-new-pass-9876",
                                                               "set_usable_password": "true"})
    assert r.status_code == 302
    responder.refresh_from_db()
    assert responder.check_password("a-new-pass-9876")
    event = Event.objects.get(type="core.user.password_changed")
    assert event.actor == delegate and event.payload == {"user": responder.pk, "username": "village_a"}


def test_a_superuser_still_administers_everything(world, client):
    admin = world["users"]["admin"]
    client.force_login(admin)
    target = world["users"]["other_town_staff"]
    r = change_user(client, target, role=Role.COMMANDER, region=world["district"].pk, is_staff="on",
                    is_superuser="on")
    assert r.status_code == 302, errors(r)
    target.refresh_from_db()
    assert (target.role, target.region, target.is_staff, target.is_superuser) == (
        Role.COMMANDER, world["district"], True, True)
    event = Event.objects.get(type="core.user.updated")
    assert {"role", "region", "is_staff", "is_superuser"} <= set(event.payload["fields"])
    assert client.get(USERS).status_code == 200 and client.get(f"{USERS}add/").status_code == 200
    assert client.get("/admin/auth/group/add/").status_code == 200


def test_the_user_list_holds_only_the_town(world, staff_client):
    r = staff_client.get(USERS)
    assert r.status_code == 200
    names = {u.username for u in r.context["cl"].result_list}
    assert names == {"town_a", "village_a"}


def test_a_delegate_adds_users_only_inside_their_town_and_rank(world, staff_client, delegate):
    def add(username, role, region):
        return staff_client.post(f"{USERS}add/", {"username": username, "usable_password": "true",
                                                  "password1": "a-new-pass-9876", "password2": "a-new-pass-9876",
                                                  "role": role, "region": region.pk, "is_superuser": "on",
                                                  "is_staff": "on"})

    assert "role" in errors(add("boss", Role.COMMANDER, world["town_a"]))
    assert "region" in errors(add("far", Role.VILLAGE_RESPONDER, world["district"]))
    assert "region" in errors(add("other", Role.VILLAGE_RESPONDER, world["village_b"]))
    assert not User.objects.filter(username__in=["boss", "far", "other"]).exists()
    r = add("new_responder", Role.VILLAGE_RESPONDER, world["village_a"])
    assert r.status_code == 302
    new = User.objects.get(username="new_responder")
    assert (new.role, new.region, new.is_staff, new.is_superuser) == (Role.VILLAGE_RESPONDER, world["village_a"],
                                                                      False, False)
    assert Event.objects.filter(type="core.user.created", payload__user=new.pk, actor=delegate).exists()


def test_a_delegate_cannot_delete_users_outside_their_town(world, staff_client):
    target = world["users"]["other_town_staff"]
    staff_client.post(f"{USERS}{target.pk}/delete/", {"post": "yes"})
    staff_client.post(USERS, {"action": "delete_selected", "_selected_action": [target.pk, world["users"]["admin"].pk],
                              "post": "yes"})
    assert User.objects.filter(pk__in=[target.pk, world["users"]["admin"].pk]).count() == 2


# ---- the other admins ------------------------------------------------------------------------------------------------

def token_for(user, name):
    key = ApiToken.new_key()
    return ApiToken.objects.create(user=user, name=name, prefix=key[:8], key_hash=ApiToken.hash_key(key))


def test_a_delegate_sees_and_issues_only_their_towns_tokens(world, staff_client, delegate):
    district = token_for(world["users"]["api_client"], "区水利局")
    town_b = token_for(world["users"]["other_town_staff"], "蔺镇系统")
    own = token_for(world["users"]["village_responder"], "甲镇网关")
    r = staff_client.get("/admin/core/apitoken/")
    assert r.status_code == 200
    assert [t.pk for t in r.context["cl"].result_list] == [own.pk]
    for other in (district, town_b):
        assert staff_client.get(f"/admin/core/apitoken/{other.pk}/change/").status_code == 302
        staff_client.post(f"/admin/core/apitoken/{other.pk}/delete/", {"post": "yes"})
    assert ApiToken.objects.filter(pk__in=[district.pk, town_b.pk]).count() == 2
    # A token for a district user would carry the district's reach.
    r = staff_client.post("/admin/core/apitoken/add/", {"user": world["users"]["api_client"].pk, "name": "偷来的"})
    assert r.status_code == 200 and "user" in errors(r)
    assert not ApiToken.objects.filter(name="偷来的").exists()


def test_a_token_issued_in_the_admin_shows_its_key_once(world, staff_client, delegate):
    responder = world["users"]["village_responder"]
    r = staff_client.post("/admin/core/apitoken/add/", {"user": responder.pk, "name": "村网关",
                                                        "expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
                          follow=True)
    assert r.status_code == 200
    token = ApiToken.objects.get(name="村网关")
    shown = [str(m) for m in r.context["messages"]]
    key = next(word for m in shown for word in m.split() if word.startswith("tm_"))
    assert ApiToken.hash_key(key) == token.key_hash and token.prefix == key[:8]
    assert token.expires_at is not None
    assert Event.objects.filter(type="core.token.issued", actor=delegate, payload__token=token.pk).exists()
    assert key not in staff_client.get(f"/admin/core/apitoken/{token.pk}/change/").content.decode()


def test_dead_letters_are_for_district_operations_only(world, staff_client, client):
    DeadLetter.objects.create(source="events:x", key="event:1", payload="{}", reason="boom")
    assert staff_client.get("/admin/core/deadletter/").status_code == 403
    assert "deadletter" not in staff_client.get("/admin/").content.decode()
    client.force_login(world["users"]["admin"])
    assert client.get("/admin/core/deadletter/").status_code == 200


def test_a_delegate_cannot_edit_regions_or_groups(world, staff_client):
    town = world["town_a"]
    page = staff_client.get(f"/admin/core/region/{town.pk}/change/")
    assert page.status_code == 200  # read-only
    data = form_data(page.context["adminform"].form) if "adminform" in page.context else {}
    data.update(code="33011", name="甲镇")
    staff_client.post(f"/admin/core/region/{town.pk}/change/", data)
    assert Region.objects.get(pk=town.pk).code == "330112001"
    group = Group.objects.get(name="镇街管理员")
    staff_client.post(f"/admin/auth/group/{group.pk}/change/",
                      {"name": group.name, "permissions": list(Permission.objects.values_list("pk", flat=True))})
    assert not group.permissions.exists()


def test_login_throttle_records_are_for_superusers(world, staff_client, delegate, client):
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.create(username="commander", ip_address="192.0.2.1", user_agent="x",
                                           failures_since_start=5, get_data="", post_data="", http_accept="",
                                           path_info="/login/")
    assert staff_client.get("/admin/axes/accessattempt/").status_code == 403
    staff_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()  # the delegate cannot unlock an account
    client.force_login(world["users"]["admin"])
    assert client.get("/admin/axes/accessattempt/").status_code == 200
