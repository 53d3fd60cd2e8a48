"""API tokens with the real docker CLI over TCP, configured as the README says: a config.json
with `HttpHeaders` `Authorization: Bearer <key>` in DOCKER_CONFIG and DOCKER_HOST=tcp://...
A team's viewer lists its team's containers but may not run one; another team's user does
not see them at all; a revoked token is refused with a 401 that says so."""

import json
import os
import secrets
import subprocess

import pytest
from live import docker_cli_path

IMAGE = "busybox:1.29"

USERS = """
from django.contrib.auth import get_user_model
from panel.teams.models import Membership, Team
for name, team, role in (("{p}-op", "{p}-blue", "operator"), ("{p}-view", "{p}-blue", "viewer"),
                         ("{p}-out", "{p}-red", "operator")):
    user = get_user_model().objects.create_user(name)
    Membership.objects.create(user=user, team=Team.objects.get_or_create(name=team)[0],
                              role=role)
"""

REVOKE = """
from panel.teams import tokens
from panel.teams.models import ApiToken
token = ApiToken.objects.get(user__username="{user}")
tokens.revoke(token.user, token)
"""


@pytest.fixture(scope="module")
def prefix(live_stack):
    prefix = f"dytok{secrets.token_hex(3)}"
    live_stack.manage("shell", "-c", USERS.format(p=prefix))
    return prefix


def docker_as(live_stack, tmp_path, key):
    """The docker CLI of a user who followed the README with this token."""
    config = tmp_path / f"docker-{secrets.token_hex(3)}"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"HttpHeaders": {"Authorization": f"Bearer {key}"}}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKER_", "DOCKYARD_")) and k != "DATABASE_URL"}
    env.update(DOCKER_CONFIG=str(config), DOCKER_HOST=live_stack.tcp_host,
               DOCKER_CLI_HINTS="false")

    def docker(*args):
        return subprocess.run([docker_cli_path(), *args], env=env, capture_output=True,
                              text=True, timeout=120)

    return docker


def test_tokens_with_the_docker_cli(live_stack, prefix, tmp_path):
    operator = docker_as(live_stack, tmp_path, live_stack.create_token(f"{prefix}-op"))
    viewer = docker_as(live_stack, tmp_path,
                       live_stack.create_token(f"{prefix}-view", team=f"{prefix}-blue"))
    outsider = docker_as(live_stack, tmp_path, live_stack.create_token(f"{prefix}-out"))
    box = f"{prefix}-box"
    r = operator("create", "--name", box, IMAGE, "true")
    assert r.returncode == 0, r.stderr
    try:
        r = viewer("ps", "-a", "--format", "{{.Names}}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [box]

        r = viewer("run", "--rm", IMAGE, "true")
        assert r.returncode != 0
        assert f"You may not operate in team {prefix}-blue." in r.stderr

        r = outsider("container", "inspect", box)
        assert r.returncode != 0
        assert f"No such container: {box}" in r.stderr
        r = outsider("ps", "-a", "--format", "{{.Names}}")
        assert r.returncode == 0 and box not in r.stdout.split()

        live_stack.manage("shell", "-c", REVOKE.format(user=f"{prefix}-view"))
        r = viewer("ps")
        assert r.returncode != 0
        assert "API token 'cli' has been revoked" in r.stderr
    finally:
        operator("rm", "-f", box)
