"""docker exec through the Docker API: the real CLI (plain, -e/-u/-w, -d, -it under a PTY)
and docker-py (exec_run with stream and demux), against the live stack."""

import json
import os
import time

import pexpect
import pytest

from tests.live import docker_cli_path

from .conftest import raw_request

IMAGE = "busybox:1.29"


@pytest.fixture
def web(cli, names):
    """A running container; returns its name."""
    name = names("web")
    r = cli("run", "-d", "--name", name, "--hostname", "webhost", "-e", "FROMRUN=1", IMAGE,
            "sleep", "600")
    assert r.returncode == 0, r.stderr
    return name


def _inspect(cli, name):
    r = cli("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_exec_ps_lists_only_the_containers_processes(cli, web):
    r = cli("exec", web, "ps", "-o", "pid,comm")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[1:]]
    assert rows[0] == ["1", "sleep"]  # PID 1 is the container's own process
    assert [row[1] for row in rows[1:]] == ["ps"]


def test_exec_env_user_workdir(cli, web):
    r = cli("exec", "-e", "A=1", "-u", "nobody", "-w", "/tmp", web, "sh", "-c",
            "echo $A $FROMRUN; id -u; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1 1\n65534\n/tmp\n"


def test_exec_exit_codes_and_errors(cli, web):
    r = cli("exec", web, "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "out\n", "err\n")
    r = cli("exec", web, "nosuch")
    assert r.returncode == 127
    assert ('OCI runtime exec failed: exec failed: unable to start container process: '
            'exec: "nosuch": executable file not found in $PATH: unknown') in r.stdout + r.stderr
    r = cli("exec", web, "/etc/passwd")
    assert r.returncode == 126
    r = cli("exec", "-u", "nosuchuser", web, "id")
    assert r.returncode == 126
    assert "unable to find user nosuchuser: no matching entries in passwd file" in \
        r.stdout + r.stderr
    # exec output is not the container's log
    assert cli("logs", web).stdout == ""


def test_exec_in_the_containers_hostname_and_network(cli, web):
    r = cli("exec", web, "hostname")
    assert r.stdout.strip() == "webhost"
    r = cli("exec", web, "ip", "-o", "addr")
    assert r.returncode == 0, r.stderr
    links = {line.split()[1] for line in r.stdout.splitlines()}
    assert links <= {"lo"} | {name for name in links if name.startswith("eth")}
    assert "lo" in links


def test_exec_refused_for_stopped_and_unknown(cli, web, live_stack):
    r = cli("stop", "-t", "0", web)
    assert r.returncode == 0, r.stderr
    cid = _inspect(cli, web)["Id"]
    r = cli("exec", web, "true")
    assert r.returncode != 0
    assert f"Container {cid} is not running" in r.stderr
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{web}/exec",
                                  body=json.dumps({"Cmd": ["true"]}),
                                  headers={"Content-Type": "application/json"})
    assert status == 409 and body["message"] == f"Container {cid} is not running"
    status, _, body = raw_request(live_stack, "GET", "/v1.41/exec/" + "0" * 64 + "/json")
    assert status == 404 and "No such exec instance" in body["message"]


def test_exec_api_validation_and_inspect(live_stack, web, cli):
    path = f"/v1.41/containers/{web}/exec"
    hdrs = {"Content-Type": "application/json"}
    for bad, word in (({"Cmd": []}, "No exec command specified"),
                      ({"Cmd": ["true"], "WorkingDir": "rel"}, "absolute path"),
                      ({"Cmd": ["true"], "Env": [5]}, "Env")):
        status, _, body = raw_request(live_stack, "POST", path, body=json.dumps(bad),
                                      headers=hdrs)
        assert status == 400 and word in body["message"], body
    status, _, body = raw_request(live_stack, "POST", path, headers=hdrs, body=json.dumps(
        {"Cmd": ["sh", "-c", "exit 7"], "AttachStdout": True, "User": "nobody"}))
    assert status == 201 and len(body["Id"]) == 64
    exec_id = body["Id"]
    status, _, info = raw_request(live_stack, "GET", f"/v1.41/exec/{exec_id}/json")
    assert status == 200
    assert info["Running"] is False and info["ExitCode"] is None
    assert info["ProcessConfig"] == {"arguments": ["-c", "exit 7"], "entrypoint": "sh",
                                     "privileged": False, "tty": False, "user": "nobody"}
    assert info["ContainerID"] == _inspect(cli, web)["Id"]
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/exec/{exec_id}/start",
                                  body=json.dumps({"Detach": False}), headers=hdrs)
    assert status == 200
    status, _, info = raw_request(live_stack, "GET", f"/v1.41/exec/{exec_id}/json")
    assert (info["Running"], info["ExitCode"]) == (False, 7)
    assert info["Pid"] > 0
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/exec/{exec_id}/start",
                                  body=json.dumps({"Detach": False}), headers=hdrs)
    assert status == 409 and "has already run" in body["message"]


