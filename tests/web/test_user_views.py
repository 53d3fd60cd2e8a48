"""The users page with Django's test client: site admins only (a 404 for anyone else), create a
user with its set-password link, deactivate and reactivate, site admin, reset 2FA."""

import re

import pytest
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice
from people import member

from panel.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def owner(blue):
    return member("owner-user", blue, "owner")


def _row(content, username):
    return re.search(rf'<tr data-user="{re.escape(username)}">.*?</tr>', content, re.S).group(0)


@pytest.mark.parametrize("url, method", [
    ("/users/", "get"), ("/users/", "post"), ("/users/{id}/active/", "post"),
    ("/users/{id}/site-admin/", "post"), ("/users/{id}/reset-2fa/", "post"),
    ("/users/{id}/password-link/", "post"),
])
def test_users_page_is_404_for_others(login, owner, site_admin, url, method):
    client = login(owner)
    response = getattr(client, method)(url.format(id=site_admin.pk),
                                       {"username": "eve", "active": "0", "site_admin": "0"})
    assert response.status_code == 404
    site_admin.refresh_from_db()
    assert site_admin.is_active and site_admin.is_superuser
    assert not User.objects.filter(username="eve").exists()
    assert AuditEvent.objects.filter(action="permission.denied", actor=owner).exists()


def test_nav_links(login, owner, site_admin):
    content = login(owner).get("/teams/").content.decode()
    assert 'href="/teams/"' in content and 'href="/users/"' not in content
    content = login(site_admin).get("/users/").content.decode()
    assert 'href="/teams/"' in content and 'href="/users/" class="active"' in content


def test_list_shows_status_teams_and_2fa(login, site_admin, owner, blue):
    TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)
    gone = member("gone-user", is_active=False)
    content = login(site_admin).get("/users/").content.decode()
    row = _row(content, "owner-user")
    assert f'<a href="/teams/{blue.pk}/">blue</a> <span class="muted small">owner</span>' in row
    assert '<td class="otp"><span class="badge badge-ok">on</span>' in row
    assert "Reset 2FA" in row and "invited" in row  # no password set yet
    assert "deactivated" in _row(content, gone.username)
    assert "Reactivate" in _row(content, gone.username)
    me = _row(content, "root-user")
    assert "site admin" in me and "Deactivate" not in me  # not oneself


def test_create_a_user_with_a_one_time_link(login, site_admin):
    client = login(site_admin)
    response = client.post("/users/", {"username": "eve", "email": "eve@example.com"})
    assert response.status_code == 302 and response["Location"] == "/users/"
    eve = User.objects.get(username="eve")
    assert not eve.has_usable_password() and not eve.is_superuser
    content = client.get("/users/").content.decode()
    assert "User eve created." in content
    assert re.search(r'value="http://testserver/accounts/reset/[^"/]+/[^"/]+/"', content)
    assert "accounts/reset/" not in client.get("/users/").content.decode()  # shown once
    response = client.post(f"/users/{eve.pk}/password-link/")  # a new one, when lost
    assert "accounts/reset/" in client.get(response["Location"]).content.decode()
    response = client.post("/users/", {"username": "Eve"})
    assert response.status_code == 400 and "already taken" in response.content.decode()
    response = client.post("/users/", {"username": "e v e"})
    assert response.status_code == 400 and "invalid username" in response.content.decode()


def test_deactivate_reactivate_and_site_admin(login, site_admin, owner):
    client = login(site_admin)
    response = client.post(f"/users/{owner.pk}/active/", {"active": "0"}, follow=True)
    assert "owner-user deactivated" in response.content.decode()
    owner.refresh_from_db()
    assert not owner.is_active
    client.post(f"/users/{owner.pk}/active/", {"active": "1"})
    client.post(f"/users/{owner.pk}/site-admin/", {"site_admin": "1"})
    owner.refresh_from_db()
    assert owner.is_active and owner.is_superuser and owner.is_staff
    response = client.post(f"/users/{site_admin.pk}/active/", {"active": "0"}, follow=True)
    assert "you cannot deactivate yourself" in response.content.decode()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="user.")
            .order_by("seq")] == [
        "user.deactivate", "user.activate", "user.site_admin"]


def test_reset_2fa(login, site_admin, owner):
    TOTPDevice.objects.create(user=owner, name="phone", confirmed=True)
    response = login(site_admin).post(f"/users/{owner.pk}/reset-2fa/", follow=True)
    assert "Two-factor authentication of owner-user reset" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=owner).exists()
