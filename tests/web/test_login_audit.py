"""Sign-ins, sign-outs, failed and throttled sign-ins are audit rows with the client's address
and user agent; no password (right or wrong) is anywhere in the audit table or the log."""

import json
import logging

import pytest

from panel.audit.models import AuditEvent

RIGHT = "pw-alice"
WRONG = "Hunter2-not-my-password"


@pytest.fixture(autouse=True)
def fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_MAX_FAILURES = 2


def sign_in(client, password, username="alice"):
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="pytest-browser/1.0")


def test_sign_in_rows_and_no_password_anywhere(client, alice, caplog):
    caplog.set_level(logging.DEBUG)
    sign_in(client, RIGHT)
    client.post("/logout/", REMOTE_ADDR="192.0.2.10", HTTP_USER_AGENT="pytest-browser/1.0")
    sign_in(client, WRONG)
    sign_in(client, WRONG + "2", username="nobody")
    sign_in(client, WRONG)
    sign_in(client, RIGHT)  # throttled now: two failures of alice

    rows = list(AuditEvent.objects.order_by("seq"))
    assert [(r.action, r.outcome, r.actor_name) for r in rows] == [
        ("auth.login", "success", "alice"),
        ("auth.logout", "success", "alice"),
        ("auth.login_failed", "failed", "alice"),
        ("auth.login_failed", "failed", "anonymous"),  # no such user: no actor
        ("auth.login_failed", "failed", "alice"),
        ("auth.login_throttled", "denied", "alice"),
    ]
    for row in rows:
        assert (row.source, row.address, row.user_agent) == (
            "panel", "192.0.2.10", "pytest-browser/1.0")
        assert row.params["username"] in ("alice", "nobody")
        assert row.team is None
    assert rows[0].actor == alice and rows[0].object_id == str(alice.pk)
    assert rows[3].object_id == "nobody" and rows[3].params == {"username": "nobody",
                                                                "step": "password"}

    dump = json.dumps(list(AuditEvent.objects.values()), default=str)
    for secret in (RIGHT, WRONG, WRONG + "2"):
        assert secret not in dump
        assert secret not in caplog.text


def test_logout_is_post_only(client, alice):
    client.force_login(alice)
    assert client.get("/logout/").status_code == 405
    assert client.get("/account/").status_code == 200
    client.post("/logout/")
    assert client.get("/account/").status_code == 302
