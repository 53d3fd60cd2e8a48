"""The docker CLI's container surface: create/start, --cidfile, names and id prefixes, rename,
ps filters/format/sizes, namespace sharing, and the process settings of `docker run`."""

import json
import os
import socket
import time

import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _inspect(cli, name):
    return json.loads(_ok(cli("inspect", name)))[0]


def _ps(cli, *args, fmt="{{.Names}}"):
    return _ok(cli("ps", "-a", *args, "--format", fmt)).split("\n")


def _wait_state(cli, name, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _inspect(cli, name)["State"]
        if state["Status"] == status:
            return state
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {status}")


# ------------------------------------------------------------------ create, start, cidfile


def test_create_then_start_and_cidfile(cli, names, tmp_path):
    name = names("created")
    cidfile = tmp_path / "cid"
    cid = _ok(cli("create", "--cidfile", str(cidfile), "--name", name, IMAGE,
                  "sleep", "600")).strip()
    assert cidfile.read_text() == cid and len(cid) == 64
    line = _ps(cli, "--filter", f"name={name}", fmt="{{.ID}} {{.Names}} {{.Status}}")[0]
    assert line == f"{cid[:12]} {name} Created"
    assert name not in _ok(cli("ps", "--format", "{{.Names}}")).split()
    # an existing cidfile is refused by the CLI before anything is created
    r = cli("create", "--cidfile", str(cidfile), IMAGE)
    assert r.returncode != 0 and "container ID file found" in r.stderr
    # names and unique id prefixes are accepted everywhere
    assert _ok(cli("start", cid[:10])).strip() == cid[:10]
    assert _inspect(cli, cid[:7])["State"]["Running"] is True
    assert "PID" in _ok(cli("top", cid[:8]))
    _ok(cli("kill", "-s", "USR1", name))
    _ok(cli("stop", "-t", "1", cid[:12]))
    assert _inspect(cli, name)["State"]["Status"] == "exited"
    _ok(cli("rm", cid[:9]))
    r = cli("inspect", name)
    assert r.returncode != 0 and f"No such object: {name}" in r.stderr


def test_every_endpoint_resolves_names_and_prefixes(live_stack, docker_client, names):
    name = names("resolve")
    c = docker_client.containers.run(IMAGE, ["sleep", "600"], name=name, detach=True)
    try:
        for ref in (name, c.id, c.id[:12]):
            for method, path in (("GET", "json"), ("GET", "top"), ("GET", "logs?stdout=1")):
                status, _, body = raw_request(live_stack, method,
                                              f"/v1.41/containers/{ref}/{path}")
                assert status == 200, (ref, path, body)
        status, _, body = raw_request(live_stack, "GET", "/v1.41/containers/nosuchthing/top")
        assert (status, body["message"]) == (404, "No such container: nosuchthing")
    finally:
        c.remove(force=True)


# ------------------------------------------------------------------ rename


def test_rename(cli, names, live_stack):
    old, new, other = names("old"), names("new"), names("other")
    cid = _ok(cli("run", "-d", "--name", old, IMAGE, "sleep", "600")).strip()
    _ok(cli("create", "--name", other, IMAGE))
    _ok(cli("rename", old, new))
    assert _inspect(cli, cid)["Name"] == "/" + new
    r = cli("inspect", old)
    assert r.returncode != 0
    # a name in use: 409 with Docker's words
    r = cli("rename", new, other)
    assert r.returncode != 0
    other_id = _inspect(cli, other)["Id"]
    assert (f'Conflict. The container name "/{other}" is already in use by container '
            f'"{other_id}". You have to remove (or rename) that container to be able to '
            "reuse that name.") in r.stderr
    status, _, body = raw_request(live_stack, "POST",
                                  f"/v1.41/containers/{new}/rename?name={other}")
    assert status == 409
    # invalid names: 400, nothing changes
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{new}/rename?name=-x")
    assert status == 400 and "Invalid container name (-x)" in body["message"]
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{new}/rename?name=")
    assert status == 400
    status, _, body = raw_request(live_stack, "POST",
                                  f"/v1.41/containers/{new}/rename?name={new}")
    assert status == 400 and "same name" in body["message"]
    assert _inspect(cli, cid)["Name"] == "/" + new
    # the renamed container stops and starts again under its new name
    _ok(cli("stop", "-t", "1", new))
    _ok(cli("start", new))
    assert _inspect(cli, new)["State"]["Running"] is True
    # the old name is free again
    _ok(cli("create", "--name", old, IMAGE))
    _ok(cli("rm", "-f", new))


# ------------------------------------------------------------------ ps


def test_ps_filters_format_and_sizes(cli, names):
    a, b, c = names("fa"), names("fb"), names("fc")
    r = cli("run", "--name", a, "--label", "tier=web", "--label", "x=1", IMAGE,
            "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    _ok(cli("create", "--name", b, "--label", "tier=db", IMAGE, "true"))
    _ok(cli("run", "-d", "--name", c, IMAGE, "sh", "-c",
            "head -c 30000 /dev/zero > /blob; sleep 600"))
    prefix = names.prefix

    def sel(*filters):
        args = [x for f in filters for x in ("--filter", f)]
        return sorted(n for n in _ps(cli, "--filter", f"name={prefix}", *args) if n)

    assert sel() == sorted([a, b, c])
    assert sel("status=exited") == [a]
    assert sel("status=created") == [b]
    assert sel("status=running") == [c]
    assert sel("exited=3") == [a]
    assert sel("exited=0") == []
    assert sel("label=tier") == sorted([a, b])
    assert sel("label=tier=web") == [a]
    assert sel("label=tier=web", "label=x=1") == [a]
    assert sel(f"ancestor={IMAGE}") == sorted([a, b, c])
    assert sel("ancestor=busybox:nope") == []
    assert sel(f"before={c}") == sorted([a, b])
    assert sel(f"since={a}") == sorted([b, c])
    cid = _inspect(cli, c)["Id"]
    assert sel(f"id={cid[:10]}") == [c]
    r = cli("ps", "--filter", "bogus=1")
    assert r.returncode != 0 and "invalid filter 'bogus'" in r.stderr
    # --format with a Go template
    line = _ps(cli, "--filter", f"name={a}", fmt="{{.Names}} {{.Status}} {{.Label \"tier\"}}")[0]
    assert line.startswith(f"{a} Exited (3) ") and line.endswith(" web")
    assert json.loads(_ps(cli, "--filter", f"name={b}", fmt="{{json .Labels}}")[0]) == \
        "tier=db"
    # -s: SizeRw from the node's upper dir, virtual = image + rw
    deadline = time.monotonic() + 20
    while True:
        row = json.loads(_ps(cli, "-s", "--filter", f"name={c}", fmt="{{json .}}")[0])
        if row["Size"].startswith("30kB") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row["Size"].startswith("30kB (virtual "), row["Size"]
    status_row = cli("ps", "-s", "--filter", f"name={c}", "--format", "{{.Size}}")
    assert "virtual" in status_row.stdout
    _ok(cli("rm", "-f", c))


def test_ps_sizes_in_the_api(docker_client, names, live_stack):
    name = names("size")
    docker_client.containers.run(IMAGE, ["sh", "-c", "head -c 5000 /dev/zero > /f"],
                                 name=name)
    status, _, body = raw_request(live_stack, "GET",
                                  f"/v1.41/containers/json?all=1&size=1&filters="
                                  f"%7B%22name%22%3A%5B%22{name}%22%5D%7D")
    assert status == 200 and len(body) == 1
    image_size = docker_client.images.get(IMAGE).attrs["Size"]
    assert 5000 <= body[0]["SizeRw"] < 5000 + 4096
    assert body[0]["SizeRootFs"] == image_size + body[0]["SizeRw"]
    status, _, body = raw_request(live_stack, "GET", f"/v1.41/containers/{name}/json?size=1")
    assert 5000 <= body["SizeRw"] < 9096


# ------------------------------------------------------------------ namespaces


def test_pid_host_lists_the_hosts_processes(cli, names):
    # the seed: docker run --pid host busybox:1.29 ps
    out = _ok(cli("run", "--rm", "--pid", "host", IMAGE, "ps"))
    pids = {line.split()[0] for line in out.splitlines()[1:]}
    assert str(os.getpid()) in pids  # this test process is on the list
    assert len(pids) > 10
    inside = _ok(cli("run", "--rm", IMAGE, "ps"))
    assert len(inside.splitlines()) == 2  # header and ps itself


def test_pid_and_ipc_container_and_uts_host(cli, names):
    x = names("donor")
    _ok(cli("run", "-d", "--name", x, "--ipc", "shareable", IMAGE, "sh", "-c",
            "echo from-x > /dev/shm/note; sleep 600"))
    out = _ok(cli("run", "--rm", "--pid", f"container:{x}", IMAGE, "ps", "-o", "pid,comm"))
    assert "1 sleep" in " ".join(out.split())  # x's PID 1 (sh exec'd sleep)
    deadline = time.monotonic() + 10
    while True:
        out = _ok(cli("run", "--rm", "--ipc", f"container:{x}", IMAGE, "cat", "/dev/shm/note"))
        if out or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert out == "from-x\n"
    r = cli("run", "--rm", "--uts", "host", IMAGE, "hostname")
    assert _ok(r).strip() == socket.gethostname()
    r = cli("run", "--rm", "--uts", "host", "--hostname", "x", IMAGE, "hostname")
    assert r.returncode != 0 and "conflicting options: hostname and the UTS mode" in r.stderr
    host_config = _inspect(cli, x)["HostConfig"]
    assert host_config["IpcMode"] == "shareable"
    # joining a private IPC namespace is refused like Docker does
    y = names("private")
    _ok(cli("run", "-d", "--name", y, IMAGE, "sleep", "600"))
    r = cli("run", "--rm", "--ipc", f"container:{y}", IMAGE, "true")
    assert r.returncode != 0 and "non-shareable IPC" in r.stderr
    # a missing container: 404; a stopped one: 409
    r = cli("run", "--rm", "--pid", "container:nosuchbox", IMAGE, "true")
    assert r.returncode != 0 and "No such container: nosuchbox" in r.stderr
    _ok(cli("stop", "-t", "0", y))
    r = cli("run", "--rm", "--ipc", f"container:{y}", IMAGE, "true")
    assert r.returncode != 0 and "is not running" in r.stderr
    r = cli("run", "--rm", "--ipc", "bogus", IMAGE, "true")
    assert r.returncode != 0
    _ok(cli("rm", "-f", x, y))


@pytest.fixture(scope="module")
def plain_user_token(live_stack):
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership, Team\n"
        "u, _ = get_user_model().objects.get_or_create(username='nsplain')\n"
        "t, _ = Team.objects.get_or_create(name='nsteam')\n"
        "Membership.objects.get_or_create(user=u, team=t, role=Membership.Role.OPERATOR)\n"))
    return live_stack.create_token("nsplain")


