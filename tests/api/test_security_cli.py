"""The seed's security flags through the real docker CLI (the socket's user is the site admin):
--cap-drop/--cap-add, --privileged, --security-opt, --read-only, --sysctl, --shm-size,
--device, --ipc shareable + container:, docker exec --privileged; `docker inspect` shows them."""

import json
import os
import time

import docker
import pytest

IMAGE = "busybox:1.29"
DEFAULT_CAPS = 0xA80425FB


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _host_config(cli, name):
    return json.loads(_ok(cli("inspect", name)))[0]["HostConfig"]


def _status(out: str) -> dict:
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_cap_drop_net_raw_stops_ping(cli, names):
    _ok(cli("run", "--rm", IMAGE, "ping", "-c", "1", "127.0.0.1"))
    name = names("noraw")
    r = cli("run", "--name", name, "--cap-drop", "net_raw", IMAGE, "ping", "-c", "1", "127.0.0.1")
    assert r.returncode != 0 and "permission denied" in (r.stdout + r.stderr).lower()
    assert _host_config(cli, name)["CapDrop"] == ["CAP_NET_RAW"]  # the CLI normalizes
    # the seed's `-u nobody --cap-drop net_raw`: no effective capability, NET_RAW not bounded
    status = _status(_ok(cli("run", "--rm", "-u", "nobody", "--cap-drop", "net_raw", IMAGE,
                             "cat", "/proc/self/status")))
    assert int(status["CapEff"], 16) == 0 and int(status["CapInh"], 16) == 0
    assert int(status["CapBnd"], 16) == DEFAULT_CAPS & ~(1 << 13)


def test_cap_add_and_drop_all(cli, names):
    status = _status(_ok(cli("run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-drop", "ALL",
                             IMAGE, "cat", "/proc/self/status")))
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 1 << 21
    assert int(status["CapAmb"], 16) == 0


def test_privileged_ls_dev(cli, names):
    # the seed: docker container run --rm --privileged ubuntu:16.04 ls /dev
    host_blocks = {n for n in os.listdir("/dev") if n.startswith(("loop", "vd", "sd", "nvme"))}
    out = _ok(cli("run", "--rm", "--privileged", IMAGE, "ls", "/dev"))
    assert host_blocks and host_blocks <= set(out.split())
    assert not host_blocks & set(_ok(cli("run", "--rm", IMAGE, "ls", "/dev")).split())
    name = names("priv")
    status = _status(_ok(cli("run", "--name", name, "--privileged", IMAGE,
                             "cat", "/proc/self/status")))
    assert status["Seccomp"] == "0" and int(status["CapEff"], 16) & 1 << 21
    hc = _host_config(cli, name)
    assert hc["Privileged"] is True and hc["MaskedPaths"] is None
    plain = names("plain")
    _ok(cli("create", "--name", plain, IMAGE))
    assert "/sys/devices/virtual/powercap" in _host_config(cli, plain)["MaskedPaths"]


def test_hardening_flags_show_in_inspect(cli, names, tmp_path):
    name = names("hard")
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    r = cli("run", "--name", name, "--read-only", "--sysctl", "kernel.shmmni=2048",
            "--shm-size", "16m", "--security-opt", "no-new-privileges",
            "--security-opt", f"seccomp={profile}", "--device", "/dev/loop0:/dev/xloop:r",
            IMAGE, "sh", "-c", "cat /proc/sys/kernel/shmmni; df -k /dev/shm | tail -1; "
            "grep NoNewPrivs /proc/self/status; ls /dev/xloop; touch /x; mkdir /dev/shm/d")
    assert r.returncode != 0
    lines = r.stdout.splitlines()
    assert lines[0] == "2048"
    assert lines[1].split()[1] == "16384"
    assert lines[2].split() == ["NoNewPrivs:", "1"]
    assert lines[3] == "/dev/xloop"
    assert "Read-only file system" in r.stderr and "Operation not permitted" in r.stderr
    hc = _host_config(cli, name)
    assert hc["ReadonlyRootfs"] is True and hc["ShmSize"] == 16 << 20
    assert hc["Sysctls"] == {"kernel.shmmni": "2048"}
    assert hc["SecurityOpt"][0] == "no-new-privileges"
    assert hc["SecurityOpt"][1].startswith("seccomp=") and "SCMP_ACT_ALLOW" in hc["SecurityOpt"][1]
    assert hc["Devices"] == [{"PathOnHost": "/dev/loop0", "PathInContainer": "/dev/xloop",
                              "CgroupPermissions": "r"}]


