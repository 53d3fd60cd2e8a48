"""The audit page: who may read it, which rows each reader sees, and every filter."""

import pytest
from django.utils import timezone

from panel.audit.models import AuditEvent
from panel.audit.services import record
from panel.teams.models import Membership

from .conftest import make_user

URL = "/audit/"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def auditor(blue):
    return make_user("audrey", blue, Membership.Role.AUDITOR)


@pytest.fixture
def admin(db):
    return make_user("root", is_superuser=True)


@pytest.fixture
def admin_client(login, admin):
    """Logged in before the rows are made: its own sign-in row is older than them."""
    return login(admin)


@pytest.fixture
def rows(alice, mallory, blue, red):
    """A few rows of each team and one of no team, oldest first."""
    return {
        "start": record("container.start", actor=alice, team=blue, obj_type="container",
                        obj_id="a" * 64, obj_repr="web", source="panel"),
        "stop": record("container.stop", actor=alice, team=blue, obj_type="container",
                       obj_id="b" * 64, obj_repr="db", source="api",
                       params={"t": 10, "note": "nightly-maintenance"}),
        "denied": record("policy.denied", actor=alice, team=blue, obj_type="container",
                         obj_id="", obj_repr="priv", source="api", outcome="denied",
                         params={"privileged": True}),
        "volume": record("volume.create", actor=alice, team=blue, obj_type="volume",
                         obj_id="cass-shared", obj_repr="cass-shared", source="command"),
        "failed": record("job.finished", actor=alice, team=blue, obj_type="container",
                         obj_id="a" * 64, obj_repr="web", source="system", outcome="failed"),
        "red": record("container.start", actor=mallory, team=red, obj_type="container",
                      obj_id="c" * 64, obj_repr="red-secret-box", source="panel"),
        "login": record("login.failed", actor=None, team=None, obj_type="user", obj_id="",
                        obj_repr="nobody", source="panel", outcome="denied"),
    }


def _listed(client, **query) -> list[int]:
    response = client.get(URL, query)
    assert response.status_code == 200
    return [event.id for event in response.context["events"]]


def _ids(rows, *names) -> list[int]:
    return sorted((rows[name].id for name in names), reverse=True)  # newest first


def test_an_auditor_sees_only_its_teams_rows_newest_first(login, auditor, blue, rows):
    client = login(auditor)
    assert _listed(client) == _ids(rows, "start", "stop", "denied", "volume", "failed")
    page = client.get(URL).content.decode()
    assert "red-secret-box" not in page and "mallory" not in page
    # The team filter offers only its teams; another team's id is refused, not widened.
    assert list(client.get(URL).context["form"].fields["team"].queryset) == [blue]
    assert _listed(client, team=rows["red"].team_id) == []
    hidden = AuditEvent.objects.get(action="object.hidden", actor_name="audrey")
    assert (hidden.team_id, hidden.object_type, hidden.outcome) == (rows["red"].team_id, "team",
                                                                    "denied")


def test_an_owner_audits_too(login, blue, rows):
    owner = make_user("olga", blue, Membership.Role.OWNER)
    assert rows["red"].id not in _listed(login(owner))
    assert rows["start"].id in _listed(login(owner))


def test_a_site_admin_sees_every_row(admin_client, rows):
    listed = _listed(admin_client)
    assert listed[:len(rows)] == _ids(rows, *rows)  # then its own sign-in
    assert AuditEvent.objects.get(id=listed[-1]).action == "auth.login"


def test_others_get_a_404_and_the_refusal_is_audited(client, blue, red, rows):
    roles = [Membership.Role.VIEWER, Membership.Role.OPERATOR, Membership.Role.ADMIN]
    for role in roles:
        user = make_user(f"nosy-{role}", blue, role)
        Membership.objects.create(user=user, team=red, role=role)
        client.force_login(user)
        assert client.get(URL).status_code == 404, role
        assert client.get("/audit/export.csv").status_code == 404, role
        assert b">Audit</a>" not in client.get("/").content, role  # no nav link either
        refusals = AuditEvent.objects.filter(actor_name=user.username, outcome="denied",
                                             action="permission.denied", object_type="audit")
        assert refusals.count() == 2, role


