"""panel.teams.actions: who may create and delete teams, invite, change roles and remove members,
set a team's policy, and administer users; the last-owner rules; the audit rows."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django_otp.plugins.otp_totp.models import TOTPDevice
from people import ROLES, member, members_of

from panel.audit.models import AuditEvent
from panel.errors import Conflict, InvalidParameter
from panel.nodes.services import local_node
from panel.teams import actions
from panel.teams.models import Membership, Team
from panel.volumes.models import Volume

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(team):
    return members_of(team)


@pytest.fixture
def stranger(db):
    return member("stranger")


def _rows(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _denied():
    return AuditEvent.objects.filter(action="permission.denied", outcome="denied")


# ------------------------------------------------------------------------------ teams


def test_site_admin_creates_a_team_with_a_named_owner(site_admin, stranger):
    team = actions.do_create_team(" green ", acting_user=site_admin, owner=stranger)
    assert team.name == "green"
    assert Membership.objects.get(team=team).user == stranger
    assert Membership.objects.get(team=team).role == "owner"
    [row] = _rows("team.create")
    assert row.actor == site_admin and row.team_id == team.pk and row.object_repr == "green"
    assert row.after["owner"] == "stranger" and row.after["allow_privileged"] is False
    assert row.after["max_containers"] is None


def test_creator_is_owner_by_default(site_admin):
    team = actions.do_create_team("green", acting_user=site_admin)
    assert team.memberships.get().user == site_admin


def test_team_names_are_unique(site_admin, team):
    with pytest.raises(Conflict, match="already in use"):
        actions.do_create_team("BLUE", acting_user=site_admin)
    with pytest.raises(InvalidParameter):
        actions.do_create_team("  ", acting_user=site_admin)


@pytest.mark.parametrize("role", ROLES)
def test_only_site_admins_create_teams(members, role):
    with pytest.raises(PermissionDenied, match="Only site admins"):
        actions.do_create_team("green", acting_user=members[role])
    assert not Team.objects.filter(name="green").exists()
    assert _denied().filter(actor=members[role]).exists()


@pytest.mark.parametrize("role", ROLES)
def test_only_owners_delete_a_team(team, members, role):
    team_id = team.pk
    if role == "owner":
        actions.do_delete_team(team, acting_user=members[role])
        assert not Team.objects.filter(pk=team_id).exists()
        [row] = _rows("team.delete")
        assert row.team_id == team_id and row.before["name"] == "blue"
        assert {"user": "viewer-user", "role": "viewer"} in row.before["members"]
    else:
        with pytest.raises(PermissionDenied):
            actions.do_delete_team(team, acting_user=members[role])
        assert Team.objects.filter(pk=team.pk).exists()


def test_a_team_holding_objects_is_not_deleted(team, members, site_admin):
    Volume.objects.create(name="blue-data", team=team, node=local_node())
    with pytest.raises(Conflict, match="still holds 1 volume") as refused:
        actions.do_delete_team(team, acting_user=members["owner"])
    assert refused.value.status == 409
    assert Team.objects.filter(pk=team.pk).exists()
    Volume.objects.all().delete()
    team_id = team.pk
    actions.do_delete_team(team, acting_user=site_admin)
    assert not Team.objects.filter(pk=team_id).exists()


# ---------------------------------------------------------------------------- members


@pytest.mark.parametrize("role", ROLES)
def test_who_may_invite(team, members, stranger, role):
    if role in ("owner", "admin"):
        membership, created = actions.do_invite_member(team, "stranger", "viewer",
                                                       acting_user=members[role])
        assert (membership.user, membership.role, created) == (stranger, "viewer", False)
    else:
        with pytest.raises(PermissionDenied):
            actions.do_invite_member(team, "stranger", "viewer", acting_user=members[role])
        assert not Membership.objects.filter(user=stranger).exists()


def test_outsiders_may_not_invite(team, outsider, stranger):
    with pytest.raises(PermissionDenied):
        actions.do_invite_member(team, "stranger", acting_user=outsider)


def test_invite_an_existing_user_by_email(team, members, stranger):
    membership, created = actions.do_invite_member(team, "STRANGER@example.com", "operator",
                                                   acting_user=members["admin"])
    assert membership.user == stranger and not created
    [row] = _rows("team.member.add")
    assert row.after == {"user": "stranger", "role": "operator"}
    assert row.object_type == "membership" and row.team_id == team.pk
    assert not _rows("user.create")


def test_invite_an_unknown_user_creates_it_with_a_set_password_link(team, members):
    membership, created = actions.do_invite_member(team, "dana@example.com", "operator",
                                                   acting_user=members["admin"])
    dana = membership.user
    assert created and dana.username == "dana@example.com" and dana.email == "dana@example.com"
    assert not dana.has_usable_password() and not dana.is_superuser
    path = actions.set_password_path(dana)
    uidb64, token = path.rstrip("/").split("/")[-2:]
    assert force_str(urlsafe_base64_decode(uidb64)) == str(dana.pk)
    assert default_token_generator.check_token(dana, token)
    dana.set_password("a-long-passphrase-42")
    dana.save()
    assert not default_token_generator.check_token(dana, token)  # one-time
    assert [r.action for r in AuditEvent.objects.order_by("seq")] == ["user.create",
                                                                      "team.member.add"]


def test_invite_refusals(team, members, stranger):
    with pytest.raises(Conflict, match="already a member"):
        actions.do_invite_member(team, "viewer-user", acting_user=members["admin"])
    with pytest.raises(InvalidParameter, match="invalid role"):
        actions.do_invite_member(team, "stranger", "boss", acting_user=members["admin"])
    with pytest.raises(InvalidParameter, match="invalid username"):
        actions.do_invite_member(team, "no spaces please", acting_user=members["admin"])
    with pytest.raises(PermissionDenied):  # only owners make owners
        actions.do_invite_member(team, "stranger", "owner", acting_user=members["admin"])
    membership, _ = actions.do_invite_member(team, "stranger", "owner",
                                             acting_user=members["owner"])
    assert membership.role == "owner"


def _membership(user, team):
    return Membership.objects.get(user=user, team=team)


@pytest.mark.parametrize("role", ROLES)
def test_who_may_change_a_role(team, members, role):
    target = _membership(members["operator"], team)
    if role in ("owner", "admin"):
        actions.do_change_role(target, "viewer", acting_user=members[role])
        assert _membership(members["operator"], team).role == "viewer"
        [row] = _rows("team.member.role")
        assert row.before == {"user": "operator-user", "role": "operator"}
        assert row.after == {"user": "operator-user", "role": "viewer"}
    else:
        with pytest.raises(PermissionDenied):
            actions.do_change_role(target, "viewer", acting_user=members[role])
        assert _membership(members["operator"], team).role == "operator"


def test_only_owners_make_and_unmake_owners(team, members):
    admin = members["admin"]
    with pytest.raises(PermissionDenied):
        actions.do_change_role(_membership(members["operator"], team), "owner",
                               acting_user=admin)
    with pytest.raises(PermissionDenied):
        actions.do_change_role(_membership(members["owner"], team), "admin", acting_user=admin)
    with pytest.raises(PermissionDenied):
        actions.do_remove_member(_membership(members["owner"], team), acting_user=admin)
    actions.do_change_role(_membership(members["operator"], team), "owner",
                           acting_user=members["owner"])
    assert _membership(members["operator"], team).role == "owner"


def test_the_last_owner_stays(team, members, site_admin):
    last = _membership(members["owner"], team)
    for acting in (members["owner"], site_admin):
        with pytest.raises(Conflict, match="last owner"):
            actions.do_change_role(last, "admin", acting_user=acting)
        with pytest.raises(Conflict, match="last owner"):
            actions.do_remove_member(last, acting_user=acting)
    assert _membership(members["owner"], team).role == "owner"
    actions.do_change_role(_membership(members["admin"], team), "owner",
                           acting_user=members["owner"])
    actions.do_change_role(last, "viewer", acting_user=members["owner"])  # another owner now
    assert _membership(members["owner"], team).role == "viewer"


@pytest.mark.parametrize("role", ROLES)
def test_who_may_remove_a_member(team, members, role):
    target = _membership(members["viewer"], team)
    if role in ("owner", "admin"):
        actions.do_remove_member(target, acting_user=members[role])
        assert not Membership.objects.filter(pk=target.pk).exists()
        [row] = _rows("team.member.remove")
        assert row.before == {"user": "viewer-user", "role": "viewer"}
        assert row.object_id == str(target.pk)
    else:
        with pytest.raises(PermissionDenied):
            actions.do_remove_member(target, acting_user=members[role])
        assert Membership.objects.filter(pk=target.pk).exists()


# ----------------------------------------------------------------------------- policy


@pytest.mark.parametrize("role", ROLES)
def test_who_may_change_the_policy(team, members, role):
    if role in ("owner", "admin"):
        changed = actions.do_update_policy(team, acting_user=members[role], allow_devices=True)
        assert changed == ["allow_devices"]
    else:
        with pytest.raises(PermissionDenied):
            actions.do_update_policy(team, acting_user=members[role], allow_devices=True)
        assert _denied().filter(actor=members[role], team=team).exists()
    team.refresh_from_db()
    assert team.allow_devices is (role in ("owner", "admin"))


def test_policy_audit_row_has_before_and_after(team, members):
    team.max_memory = 1024 ** 3
    team.save()
    changed = actions.do_update_policy(
        team, acting_user=members["admin"], allow_privileged=True, allow_low_ports=False,
        bind_prefixes=["/srv/shared/", "/srv/shared", " /data/blue "], max_memory=2 * 1024 ** 3,
        max_nano_cpus=1_500_000_000, max_containers=None, storage_quota=10 * 1024 ** 3)
    assert sorted(changed) == ["allow_privileged", "bind_prefixes", "max_memory",
                               "max_nano_cpus", "storage_quota"]
    team.refresh_from_db()
    assert team.bind_prefixes == ["/srv/shared", "/data/blue"]
    assert (team.max_memory, team.max_nano_cpus) == (2 * 1024 ** 3, 1_500_000_000)
    [row] = _rows("team.policy")
    assert row.before == {"allow_privileged": False, "bind_prefixes": [],
                          "max_memory": 1024 ** 3, "max_nano_cpus": None, "storage_quota": None}
    assert row.after == {"allow_privileged": True, "bind_prefixes": ["/srv/shared", "/data/blue"],
                         "max_memory": 2 * 1024 ** 3, "max_nano_cpus": 1_500_000_000,
                         "storage_quota": 10 * 1024 ** 3}
    assert actions.do_update_policy(team, acting_user=members["admin"],
                                    allow_privileged=True) == []
    assert len(_rows("team.policy")) == 1  # nothing changed, nothing recorded


@pytest.mark.parametrize("changes, message", [
    ({"bind_prefixes": ["srv/data"]}, "not an absolute path"),
    ({"bind_prefixes": ["/srv/../etc"]}, "'..'"),
    ({"max_containers": -1}, "max_containers"),
    ({"name": "red"}, "unknown policy field"),
])
def test_invalid_policy(team, members, changes, message):
    with pytest.raises(InvalidParameter, match=message):
        actions.do_update_policy(team, acting_user=members["owner"], **changes)
    assert not _rows("team.policy")


# ------------------------------------------------------------------------------ users


@pytest.mark.parametrize("call", [
    lambda user, other: actions.do_create_user("eve", acting_user=user),
    lambda user, other: actions.do_set_active(other, False, acting_user=user),
    lambda user, other: actions.do_set_site_admin(other, True, acting_user=user),
    lambda user, other: actions.do_reset_2fa(other, acting_user=user),
])
def test_user_actions_are_for_site_admins(members, stranger, call):
    with pytest.raises(PermissionDenied, match="Only site admins"):
        call(members["owner"], stranger)
    stranger.refresh_from_db()
    assert stranger.is_active and not stranger.is_superuser
    assert not get_user_model().objects.filter(username="eve").exists()
    assert _denied().filter(actor=members["owner"]).exists()


def test_create_user(site_admin):
    eve = actions.do_create_user("eve", acting_user=site_admin, email="eve@example.com",
                                 is_site_admin=True)
    assert eve.is_superuser and eve.is_staff and not eve.has_usable_password()
    [row] = _rows("user.create")
    assert row.after == {"username": "eve", "email": "eve@example.com", "is_active": True,
                         "is_site_admin": True}
    assert row.team_id is None
    with pytest.raises(Conflict, match="already taken"):
        actions.do_create_user("EVE", acting_user=site_admin)


def test_deactivate_and_reactivate(site_admin, stranger):
    actions.do_set_active(stranger, False, acting_user=site_admin)
    stranger.refresh_from_db()
    assert not stranger.is_active
    actions.do_set_active(stranger, True, acting_user=site_admin)
    stranger.refresh_from_db()
    assert stranger.is_active
    deactivated, activated = _rows("user.deactivate") + _rows("user.activate")
    assert deactivated.before["is_active"] and not deactivated.after["is_active"]
    assert not activated.before["is_active"] and activated.after["is_active"]
    with pytest.raises(Conflict, match="yourself"):
        actions.do_set_active(site_admin, False, acting_user=site_admin)


def test_the_last_site_admin_stays(site_admin, stranger):
    with pytest.raises(Conflict, match="last active site admin"):
        actions.do_set_site_admin(site_admin, False, acting_user=site_admin)
    actions.do_set_site_admin(stranger, True, acting_user=site_admin)
    actions.do_set_site_admin(site_admin, False, acting_user=stranger)
    site_admin.refresh_from_db()
    assert not site_admin.is_superuser and not site_admin.is_staff
    assert [r.after["is_site_admin"] for r in _rows("user.site_admin")] == [True, False]


def test_reset_2fa_deletes_the_devices(site_admin, stranger):
    TOTPDevice.objects.create(user=stranger, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=stranger, name="new phone", confirmed=False)
    assert actions.do_reset_2fa(stranger, acting_user=site_admin) == 2
    assert not TOTPDevice.objects.filter(user=stranger).exists()
    [row] = _rows("user.reset_2fa")
    assert row.before == {"devices": ["TOTPDevice", "TOTPDevice"]}
    assert row.after == {"devices": []}
