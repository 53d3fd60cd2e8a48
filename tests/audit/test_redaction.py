"""Secrets never reach the audit table: keys, env entries, registry auth blobs, API tokens."""

import base64
import json

from django.db import connection

from panel.audit import services as audit
from panel.audit.redact import REDACTED, redact

SECRETS = ["hunter2-pw", "s3cr3t-value", "tok-abc123", "dy_live_token_0123456789", "pk-material",
           "regpass-42", "bearer-xyz"]


def _table_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent")
        return repr(cursor.fetchall())


def test_no_secret_reaches_the_table(owner, team):
    registry_auth = base64.urlsafe_b64encode(json.dumps(
        {"username": "bob", "password": "regpass-42"}).encode()).decode()
    audit.record(
        "thing.do", actor=owner, team=team, obj_type="thing", obj_id="1",
        params={"Password": "hunter2-pw", "nested": [{"client_secret": "s3cr3t-value"}],
                "X-Registry-Auth": registry_auth, "ref": registry_auth,
                "headers": {"Authorization": "bearer-xyz"}},
        before={"env": ["PATH=/bin", "DB_PASSWORD=hunter2-pw", "API_KEY=tok-abc123"]},
        after={"identityToken": "tok-abc123", "note": "dy_live_token_0123456789",
               "ssh_private_key": "pk-material"},
        result={"error": "ok", "AuthConfig": {"password": "regpass-42"}})
    text = _table_text()
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked
    assert "PATH=/bin" in text and "DB_PASSWORD=[redacted]" in text


def test_plain_values_stay_readable():
    data = {"author": "ann", "monkey": 1, "keyboard": "us", "layers": ["a"],
            "username": "bob", "env": ["HOME=/root", "TOKEN_URL="], "password": ""}
    assert redact(data) == {**data, "env": ["HOME=/root", f"TOKEN_URL={REDACTED}"]}


def test_shapes():
    assert redact(["dy_abc", "dyx", ("KEY=1",)]) == [REDACTED, "dyx", [f"KEY={REDACTED}"]]
    assert redact({"auth": {"a": 1}, "private": None}) == {"auth": REDACTED, "private": None}
    assert redact('{"username": "u", "password": "p"}') == REDACTED
    assert redact(7) == 7
