"""API tokens in process, through the real front server on a loopback port: a token acts in its
one team with its user's role there; revoked and expired tokens and disabled users get a 401
that says why; a user who left the token's team has no rights there; `last_used`; the rules
of issuing (ApiToken.issue, createtoken)."""

import asyncio
import http.client
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.utils import timezone

from panel.audit.models import AuditEvent
from panel.containers.models import Container
from panel.dockerapi.asgi import DockerApiHandler
from panel.dockerapi.server import ApiServer
from panel.errors import InvalidParameter
from panel.images.models import Image
from panel.nodes.services import local_node
from panel.teams import tokens
from panel.teams.models import ApiToken, Membership, Team


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def world(db):
    """alice: operator of blue, viewer of red; a container in each team."""
    blue, red = Team.objects.create(name="blue"), Team.objects.create(name="red")
    alice = get_user_model().objects.create_user("alice")
    Membership.objects.create(user=alice, team=blue, role=Membership.Role.OPERATOR)
    Membership.objects.create(user=alice, team=red, role=Membership.Role.VIEWER)
    image = Image.objects.create(id="b" * 64, node=local_node(), config={}, layers=[], size=1,
                                 created=datetime(2020, 1, 1, tzinfo=UTC))
    for team, char in ((blue, "c"), (red, "d")):
        Container.objects.create(id=char * 64, name=f"{team.name}-box", team=team,
                                 node=local_node(), image=image, image_ref="busybox",
                                 spec={"Config": {}})
    return {"alice": alice, "blue": blue, "red": red}


