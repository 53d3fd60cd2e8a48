"""The account page's API tokens: create one in one of my teams (the key is shown once, with
the docker CLI's config.json and DOCKER_HOST), list them, revoke; audited without the key."""

import json
from datetime import timedelta

from django.utils import timezone

from panel.audit.models import AuditEvent
from panel.teams import tokens
from panel.teams.models import ApiToken, Membership

from .conftest import make_user


def test_create_shows_the_key_once(login, alice, blue, red, settings):
    settings.API_TCP = "0.0.0.0:2375"
    Membership.objects.create(user=alice, team=red, role=Membership.Role.VIEWER)
    client = login(alice)
    page = client.get("/account/").content.decode()
    assert "No API tokens" in page
    assert f'<option value="{blue.pk}">blue</option>' in page
    assert f'<option value="{red.pk}">red</option>' in page

    response = client.post("/account/tokens/", {"name": "laptop", "team": red.pk,
                                                "expires_days": "30"},
                           HTTP_HOST="dock.example:8000")
    page = response.content.decode()
    token = ApiToken.objects.get(user=alice)
    key = page.split('id="token-key">')[1].split("<")[0]
    assert key.startswith("dy_") and ApiToken.hash_key(key) == token.key_hash
    assert (token.name, token.team, token.revoked) == ("laptop", red, False)
    assert abs(token.expires - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    config = page.split('id="token-config">')[1].split("<")[0].replace("&quot;", '"')
    assert json.loads(config) == {"HttpHeaders": {"Authorization": f"Bearer {key}"}}
    assert "export DOCKER_HOST=tcp://dock.example:2375" in page

    again = client.get("/account/").content.decode()
    assert key not in again
    row = again.split('data-token="laptop"')[1].split("</tr>")[0]
    assert "red" in row and "active" in row and "never" in row  # never used yet

    event = AuditEvent.objects.get(action="token.create")
    assert (event.actor, event.team, event.object_repr) == (alice, red, "laptop")
    assert key not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_only_my_teams_and_a_name(login, alice, red):
    client = login(alice)
    response = client.post("/account/tokens/", {"name": "x", "team": red.pk})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post("/account/tokens/", {"name": "", "team": alice.memberships.get().team_id})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_site_admin_may_make_an_unscoped_token(login, blue):
    admin = make_user("root", is_superuser=True)
    page = login(admin).post("/account/tokens/", {"name": "all", "team": ""}).content.decode()
    assert 'id="token-key"' in page
    assert ApiToken.objects.get(user=admin).team is None


def test_revoke(login, alice, mallory, blue):
    mine, _ = tokens.issue(alice, "ci", team=blue)
    theirs, _ = tokens.issue(mallory, "theirs", team=mallory.memberships.get().team)
    client = login(alice)
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    response = client.post(f"/account/tokens/{mine.pk}/revoke/", follow=True)
    assert "Token ci is revoked" in response.content.decode()
    row = response.content.decode().split('data-token="ci"')[1].split("</tr>")[0]
    assert "revoked" in row and "Revoke</button>" not in row
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked and not theirs.revoked
    event = AuditEvent.objects.get(action="token.revoke")
    assert (event.actor, event.team, event.object_id) == (alice, blue, str(mine.pk))


def test_expired_tokens_are_shown_so(login, alice, blue):
    token, _ = tokens.issue(alice, "old", team=blue,
                            expires=timezone.now() + timedelta(seconds=1))
    ApiToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(days=1))
    page = login(alice).get("/account/").content.decode()
    row = page.split('data-token="old"')[1].split("</tr>")[0]
    assert "expired" in row and "Revoke</button>" not in row
