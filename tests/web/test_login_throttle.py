"""Failed sign-ins are throttled per account and per address (counted from the audit log's
auth.login_failed rows); a throttled attempt is refused without its password being checked,
and is audited; once the window has passed the account signs in again."""

import time

import pytest

from panel.audit.models import AuditEvent

from .conftest import make_user


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_MAX_FAILURES = 5
    settings.LOGIN_ADDRESS_MAX_FAILURES = 20


def sign_in(client, username, password, address="10.1.0.1"):
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def signed_in(client):
    return "_auth_user_id" in client.session


def test_account_is_throttled_after_five_failures(client, alice, monkeypatch):
    for attempt in range(5):
        response = sign_in(client, "alice", f"wrong-{attempt}", address=f"10.1.0.{attempt}")
        assert response.status_code == 200
        assert "Wrong username or password" in response.content.decode()
    checked = []
    monkeypatch.setattr("django.contrib.auth.backends.ModelBackend.authenticate",
                        lambda *a, **k: checked.append(a) or None)
    # The right password, from yet another address: refused, and the password is not checked.
    response = sign_in(client, "alice", "pw-alice", address="10.1.0.99")
    assert "Too many failed sign-ins for this account. Try again in 15 minutes." in \
        response.content.decode()
    assert not signed_in(client)
    assert checked == []
    throttled = AuditEvent.objects.get(action="auth.login_throttled")
    assert throttled.outcome == "denied"
    assert throttled.params == {"username": "alice", "throttled": "account"}
    assert throttled.address == "10.1.0.99"
    assert throttled.actor_name == "alice"
    # Another account from the same addresses is not affected.
    monkeypatch.undo()
    make_user("bob")
    sign_in(client, "bob", "pw-bob", address="10.1.0.1")
    assert signed_in(client)


def test_address_is_throttled_after_twenty_failures(client, alice):
    for attempt in range(20):
        sign_in(client, f"nobody{attempt}", "guess", address="10.2.0.7")
    response = sign_in(client, "alice", "pw-alice", address="10.2.0.7")
    assert "Too many failed sign-ins from your address." in response.content.decode()
    assert not signed_in(client)
    assert AuditEvent.objects.get(action="auth.login_throttled").params["throttled"] == "address"
    sign_in(client, "alice", "pw-alice", address="10.2.0.8")
    assert signed_in(client)


def test_a_success_resets_the_account_count(client, alice):
    for attempt in range(4):
        sign_in(client, "alice", f"wrong-{attempt}")
    sign_in(client, "alice", "pw-alice")
    assert signed_in(client)
    client.post("/logout/")
    sign_in(client, "alice", "wrong-again")
    sign_in(client, "alice", "pw-alice")
    assert signed_in(client)


def test_the_account_signs_in_again_after_the_window(client, alice, settings):
    settings.LOGIN_WINDOW = 1.5
    for attempt in range(5):
        sign_in(client, "alice", f"wrong-{attempt}")
    response = sign_in(client, "alice", "pw-alice")
    assert "Too many failed sign-ins for this account. Try again in 1 minute." in \
        response.content.decode()
    assert not signed_in(client)
    time.sleep(1.6)
    sign_in(client, "alice", "pw-alice")
    assert signed_in(client)


def test_the_admin_site_signs_in_here(client):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/?next=%2Fadmin%2F"
    assert "Sign in" in response.content.decode()
