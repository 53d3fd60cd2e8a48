"""The audit chain's digest: an HMAC (key from SECRET_KEY) over every field of a row."""

import importlib

import pytest
from django.apps import apps
from django.db import connection

from panel.audit import chain, triggers
from panel.audit import services as audit
from panel.audit.models import AuditEvent


@pytest.fixture
def event(owner, team):
    with audit.context.bound("api", address="::ffff:10.0.0.1", user_agent="docker/27"):
        return audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id="1",
                            params={"b": [1, 2], "a": None}, before={"x": 1}, after={"x": 2},
                            job="2f1d3c4b-0000-4000-8000-000000000001", result={"ok": True})


def test_digest_covers_every_field(event):
    row = chain.canonical(AuditEvent.objects.get(pk=event.pk))
    assert chain.digest(row) == row["digest"] == event.digest
    for name in (*chain.CONTENT_FIELDS, "seq", "prev_digest"):
        changed = {**row, name: "changed"}
        assert chain.digest(changed) != row["digest"], name


def test_digest_is_keyed_by_the_secret_key(event, settings):
    assert audit.verify_log().problem == ""
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert audit.verify_log().problem == "entry 1 was altered"


def test_existing_rows_are_rechained_by_the_migration(event, owner, team):
    audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id="2")
    triggers.drop(connection)
    try:
        AuditEvent.objects.update(seq=None, prev_digest="", digest="old-scheme")
        migration = importlib.import_module("panel.audit.migrations.0004_rechain_and_triggers")
        migration.rechain(apps, None)
    finally:
        triggers.create(connection)
    verdict = audit.verify_log()
    assert (verdict.problem, verdict.count) == ("", 2)