def test_unconfined_and_refused_sysctl(cli, names, docker_client):
    out = _ok(cli("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                  "grep", "Seccomp:", "/proc/self/status"))
    assert out.split() == ["Seccomp:", "0"]
    out = _ok(cli("run", "--rm", IMAGE, "grep", "Seccomp:", "/proc/self/status"))
    assert out.split() == ["Seccomp:", "2"]
    r = cli("run", "--rm", "--sysctl", "vm.swappiness=1", IMAGE, "true")
    assert r.returncode != 0 and "is not allowed" in r.stderr  # the CLI's own check
    with pytest.raises(docker.errors.APIError, match="not in a separate kernel namespace"):
        docker_client.containers.create(IMAGE, "true", sysctls={"vm.swappiness": "1"})


def test_seed_ipc_producer_and_consumer(cli, names):
    """--ipc shareable + --ipc container:producer: the same IPC namespace (its POSIX message
    queues) and the same /dev/shm, like the seed's ch6_ipc producer and consumer."""
    producer = names("producer")
    _ok(cli("run", "-d", "--name", producer, "--ipc", "shareable", IMAGE, "sh", "-c",
            "touch /dev/mqueue/ch6 && echo hello > /dev/shm/msg && sleep 600"))
    deadline = time.monotonic() + 10
    while True:
        r = cli("run", "--rm", "--ipc", f"container:{producer}", IMAGE, "sh", "-c",
                "ls /dev/mqueue; cat /dev/shm/msg")
        if r.stdout.split() == ["ch6", "hello"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.stdout.split() == ["ch6", "hello"], r.stderr
    assert _ok(cli("run", "--rm", IMAGE, "ls", "/dev/mqueue")).split() == []


def test_exec_privileged(cli, names):
    name = names("execpriv")
    _ok(cli("run", "-d", "--name", name, "--cap-drop", "ALL", IMAGE, "sleep", "600"))
    plain = _status(_ok(cli("exec", name, "cat", "/proc/self/status")))
    assert int(plain["CapEff"], 16) == 0 and plain["Seccomp"] == "2"
    priv = _status(_ok(cli("exec", "--privileged", name, "cat", "/proc/self/status")))
    assert int(priv["CapEff"], 16) & 1 << 21


def test_more_privileges_are_for_site_admins(cli, names, live_stack):
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership, Team\n"
        "u, _ = get_user_model().objects.get_or_create(username='secplain')\n"
        "t, _ = Team.objects.get_or_create(name='secteam')\n"
        "Membership.objects.get_or_create(user=u, team=t, role=Membership.Role.OPERATOR)\n"))
    token = live_stack.create_token("secplain")
    for flags, words in ((["--privileged"], "--privileged"),
                         (["--cap-add", "net_admin"], "--cap-add CAP_NET_ADMIN"),
                         (["--device", "/dev/loop0"], "--device /dev/loop0"),
                         (["--security-opt", "seccomp=unconfined"], "seccomp=unconfined")):
        r = cli("run", "--rm", *flags, IMAGE, "true", token=token)
        assert r.returncode != 0 and words in r.stderr and "policy of team secteam" in r.stderr
    # dropping, hardening and the default set are fine
    r = cli("run", "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--read-only",
            "--security-opt", "no-new-privileges", IMAGE, "echo", "ok", token=token)
    assert _ok(r) == "ok\n"
    name = names("plainexec")
    _ok(cli("run", "-d", "--name", name, IMAGE, "sleep", "600", token=token))
    r = cli("exec", "--privileged", name, "true", token=token)
    assert r.returncode != 0 and "policy of team secteam does not allow" in r.stderr
