"""The audit page's CSV and JSON-lines exports: every field, the page's filters and scoping,
and an audit row of their own."""

import csv
import io
import json
import re

import pytest
from asgiref.sync import async_to_sync

from panel.audit import chain
from panel.audit.models import AuditEvent
from panel.audit.queries import record_fields
from panel.audit.services import record
from panel.teams.models import Membership

from .conftest import make_user

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(login, db):
    """A site admin, signed in before the rows are made (its sign-in row is older)."""
    return login(make_user("root", is_superuser=True))


@pytest.fixture
def rows(alice, mallory, blue, red):
    return [
        record("container.start", actor=alice, team=blue, obj_type="container", obj_id="a" * 64,
               obj_repr="web", source="panel"),
        record("policy.denied", actor=alice, team=blue, obj_type="container", obj_id="",
               obj_repr="=HYPERLINK(\"http://evil\")", source="api", outcome="denied",
               params={"privileged": True, "note": "a, \"quoted\"\nline"}),
        record("container.start", actor=mallory, team=red, obj_type="container",
               obj_id="c" * 64, obj_repr="red-box", source="panel"),
    ]


def _download(client, path, **query):
    response = client.get(path, query)
    assert response.status_code == 200, response.content

    async def read():
        return b"".join([chunk async for chunk in response.streaming_content])

    return response, async_to_sync(read)().decode()


def test_csv_has_every_field_oldest_first(admin_client, rows):
    response, body = _download(admin_client, "/audit/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="dockyard-audit-\d{8}-\d{6}\.csv"',
                        response["Content-Disposition"])
    table = list(csv.DictReader(io.StringIO(body)))
    assert list(table[0]) == record_fields()
    mine = [row for row in table if row["id"] in {str(r.id) for r in rows}]
    assert [row["id"] for row in mine] == [str(r.id) for r in rows]  # the chain's order
    denied = mine[1]
    assert denied["outcome"] == "denied" and denied["source"] == "api"
    assert denied["seq"] == str(rows[1].seq) and denied["digest"] == rows[1].digest
    assert json.loads(denied["params"]) == {"privileged": True, "note": "a, \"quoted\"\nline"}
    assert denied["object_repr"] == "'=HYPERLINK(\"http://evil\")"  # no formula for spreadsheets
    assert denied["team_name"] == "blue"
    assert RFC3339.match(denied["time"]), denied["time"]


def test_csv_honours_the_filters(admin_client, rows):
    _, body = _download(admin_client, "/audit/export.csv", outcome="denied",
                        interface="api")
    table = list(csv.DictReader(io.StringIO(body)))
    assert [row["id"] for row in table] == [str(rows[1].id)]


def test_jsonl_has_every_field_and_verifies_as_a_chain(admin_client, rows):
    response, body = _download(admin_client, "/audit/export.jsonl")
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert re.fullmatch(r'attachment; filename="dockyard-audit-\d{8}-\d{6}\.jsonl"',
                        response["Content-Disposition"])
    lines = [json.loads(line) for line in body.splitlines()]
    assert list(lines[0]) == record_fields()
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert all(RFC3339.match(line["time"]) for line in lines)
    denied = next(line for line in lines if line["id"] == rows[1].id)
    assert denied["params"]["privileged"] is True and denied["digest"] == rows[1].digest
    # Unfiltered, the export is the whole chain up to the request (not its own row).
    assert lines[-1]["id"] == rows[-1].id
    assert chain.verify(lines).problem == ""


def test_jsonl_is_scoped_and_filtered_for_an_auditor(login, blue, red, rows):
    auditor = make_user("audrey", blue, Membership.Role.AUDITOR)
    client = login(auditor)
    _, body = _download(client, "/audit/export.jsonl")
    assert [json.loads(line)["id"] for line in body.splitlines()] == [rows[0].id, rows[1].id]
    _, body = _download(client, "/audit/export.jsonl", q="privileged")
    assert [json.loads(line)["id"] for line in body.splitlines()] == [rows[1].id]
    _, body = _download(client, "/audit/export.jsonl", actor="mallory")
    assert body == ""


def test_the_export_is_audited_with_its_filters(login, blue, rows):
    auditor = make_user("audrey", blue, Membership.Role.AUDITOR)
    _download(login(auditor), "/audit/export.csv", outcome="denied", q="priv")
    export = AuditEvent.objects.get(action="audit.export")
    assert export.actor_name == "audrey" and export.team_id == blue.id  # its one team
    assert export.object_id == "csv" and export.source == "panel"
    assert export.params == {"outcome": "denied", "q": "priv"}


def test_invalid_filters_are_refused(admin_client, rows):
    response = admin_client.get("/audit/export.jsonl", {"until": "soon"})
    assert response.status_code == 400 and b"until" in response.content
    assert not AuditEvent.objects.filter(action="audit.export").exists()