def test_host_namespaces_are_for_site_admins(cli, names, plain_user_token):
    for flag in ("--pid", "--ipc", "--uts"):
        name = names("hostns")
        r = cli("run", "--name", name, flag, "host", IMAGE, "true", token=plain_user_token)
        assert r.returncode != 0
        assert f"{flag} host: the policy of team nsteam does not allow sharing the node's " \
            "namespaces" in r.stderr
        assert name not in _ok(cli("ps", "-a", "--format", "{{.Names}}")).split()
    # an ordinary container is fine for them
    name = names("plain")
    r = cli("run", "--rm", "--name", name, IMAGE, "echo", "ok", token=plain_user_token)
    assert _ok(r) == "ok\n"


# ------------------------------------------------------------------ process settings


def test_user_and_groups(cli):
    assert _ok(cli("run", "--rm", "-u", "nobody:tty", IMAGE, "id")).startswith(
        "uid=65534(nobody) gid=5(tty)")
    assert _ok(cli("run", "--rm", "-u", "1234:4321", IMAGE, "id")).startswith(
        "uid=1234 gid=4321")
    out = _ok(cli("run", "--rm", "-u", "nobody", "--group-add", "tty", "--group-add", "777",
                  IMAGE, "id", "-G"))
    assert out.split() == ["65534", "5", "777"]
    assert _inspect_group_add(cli) == ["tty", "777"]