def _http(port, method, path, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body.startswith((b"{", b"[")) else body
    finally:
        conn.close()


def api(*requests):
    """[(status, body)] of each (method, path, key) through a front server on a free port."""
    async def run():
        server = ApiServer(DockerApiHandler(), tcp="127.0.0.1:0")
        await server.start()
        port = server._servers[0].sockets[0].getsockname()[1]
        try:
            return [await asyncio.to_thread(_http, port, *request) for request in requests]
        finally:
            await server.close()

    return async_to_sync(run)()


def names(listing):
    return sorted(c["Names"][0] for c in listing)


def test_a_token_acts_in_its_team_only(world):
    _, red_key = tokens.issue(world["alice"], "red-view", team=world["red"])
    _, blue_key = tokens.issue(world["alice"], "blue-op", team=world["blue"])
    (s1, red_list), (s2, blue_list), (s3, hidden), (s4, refused), (s5, ping) = api(
        ("GET", "/v1.41/containers/json?all=1", red_key),
        ("GET", "/v1.41/containers/json?all=1", blue_key),
        ("GET", "/v1.41/containers/blue-box/json", red_key),
        ("POST", "/v1.41/containers/red-box/stop", red_key),
        ("GET", "/_ping", red_key))
    assert (s1, names(red_list)) == (200, ["/red-box"])
    assert (s2, names(blue_list)) == (200, ["/blue-box"])
    assert (s3, hidden) == (404, {"message": "No such container: blue-box"})
    assert (s4, refused) == (403, {"message": "You may not operate in team red."})
    assert (s5, ping) == (200, b"OK")


def test_refused_tokens_say_why(world):
    alice = world["alice"]
    revoked, revoked_key = tokens.issue(alice, "old", team=world["blue"])
    tokens.revoke(alice, revoked)
    expired, expired_key = tokens.issue(alice, "short", team=world["blue"],
                                        expires=timezone.now() + timedelta(seconds=5))
    ApiToken.objects.filter(pk=expired.pk).update(
        expires=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    bob = get_user_model().objects.create_user("bob", is_active=True)
    Membership.objects.create(user=bob, team=world["blue"])
    _, bob_key = tokens.issue(bob, "bob", team=world["blue"])
    get_user_model().objects.filter(pk=bob.pk).update(is_active=False)
    results = api(("GET", "/v1.41/containers/json", revoked_key),
                  ("GET", "/v1.41/containers/json", expired_key),
                  ("GET", "/v1.41/containers/json", bob_key),
                  ("GET", "/v1.41/containers/json", "dy_not-a-token"),
                  ("GET", "/v1.41/containers/json", None))
    assert results == [
        (401, {"message": "API token 'old' has been revoked"}),
        (401, {"message": "API token 'short' expired on 2026-01-02 03:04 UTC"}),
        (401, {"message": "the account of API token 'bob' is disabled"}),
        (401, {"message": "invalid API token"}),
        (401, {"message": "authentication required: send `Authorization: Bearer <token>` "
                          "(docker CLI: HttpHeaders in config.json)"}),
    ]
    # Each refused key is a failed sign-in in the audit log, from the client's address.
    rows = list(AuditEvent.objects.filter(action="auth.token_refused").order_by("seq"))
    assert [(r.actor_name, r.object_repr, r.outcome, r.source, r.address) for r in rows] == [
        ("alice", "old", "failed", "api", "127.0.0.1"),
        ("alice", "short", "failed", "api", "127.0.0.1"),
        ("bob", "bob", "failed", "api", "127.0.0.1"),
        ("anonymous", "", "failed", "api", "127.0.0.1"),
    ]
    assert rows[-1].params["reason"] == "invalid API token"


def test_a_user_who_left_the_team_has_no_rights_there(world):
    token, key = tokens.issue(world["alice"], "blue", team=world["blue"])
    Membership.objects.filter(user=world["alice"], team=world["blue"]).delete()
    (s1, listing), (s2, hidden) = api(("GET", "/v1.41/containers/json?all=1", key),
                                      ("GET", "/v1.41/containers/blue-box/json", key))
    assert (s1, listing) == (200, [])
    assert s2 == 404


def test_last_used_is_written_at_most_once_a_minute(world):
    token, key = tokens.issue(world["alice"], "t", team=world["blue"])
    assert token.last_used is None
    tokens.authenticate(key)
    token.refresh_from_db()
    first = token.last_used
    assert first is not None
    tokens.authenticate(key)
    token.refresh_from_db()
    assert token.last_used == first
    ApiToken.objects.filter(pk=token.pk).update(last_used=first - timedelta(minutes=2))
    tokens.authenticate(key)
    token.refresh_from_db()
    assert token.last_used > first


def test_issue_rules(world):
    alice, blue = world["alice"], world["blue"]
    with pytest.raises(InvalidParameter, match="must be scoped to one of your teams"):
        ApiToken.issue(alice, "x")
    with pytest.raises(PermissionDenied, match="alice is not a member of team green"):
        ApiToken.issue(alice, "x", team=Team.objects.create(name="green"))
    with pytest.raises(InvalidParameter, match="expiry must be in the future"):
        ApiToken.issue(alice, "x", team=blue, expires=timezone.now())
    token, key = ApiToken.issue(alice, "x", team=blue)
    assert tokens.authenticate(key)[0] == tokens.Caller(alice.pk, blue.pk)
    root = get_user_model().objects.create_superuser("root", "", "pw")
    token, key = ApiToken.issue(root, "all")
    assert tokens.authenticate(key)[0] == tokens.Caller(root.pk, None)
    assert tokens.site_admin_caller() == tokens.Caller(root.pk, None)


def test_createtoken_command(world):
    out = StringIO()
    call_command("createtoken", "alice", "--team", "red", "--expires", "7", "--name", "ci",
                 stdout=out)
    token = ApiToken.objects.get(name="ci")
    assert (token.team, token.user) == (world["red"], world["alice"])
    assert timedelta(days=6, hours=23) < token.expires - timezone.now() <= timedelta(days=7)
    assert "in team red" in out.getvalue() and '{"HttpHeaders"' in out.getvalue()
    with pytest.raises(CommandError, match="alice is in several teams: name one with --team"):
        call_command("createtoken", "alice", stdout=StringIO())
    Membership.objects.filter(team=world["red"]).delete()
    out = StringIO()
    call_command("createtoken", "alice", "--quiet", stdout=out)
    assert ApiToken.objects.get(key_hash=ApiToken.hash_key(out.getvalue().strip())).team == \
        world["blue"]
    with pytest.raises(CommandError, match="not a member of team red"):
        call_command("createtoken", "alice", "--team", "red", stdout=StringIO())
