"""Fixtures for the audit log's tests: a team with an owner, rows, tampering helpers."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from panel.audit import services as audit
from panel.audit import triggers
from panel.audit.models import AuditEvent
from panel.teams.models import Membership, Team


@pytest.fixture
def team(db):
    return Team.objects.create(name="blue")


@pytest.fixture
def owner(team):
    user = get_user_model().objects.create_user("owner")  # no password: no slow hashing
    Membership.objects.create(user=user, team=team, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def rows(owner, team):
    """Five chained rows, seq 1..5."""
    return [audit.record("thing.do", actor=owner, team=team, obj_type="thing",
                         obj_id=str(n), after={"n": n}) for n in range(1, 6)]


@pytest.fixture
def tamper(db):
    """Raw SQL on the audit table with its triggers lifted (as an attacker with database
    access would); the triggers are back afterwards."""
    triggers.drop(connection)

    def run(sql, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    yield run
    triggers.create(connection)


@pytest.fixture
def verify(capsys):
    """Run `manage.py audit_verify`: (exit code, output)."""
    def run(*args):
        try:
            call_command("audit_verify", *args)
            code = 0
        except SystemExit as exc:
            code = exc.code
        return code, capsys.readouterr().out.strip()

    return run


def columns() -> list[str]:
    """The audit table's columns except id: a row's whole content."""
    return [f.column for f in AuditEvent._meta.concrete_fields if f.column != "id"]