def _inspect_group_add(cli):
    cid = _ok(cli("create", "--group-add", "tty", "--group-add", "777", IMAGE)).strip()
    try:
        return _inspect(cli, cid)["HostConfig"]["GroupAdd"]
    finally:
        cli("rm", cid)


def test_unknown_user_leaves_nothing_running(cli, names):
    name = names("nouser")
    r = cli("run", "--name", name, "-u", "bob", IMAGE, "id")
    assert r.returncode != 0
    assert "unable to find user bob: no matching entries in passwd file" in r.stderr
    assert _inspect(cli, name)["State"]["Status"] == "created"
    assert name not in _ok(cli("ps", "--format", "{{.Names}}")).split()
    r = cli("run", "--rm", "--group-add", "nosuchgroup", IMAGE, "id")
    assert r.returncode != 0 and "Unable to find group nosuchgroup" in r.stderr


def test_workdir_env_envfile_labels(cli, names, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=yes\nSHARED=file\n")
    out = _ok(cli("run", "--rm", "-w", "/srv/app", "--env", "MY_ENVIRONMENT_VAR=this is a test",
                  "--env-file", str(envfile), "-e", "SHARED=flag", IMAGE,
                  "sh", "-c", "pwd; env | sort"))
    lines = out.splitlines()
    assert lines[0] == "/srv/app"
    assert "MY_ENVIRONMENT_VAR=this is a test" in lines
    assert "FROM_FILE=yes" in lines and "SHARED=flag" in lines
    name = names("labels")
    _ok(cli("create", "--name", name, "--label", "a=1", "--label", "b", IMAGE))
    assert _inspect(cli, name)["Config"]["Labels"] == {"a": "1", "b": ""}
    assert _ok(cli("inspect", "--format", '{{index .Config.Labels "a"}}', name)).strip() == "1"


def test_entrypoint(cli, names):
    # the seed: --entrypoint mount alpine -v, with busybox
    assert _ok(cli("run", "--rm", "--entrypoint", "echo", IMAGE, "-n", "x")) == "x"
    assert _ok(cli("run", "--rm", "--entrypoint", "", IMAGE, "echo", "cleared")) == "cleared\n"
    name = names("ep")
    _ok(cli("create", "--name", name, "--entrypoint", "", IMAGE, "true"))
    config = _inspect(cli, name)["Config"]
    assert config["Cmd"] == ["true"] and config["Entrypoint"] in (None, [], [""])


def test_stop_signal_and_timeout(cli, names):
    name = names("stopsig")
    # USR1 ends it with 42; TERM would be ignored
    _ok(cli("run", "-d", "--name", name, "--stop-signal", "USR1", IMAGE, "sh", "-c",
            "trap 'exit 42' USR1; trap '' TERM; while :; do sleep 0.1; done"))
    assert _inspect(cli, name)["Config"]["StopSignal"] == "USR1"
    time.sleep(0.5)
    _ok(cli("stop", name))
    assert _inspect(cli, name)["State"]["ExitCode"] == 42
    # --stop-timeout: the time stop waits before SIGKILL when -t is not given
    name = names("stoptime")
    _ok(cli("run", "-d", "--name", name, "--stop-timeout", "1", IMAGE, "sh", "-c",
            "trap '' TERM; while :; do sleep 0.1; done"))
    assert _inspect(cli, name)["Config"]["StopTimeout"] == 1
    time.sleep(0.5)
    t0 = time.monotonic()
    _ok(cli("stop", name))
    took = time.monotonic() - t0
    assert _inspect(cli, name)["State"]["ExitCode"] == 137
    assert 0.9 < took < 9  # not the default 10 s


def test_rm_removes_after_exit(cli, names):
    name = names("autorm")
    assert _ok(cli("run", "--rm", "--name", name, IMAGE, "sh", "-c", "echo bye")) == "bye\n"
    assert name not in _ok(cli("ps", "-a", "--format", "{{.Names}}")).split()
    cid = _ok(cli("run", "-d", "--rm", "--name", name, IMAGE, "sleep", "0.2")).strip()
    deadline = time.monotonic() + 30
    while cid[:12] in _ok(cli("ps", "-a", "--format", "{{.ID}}")).split():
        assert time.monotonic() < deadline, "the --rm container was not removed"
        time.sleep(0.2)