def test_exec_detached(cli, web, docker_client):
    r = cli("exec", "-d", web, "sh", "-c", "sleep 0.2; echo done > /tmp/d; exit 3")
    assert (r.returncode, r.stdout) == (0, "")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = cli("exec", web, "cat", "/tmp/d")
        if r.returncode == 0:
            break
        time.sleep(0.1)
    assert r.stdout == "done\n"
    # the detached exec's exit code arrives through the shim's event
    api = docker_client.api
    cid = _inspect(cli, web)["Id"]
    exec_id = api.exec_create(cid, ["sh", "-c", "exit 4"])["Id"]
    assert api.exec_start(exec_id, detach=True) in (b"", "")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = api.exec_inspect(exec_id)
        if info["ExitCode"] is not None:
            break
        time.sleep(0.1)
    assert (info["Running"], info["ExitCode"]) == (False, 4)


def test_docker_py_exec_run(docker_client, web):
    container = docker_client.containers.get(web)
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"])
    assert result.exit_code == 2 and result.output == b"out\nerr\n"
    result = container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    assert result.output == (b"out\n", b"err\n")
    result = container.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
    assert b"".join(result.output) == b"1\n2\n3\n"
    result = container.exec_run("env", environment={"X": "y"}, workdir="/tmp", user="1000")
    assert b"X=y\n" in result.output and result.exit_code == 0
    result = container.exec_run("sh -c 'tty; echo $TERM'", tty=True)
    assert result.output.replace(b"\r", b"").split(b"\n")[1] == b"xterm"
    # the socket's user is the site admin: docker exec --privileged gets every capability
    result = container.exec_run("grep CapEff /proc/self/status", privileged=True)
    assert int(result.output.split()[1], 16) & 1 << 21  # CAP_SYS_ADMIN


def test_docker_py_socket_stdin(docker_client, web):
    api = docker_client.api
    exec_id = api.exec_create(web, ["sh", "-c", "read line; echo got $line"], stdin=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = sock._sock
    raw.sendall(b"hello\n")
    data = b""
    raw.settimeout(30)
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
    raw.close()
    assert data[:1] == b"\x01" and b"got hello\n" in data
    assert api.exec_inspect(exec_id)["ExitCode"] == 0


def test_exec_it_under_a_pty(live_stack, web):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
    env["DOCKER_CONFIG"] = str(live_stack.tmp / "docker-config")
    child = pexpect.spawn(docker_cli_path(), ["-H", live_stack.docker_host, "exec", "-it", web,
                                              "sh"], env=env, timeout=30,
                          dimensions=(33, 111))
    try:
        child.expect(r"[#$] ")
        child.sendline("stty size; echo $((6*7))")
        child.expect("33 111")
        child.expect("42")
        child.setwinsize(40, 120)
        time.sleep(0.5)
        child.sendline("stty size")
        child.expect("40 120")
        child.sendline("exit 9")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 9


def test_exec_it_with_piped_stdin(cli, web):
    r = cli("exec", "-i", web, "sh", "-c", "cat; echo end", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\nend\n")
