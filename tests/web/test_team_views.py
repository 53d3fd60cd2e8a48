"""The teams pages with Django's test client: what each role sees and may do, invitations with
their set-password link, the policy and quotas form, deleting a team."""

import re

import pytest
from people import ROLES, member, members_of

from panel.audit.models import AuditEvent
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team
from panel.volumes.models import Volume

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(blue):
    return members_of(blue)


def _page(client, team):
    response = client.get(f"/teams/{team.pk}/")
    return response, response.content.decode()


def test_teams_pages_need_a_login(client, blue):
    for url in ("/teams/", f"/teams/{blue.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_list_shows_the_users_teams_with_role_and_member_count(login, members, blue, red):
    member("red-user", red, "owner")
    content = login(members["operator"]).get("/teams/").content.decode()
    row = re.search(r'<tr data-team="blue">.*?</tr>', content, re.S).group(0)
    assert f'href="/teams/{blue.pk}/"' in row and ">operator<" in row and "<td>5</td>" in row
    assert 'data-team="red"' not in content
    assert "Create a team" not in content
    assert 'href="/teams/" class="active"' in content  # the nav link


def test_an_auditors_team_is_listed_without_a_link(login, members, blue):
    content = login(members["auditor"]).get("/teams/").content.decode()
    assert 'data-team="blue"' in content and f'href="/teams/{blue.pk}/"' not in content
    assert "the audit log only" in content


def test_site_admin_sees_every_team_and_creates_one(login, site_admin, blue, red, members):
    client = login(site_admin)
    content = client.get("/teams/").content.decode()
    assert 'data-team="blue"' in content and 'data-team="red"' in content
    assert "Create a team" in content
    response = client.post("/teams/", {"name": "green", "owner": "viewer-user"})
    green = Team.objects.get(name="green")
    assert response.status_code == 302 and response["Location"] == f"/teams/{green.pk}/"
    assert green.memberships.get().user == members["viewer"]
    response = client.post("/teams/", {"name": "Green", "owner": "nobody"})
    assert response.status_code == 400
    assert "No user has this username." in response.content.decode()
    response = client.post("/teams/", {"name": "green"})
    assert response.status_code == 400 and "already in use" in response.content.decode()


def test_others_may_not_create_teams(login, members):
    response = login(members["owner"]).post("/teams/", {"name": "green"})
    assert response.status_code == 403
    assert not Team.objects.filter(name="green").exists()
    assert AuditEvent.objects.filter(action="permission.denied", actor=members["owner"]).exists()


@pytest.mark.parametrize("role", ROLES + ["outsider", "site admin"])
def test_team_page_by_role(login, members, blue, red, site_admin, role):
    user = {"outsider": None, "site admin": site_admin}.get(role) or members.get(role)
    user = user or member("red-user", red, "owner")
    response, content = _page(login(user), blue)
    if role in ("auditor", "outsider"):
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert all(f'data-member="{role}-user"' in content for role in ROLES)
    manages = role in ("owner", "admin", "site admin")
    assert ('id="invite-form"' in content) is manages
    assert ("Save policy" in content) is manages
    assert ('name="allow_privileged" disabled' in content) is not manages
    assert ('name="role" aria-label="Role of viewer-user"' in content) is manages
    assert ('id="delete-team"' in content) is (role in ("owner", "site admin"))
    # an admin changes neither owners nor makes one
    assert ('aria-label="Role of owner-user"' in content) is (role in ("owner", "site admin"))
    assert ('<option value="owner"' in content) is (role in ("owner", "site admin"))


def test_page_shows_usage_and_quotas_in_human_units(login, members, blue):
    blue.max_memory, blue.max_nano_cpus, blue.storage_quota = 2 * 1024 ** 3, 1_500_000_000, None
    blue.max_containers, blue.bind_prefixes = 3, ["/srv/shared", "/data/blue"]
    blue.save()
    _, content = _page(login(members["viewer"]), blue)
    assert 'name="max_memory" value="2g"' in content
    assert 'name="max_cpus" value="1.5"' in content
    assert 'name="max_containers" value="3"' in content
    assert "/srv/shared\n/data/blue</textarea>" in content
    quota_rows = re.findall(r'<tr data-quota="(\w+)".*?<td class="used nowrap">(.*?)</td>',
                            content, re.S)
    assert quota_rows == [("max_containers", "0"), ("max_memory", "0 B"), ("max_cpus", "0"),
                          ("storage_quota", "0 B")]


def test_invite_a_new_user_who_sets_a_password_and_signs_in(client, login, members, blue):
    admin_client = login(members["admin"])
    response = admin_client.post(f"/teams/{blue.pk}/invite/",
                                 {"user": "dana@example.com", "role": "viewer"})
    assert response.status_code == 302 and response["Location"] == f"/teams/{blue.pk}/"
    _, content = _page(admin_client, blue)
    assert "dana@example.com created and added to team blue as viewer." in content
    link = re.search(r'value="(http://testserver/accounts/reset/[^"]+)"', content).group(1)
    assert 'data-member="dana@example.com"' in content and ">invited<" in content
    assert "accounts/reset/" not in _page(admin_client, blue)[1]  # shown once

    client.logout()
    response = client.get(link.removeprefix("http://testserver"))
    assert response.status_code == 302  # to .../set-password/, the token kept in the session
    form_url = response["Location"]
    page = client.get(form_url).content.decode()
    assert "Set your password" in page and "dana@example.com" in page
    response = client.post(form_url, {"new_password1": "a-long-passphrase-42",
                                      "new_password2": "a-long-passphrase-42"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.login(username="dana@example.com", password="a-long-passphrase-42")
    assert client.get(f"/teams/{blue.pk}/").status_code == 200
    client.logout()
    used = client.get(link.removeprefix("http://testserver"), follow=True).content.decode()
    assert "This link no longer works" in used


def test_invite_an_existing_user_shows_no_link(login, members, blue, red):
    mallory = member("mallory", red, "owner")
    mallory.set_password("pw")  # has one already
    mallory.save()
    client = login(members["owner"])
    client.post(f"/teams/{blue.pk}/invite/", {"user": "mallory", "role": "owner"})
    assert Membership.objects.get(team=blue, user=mallory).role == "owner"
    _, content = _page(client, blue)
    assert "mallory added to team blue as owner." in content and "accounts/reset/" not in content


def test_no_link_to_claim_another_teams_invitee(login, members, blue, red, site_admin):
    member("newbie", red, "viewer")  # invited to red, no password set yet
    client = login(members["admin"])
    client.post(f"/teams/{blue.pk}/invite/", {"user": "newbie", "role": "viewer"})
    assert Membership.objects.filter(team=blue, user__username="newbie").exists()
    _, content = _page(client, blue)
    assert "newbie added to team blue" in content and "accounts/reset/" not in content
    Membership.objects.get(team=blue, user__username="newbie").delete()
    client = login(site_admin)
    client.post(f"/teams/{blue.pk}/invite/", {"user": "newbie", "role": "viewer"})
    assert "accounts/reset/" in _page(client, blue)[1]  # a site admin may hand it a new link


def test_invite_errors_show_on_the_form(login, members, blue):
    client = login(members["admin"])
    response = client.post(f"/teams/{blue.pk}/invite/", {"user": "viewer-user",
                                                         "role": "operator"})
    assert response.status_code == 400
    assert "viewer-user is already a member of team blue (viewer)" in response.content.decode()
    response = client.post(f"/teams/{blue.pk}/invite/", {"user": "x", "role": "owner"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()


def test_change_role_and_remove(login, members, blue):
    client = login(members["admin"])
    operator = Membership.objects.get(user=members["operator"])
    response = client.post(f"/teams/{blue.pk}/members/{operator.pk}/role/", {"role": "viewer"},
                           follow=True)
    assert "operator-user is now viewer of team blue." in response.content.decode()
    operator.refresh_from_db()
    assert operator.role == "viewer"
    response = client.post(f"/teams/{blue.pk}/members/{operator.pk}/remove/", follow=True)
    assert "operator-user removed from team blue." in response.content.decode()
    assert not Membership.objects.filter(pk=operator.pk).exists()


def test_the_last_owner_is_kept_with_a_message(login, members, blue):
    owner = Membership.objects.get(user=members["owner"])
    client = login(members["owner"])
    response = client.post(f"/teams/{blue.pk}/members/{owner.pk}/role/", {"role": "admin"},
                           follow=True)
    assert "is the last owner of team blue" in response.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_members_without_manage_get_403(login, members, blue, role):
    client = login(members[role])
    target = Membership.objects.get(user=members["viewer"])
    assert client.post(f"/teams/{blue.pk}/members/{target.pk}/role/",
                       {"role": "admin"}).status_code == 403
    assert client.post(f"/teams/{blue.pk}/members/{target.pk}/remove/").status_code == 403
    assert client.post(f"/teams/{blue.pk}/invite/", {"user": "x", "role": "viewer"}
                       ).status_code == 403
    assert client.post(f"/teams/{blue.pk}/policy/", {"allow_devices": "on"}).status_code == 403
    assert client.post(f"/teams/{blue.pk}/policy/", {"max_memory": "lots"}).status_code == 403
    assert client.post(f"/teams/{blue.pk}/invite/", {}).status_code == 403
    assert client.post(f"/teams/{blue.pk}/delete/").status_code == 403
    target.refresh_from_db()
    assert target.role == "viewer" and not Team.objects.get(pk=blue.pk).allow_devices


@pytest.mark.parametrize("role", ["auditor", "outsider"])
def test_team_actions_are_404_for_those_who_cannot_see_it(login, members, blue, red, role):
    user = members.get(role) or member("red-user", red, "owner")
    client = login(user)
    target = Membership.objects.get(user=members["viewer"])
    for url in (f"/teams/{blue.pk}/members/{target.pk}/remove/", f"/teams/{blue.pk}/policy/",
                f"/teams/{blue.pk}/delete/", f"/teams/{blue.pk}/invite/"):
        assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=target.pk).exists()
    assert AuditEvent.objects.filter(action="object.hidden", actor=user, team=blue).exists()


def test_save_the_policy_with_human_units(login, members, blue):
    client = login(members["admin"])
    response = client.post(f"/teams/{blue.pk}/policy/", {
        "allow_privileged": "on", "allow_low_ports": "on",
        "bind_prefixes": "/srv/shared\n\n  /data/blue/ \n", "max_containers": "4",
        "max_memory": "2g", "max_cpus": "1.5", "storage_quota": "10g"})
    assert response.status_code == 302 and response["Location"] == f"/teams/{blue.pk}/#policy"
    blue.refresh_from_db()
    assert blue.allow_privileged and blue.allow_low_ports and not blue.allow_devices
    assert blue.bind_prefixes == ["/srv/shared", "/data/blue"]
    assert (blue.max_containers, blue.max_memory, blue.max_nano_cpus, blue.storage_quota) == (
        4, 2 * 1024 ** 3, 1_500_000_000, 10 * 1024 ** 3)
    row = AuditEvent.objects.get(action="team.policy")
    assert row.before["max_memory"] is None and row.after["max_memory"] == 2 * 1024 ** 3
    _, content = _page(client, blue)
    assert "Policy of team blue saved." in content and 'value="10g"' in content


@pytest.mark.parametrize("field, value, error", [
    ("max_memory", "lots", "Enter a size such as 2g"),
    ("max_cpus", "many", "Enter a number of CPUs"),
    ("max_containers", "-1", "greater than or equal to 0"),
    ("bind_prefixes", "srv/data", "is not an absolute path"),
])
def test_policy_errors_show_on_the_field(login, members, blue, field, value, error):
    response = login(members["owner"]).post(f"/teams/{blue.pk}/policy/", {field: value})
    assert response.status_code == 400
    content = response.content.decode()
    assert re.search(rf'(has-error).*?{re.escape(error)}', content, re.S)
    assert not AuditEvent.objects.filter(action="team.policy").exists()


def test_delete_team(login, members, blue):
    Volume.objects.create(name="blue-data", team=blue, node=local_node())
    client = login(members["owner"])
    response = client.post(f"/teams/{blue.pk}/delete/", follow=True)
    assert "team blue still holds 1 volume" in response.content.decode()
    assert Team.objects.filter(pk=blue.pk).exists()
    Volume.objects.all().delete()
    response = client.post(f"/teams/{blue.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/teams/"
    assert not Team.objects.filter(pk=blue.pk).exists()


def test_admins_may_not_delete_the_team(login, members, blue):
    assert login(members["admin"]).post(f"/teams/{blue.pk}/delete/").status_code == 403
    assert Team.objects.filter(pk=blue.pk).exists()