def test_the_nav_link_shows_for_auditors(login, auditor):
    assert b">Audit</a>" in login(auditor).get("/audit/").content


def test_login_required(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


FILTER_CASES = [
    ({"actor": "ALICE"}, ["start", "stop", "denied", "volume", "failed"]),
    ({"actor": "mallory"}, ["red"]),
    ({"action": "container.start"}, ["start", "red"]),
    ({"action": "container."}, ["start", "stop", "red"]),
    ({"action": "container"}, []),  # not a prefix without its dot
    ({"target": "cass"}, ["volume"]),
    ({"target": "b" * 10}, ["stop"]),
    ({"target": "volume"}, ["volume"]),
    ({"outcome": "denied"}, ["denied", "login"]),
    ({"outcome": "failed"}, ["failed"]),
    ({"interface": "api"}, ["stop", "denied"]),
    ({"interface": "command"}, ["volume"]),
    ({"q": "maintenance"}, ["stop"]),  # in the parameters
    ({"q": "privileged"}, ["denied"]),
    ({"q": "secret-box"}, ["red"]),  # the target's name
    ({"q": "mallory"}, ["red"]),  # the actor
    ({"q": "job.fin"}, ["failed"]),  # the action
    ({"outcome": "denied", "interface": "api"}, ["denied"]),
]


def test_filters(admin_client, rows):
    for query, expected in FILTER_CASES:
        assert _listed(admin_client, **query) == _ids(rows, *expected), query


def test_team_filter(admin_client, rows, red):
    assert _listed(admin_client, team=red.id) == _ids(rows, "red")


def test_time_range(admin_client, alice, blue):
    before = record("container.start", actor=alice, team=blue, obj_type="container",
                    obj_id="1", source="panel")
    middle = timezone.now()
    after = record("container.stop", actor=alice, team=blue, obj_type="container",
                   obj_id="1", source="panel")
    client = admin_client
    assert _listed(client, actor="alice", since=middle.isoformat()) == [after.id]
    assert _listed(client, actor="alice", until=middle.isoformat()) == [before.id]
    # The datetime-local inputs' minutes: To includes its whole minute.
    minute = after.time.strftime("%Y-%m-%dT%H:%M")
    assert after.id in _listed(client, actor="alice", until=minute)
    assert _listed(client, actor="alice", since=minute, until=minute)[0] == after.id


def test_invalid_filters_list_nothing_and_say_why(admin_client, rows):
    client = admin_client
    response = client.get(URL, {"since": "yesterday-ish", "outcome": "denied"})
    assert response.context["events"] == []
    assert b"Fix the filters" in response.content and b"valid date" in response.content
    response = client.get(URL, {"since": "2030-01-02T00:00", "until": "2030-01-01T00:00"})
    assert response.context["events"] == [] and b"To is before From" in response.content


def test_rows_show_their_details(admin_client, rows):
    page = admin_client.get(URL, {"outcome": "denied"}).content.decode()
    assert 'class="badge badge-bad">denied<' in page
    assert '&quot;privileged&quot;: true' in page  # the params, pretty-printed
    assert f'id="d-{rows["denied"].id}"' in page and rows["denied"].digest in page


def test_pages_keep_the_filters(admin_client, alice, blue):
    for number in range(102):
        record("container.start", actor=alice, team=blue, obj_type="container",
               obj_id=str(number), source="panel")
    client = admin_client
    first = client.get(URL, {"action": "container.start"})
    assert len(first.context["events"]) == 100
    assert b'href="?action=container.start&amp;page=2"' in first.content
    second = client.get(URL, {"action": "container.start", "page": 2})
    assert [e.object_id for e in second.context["events"]] == ["1", "0"]
    assert b'href="?action=container.start&amp;page=1"' in second.content
    # The exports take the filters, not the page.
    assert b'href="/audit/export.jsonl?action=container.start"' in second.content
