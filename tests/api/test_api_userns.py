"""userns-remap through the Docker API with the real docker CLI: a second live stack whose
node runs with DOCKYARD_USERNS_REMAP=default (module-scoped, stopped at the end)."""

import os

import live as live_module
import pytest

IMAGE = "busybox:1.29"
NON_ADMIN = """
from django.contrib.auth import get_user_model
from panel.teams.models import Membership, Team
user = get_user_model().objects.create_user("uns-bob", password="pw-uns-bob")
Membership.objects.create(user=user, team=Team.objects.create(name="uns-blue"),
                          role=Membership.Role.OPERATOR)
"""


@pytest.fixture(scope="module")
def stack():
    if os.geteuid() != 0:
        pytest.skip("the live stack needs root")
    s = live_module.LiveStack(extra_env={"DOCKYARD_USERNS_REMAP": "default"})
    try:
        s.start()
    except live_module.StackError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield s
    finally:
        problems = s.stop()
        if problems and os.environ.get("DOCKYARD_TEST_STRICT_CLEANUP") == "1":
            pytest.fail("userns live stack cleanup: " + "; ".join(problems), pytrace=False)


def ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_containers_root_is_remapped(stack):
    assert "name=userns" in ok(stack.docker_cli("info", "--format", "{{.SecurityOptions}}"))
    out = ok(stack.docker_cli("run", "--rm", IMAGE, "sh", "-c",
                              "cat /proc/self/uid_map; id -u; ls -ln /bin/busybox"))
    lines = out.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0"
    assert lines[2].split()[2:4] == ["0", "0"]
    cid = ok(stack.docker_cli("run", "-d", IMAGE, "sleep", "600")).strip()
    try:
        top = ok(stack.docker_cli("top", cid, "-o", "pid,uid,comm"))
        assert top.splitlines()[1].split()[1] == "100000"
        out = ok(stack.docker_cli("exec", cid, "cat", "/proc/self/uid_map"))
        assert out.split() == ["0", "100000", "65536"]
    finally:
        ok(stack.docker_cli("rm", "-f", cid))


def test_userns_host_is_an_admins_opt_out(stack):
    out = ok(stack.docker_cli("run", "--rm", "--userns", "host", IMAGE,
                              "cat", "/proc/self/uid_map"))
    assert out.split() == ["0", "0", "4294967295"]
    r = stack.docker_cli("run", "--rm", "--pid", "host", IMAGE, "true")
    assert r.returncode != 0
    assert "cannot share the host PID namespace when user namespaces are enabled" in r.stderr
    stack.manage("shell", "-c", NON_ADMIN)
    token = stack.create_token("uns-bob")
    r = stack.docker_cli("run", "--rm", "--userns", "host", IMAGE, "true", token=token)
    assert r.returncode != 0
    assert "--userns host: the policy of team" in r.stderr
    assert ok(stack.docker_cli("ps", "-aq", token=token)).strip() == ""
