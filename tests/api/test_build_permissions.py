"""Who may build, over the API's TCP endpoint with tokens: a team's operator builds (the image
is the team's: another team does not see it), a viewer is refused before anything runs."""

import secrets

import pytest

from .build_helpers import build_jobs, write_context

USERS = """
from django.contrib.auth import get_user_model
from panel.teams.models import Membership, Team
User = get_user_model()
for name, team, role in (("{p}-op", "{p}-red", Membership.Role.OPERATOR),
                         ("{p}-view", "{p}-red", Membership.Role.VIEWER),
                         ("{p}-other", "{p}-blue", Membership.Role.OPERATOR)):
    user = User.objects.create_user(name, password="pw-" + name)
    Membership.objects.create(user=user, team=Team.objects.get_or_create(name=team)[0],
                              role=role)
"""


@pytest.fixture(scope="module")
def tokens(live_stack):
    prefix = f"dyb{secrets.token_hex(3)}"
    live_stack.manage("shell", "-c", USERS.format(p=prefix))
    return {role: live_stack.create_token(f"{prefix}-{role}") for role in ("op", "view", "other")}


def test_operator_builds_for_the_team_viewer_is_refused(live_stack, cli, tokens, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox:1.29\nRUN touch /x\n"})
    tag = f"dyapi-build-team-{secrets.token_hex(3)}:v1"
    jobs_before = len(build_jobs(live_stack))
    r = live_stack.docker_cli("build", "-t", tag, str(ctx), token=tokens["view"])
    assert r.returncode != 0
    assert "You may not operate in team" in r.stderr
    assert len(build_jobs(live_stack)) == jobs_before  # refused before a job was made
    try:
        r = live_stack.docker_cli("build", "-t", tag, str(ctx), token=tokens["op"],
                                  timeout=180)
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
        assert live_stack.docker_cli("image", "inspect", tag,
                                     token=tokens["view"]).returncode == 0
        assert live_stack.docker_cli("image", "inspect", tag,
                                     token=tokens["other"]).returncode != 0
    finally:
        cli("rmi", "-f", tag)
