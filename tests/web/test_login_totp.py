"""TOTP two-factor sign-in: set up on the account page (QR code and secret, confirmed with a
code), then a second step after the password that signs in only with a right code; wrong
codes are failed sign-ins (and throttled like them); turning it off takes a code or the
password."""

import pytest
from django.contrib.auth import SESSION_KEY
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.audit.models import AuditEvent
from panel.web.account_views import PENDING


@pytest.fixture(autouse=True)
def fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def code(device, drift=0):
    """The device's code for the current time step (+ drift steps), as an app shows it."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, drift):06d}"


def enable_two_factor(client, user):
    client.force_login(user)
    client.post("/account/two-factor/enable/")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page = client.get("/account/").content.decode()
    assert 'id="totp-qr"' in page and "<svg" in page
    assert device.config_url.split("secret=")[1].split("&")[0] in page  # the secret, as text
    response = client.post("/account/two-factor/confirm/", {"code": code(device)}, follow=True)
    assert "Two-factor sign-in is on" in response.content.decode()
    client.post("/logout/")
    device.refresh_from_db()
    assert device.confirmed
    return device


def password_step(client, username="alice"):
    return client.post("/login/", {"username": username, "password": f"pw-{username}",
                                   "next": "/volumes/"})


def test_setup_needs_a_right_code(client, alice):
    client.force_login(alice)
    client.post("/account/two-factor/enable/")
    response = client.post("/account/two-factor/confirm/", {"code": "000000"}, follow=True)
    assert "That code does not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=alice, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="auth.2fa_enable").exists()


def test_sign_in_asks_for_the_code_after_the_password(client, alice):
    device = enable_two_factor(client, alice)
    assert AuditEvent.objects.filter(action="auth.2fa_enable", actor=alice).count() == 1

    response = password_step(client)
    assert response.status_code == 302 and response.url == "/login/code/"
    assert SESSION_KEY not in client.session  # not signed in before the code
    assert client.get("/account/").status_code == 302  # still a stranger to the panel
    assert "Signing in as <strong>alice</strong>" in client.get("/login/code/").content.decode()

    wrong = client.post("/login/code/", {"code": "123456"})
    assert "Wrong or expired code." in wrong.content.decode()
    assert SESSION_KEY not in client.session
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.params == {"username": "alice", "step": "code"} and failed.outcome == "failed"

    response = client.post("/login/code/", {"code": code(device, drift=1)})
    assert response.status_code == 302 and response.url == "/volumes/"
    assert client.session[SESSION_KEY] == str(alice.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert PENDING not in client.session
    login = AuditEvent.objects.filter(action="auth.login").order_by("-seq").first()
    assert login.params == {"username": "alice", "two_factor": True}


def test_wrong_codes_count_as_failed_sign_ins(client, alice, settings):
    settings.LOGIN_MAX_FAILURES = 3
    device = enable_two_factor(client, alice)
    password_step(client)
    for _ in range(3):
        client.post("/login/code/", {"code": "999999"})
    response = client.post("/login/code/", {"code": code(device, drift=1)})
    assert "Too many failed sign-ins for this account." in response.content.decode()
    assert SESSION_KEY not in client.session
    # The password step is throttled too now.
    client.get("/login/")
    response = password_step(client)
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()


def test_a_stale_password_step_starts_over(client, alice):
    enable_two_factor(client, alice)
    password_step(client)
    session = client.session
    session[PENDING]["at"] -= 3600
    session.save()
    response = client.post("/login/code/", {"code": "123456"}, follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert "Sign in again" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_turning_it_off_needs_a_code_or_the_password(client, alice):
    device = enable_two_factor(client, alice)
    client.force_login(alice)
    response = client.post("/account/two-factor/disable/", {"password": "not-it"})
    assert response.status_code == 400
    assert "Wrong code or password." in response.content.decode()
    assert AuditEvent.objects.get(action="auth.login_failed").params["step"] == "disable-2fa"
    response = client.post("/account/two-factor/disable/", {"code": code(device, drift=1)},
                           follow=True)
    assert "Two-factor sign-in is off." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert AuditEvent.objects.filter(action="auth.2fa_disable", actor=alice).count() == 1
    # The next sign-in is the password alone.
    client.post("/logout/")
    password_step(client)
    assert client.session[SESSION_KEY] == str(alice.pk)
