"""Team policy and quotas through the real docker CLI with a non-admin's team token: the
refusal the service gives, then the run once the team allows it."""

import secrets

IMAGE = "busybox:1.29"


def _team(live_stack, name: str, **fields) -> None:
    live_stack.manage("shell", "-c", (
        "from panel.teams.models import Team\n"
        f"Team.objects.filter(name={name!r}).update(**{fields!r})\n"))


def test_policy_and_quota_for_a_team_token(live_stack, cli, names):
    user, team = f"pol-{secrets.token_hex(3)}", f"polteam-{secrets.token_hex(3)}"
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership, Team\n"
        f"u = get_user_model().objects.create_user({user!r})\n"
        f"t = Team.objects.create(name={team!r})\n"
        "Membership.objects.create(user=u, team=t, role=Membership.Role.OPERATOR)\n"))
    token = live_stack.create_token(user, team=team)

    r = cli("run", "--rm", "--privileged", IMAGE, "true", token=token)
    assert r.returncode != 0
    assert (f"--privileged: the policy of team {team} does not allow privileged containers; "
            "a team admin can allow it on the team's policy page") in r.stderr
    _team(live_stack, team, allow_privileged=True, max_memory=64 * 1024 ** 2)

    r = cli("run", "--rm", "--privileged", IMAGE, "true", token=token)
    assert r.returncode != 0 and f"team {team} has a memory quota" in r.stderr
    name = names("priv")
    r = cli("run", "--name", name, "--privileged", "-m", "32m", IMAGE,
            "cat", "/proc/self/status", token=token)
    assert r.returncode == 0, r.stderr
    cap_eff = next(line.split()[1] for line in r.stdout.splitlines()
                   if line.startswith("CapEff:"))
    assert int(cap_eff, 16) & 1 << 21  # CAP_SYS_ADMIN: privileged
    r = cli("run", "--rm", "-m", "48m", IMAGE, "true", token=token)
    assert r.returncode != 0
    assert (f"memory quota of team {team} exceeded: 32 MiB used, 48 MiB more asked, quota "
            "64 MiB") in r.stderr
