"""The real docker CLI against the live stack's Docker API (unix socket, and TCP with a token)."""

import json
import os
import subprocess
import time

import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"


def _names_all(cli) -> list[str]:
    r = cli("ps", "-a", "--format", "{{.Names}}")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def _inspect(cli, name: str) -> dict:
    r = cli("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_version_and_info(cli, live_stack):
    r = cli("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Server.Version}}")
    assert r.returncode == 0, r.stderr
    api, os_name, version = r.stdout.split()
    assert (api, os_name) == ("1.41", "linux")
    assert "dockyard" in version
    r = cli("info", "--format", "{{.Driver}}|{{.DockerRootDir}}|{{.CgroupDriver}}|{{.OSType}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"overlay2|{live_stack.state_root}|cgroupfs|linux"
    r = cli("info")
    assert r.returncode == 0, r.stderr
    assert "Server Version: 24.0.0-dockyard" in r.stdout


def test_run_detached_shows_up_in_ps(cli, names):
    name = names("web")
    r = cli("run", "-d", "--name", name, IMAGE, "sleep", "600")
    assert r.returncode == 0, r.stderr
    container_id = r.stdout.strip()
    assert len(container_id) == 64
    r = cli("ps", "--format", "{{.ID}} {{.Names}} {{.Status}} {{.Command}} {{.Image}}")
    line = next(line for line in r.stdout.splitlines() if name in line)
    assert line.startswith(container_id[:12])
    assert " Up " in f" {line} "
    assert '"sleep 600"' in line and IMAGE in line
    r = cli("rm", "-f", name)
    assert r.returncode == 0, r.stderr
    assert name not in _names_all(cli)


def test_run_rm_prints_output_and_leaves_nothing(cli, names):
    name = names("rm")
    r = cli("run", "--rm", "--name", name, IMAGE, "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    assert name not in _names_all(cli)


def test_run_exit_code_and_streams(cli, names):
    name = names("exit")
    r = cli("run", "--name", name, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"
    state = _inspect(cli, name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 3


def test_missing_executable_exits_127(cli, names):
    name = names("nocmd")
    r = cli("run", "--name", name, IMAGE, "nosuchcmd")
    assert r.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stderr
    assert "failed to create task for container" in r.stderr


def test_missing_executable_with_rm_removes_the_container(cli, names):
    name = names("nocmdrm")
    r = cli("run", "--rm", "--name", name, IMAGE, "nosuchcmd", timeout=60)
    assert r.returncode == 127, r.stderr
    assert name not in _names_all(cli)


def test_logs_tail_timestamps_and_follow(cli, names):
    name = names("logs")
    # stdout and stderr are separate pipes: only the pause orders "three" after "two".
    script = "echo one; echo two >&2; sleep 0.3; echo three"
    r = cli("run", "--name", name, IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    r = cli("logs", name)
    assert r.stdout == "one\nthree\n" and r.stderr == "two\n"
    r = cli("logs", "--tail", "1", name)
    assert r.stdout == "three\n" and r.stderr == ""
    r = cli("logs", "-t", name)
    lines = r.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "three"]
    stamp = lines[0].split(" ", 1)[0]
    assert stamp.endswith("Z") and "T" in stamp and len(stamp.split(".")[1]) == 10

    follow = names("follow")
    r = cli("run", "-d", "--name", follow, IMAGE, "sh", "-c", "echo a; sleep 2; echo b")
    assert r.returncode == 0, r.stderr
    started = time.monotonic()
    r = cli("logs", "-f", follow, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a\nb\n"
    assert time.monotonic() - started < 15


def test_stop_sends_sigterm(cli, names):
    name = names("stop")
    script = "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.1; done"
    r = cli("run", "-d", "--name", name, IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    _wait_for_log(cli, name, "ready")
    r = cli("stop", name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name
    state = _inspect(cli, name)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 42
    assert "got TERM" in cli("logs", name).stdout
    r = cli("stop", name)  # already stopped: Docker answers 304, the CLI succeeds
    assert r.returncode == 0, r.stderr


def test_kill_with_signal_and_wait(cli, names):
    name = names("kill")
    script = "trap 'exit 7' USR1; echo ready; while true; do sleep 0.1; done"
    r = cli("run", "-d", "--name", name, IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    _wait_for_log(cli, name, "ready")
    r = cli("kill", "-s", "USR1", name)
    assert r.returncode == 0, r.stderr
    r = cli("wait", name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "7"

    name = names("kill9")
    assert cli("run", "-d", "--name", name, IMAGE, "sleep", "600").returncode == 0
    r = cli("kill", name)
    assert r.returncode == 0, r.stderr
    state = _inspect(cli, name)["State"]  # SIGKILL returns once the container is gone
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    r = cli("kill", name)
    assert r.returncode != 0 and "is not running" in r.stderr


def test_rm_running_needs_force(cli, names):
    name = names("rmf")
    assert cli("run", "-d", "--name", name, IMAGE, "sleep", "600").returncode == 0
    r = cli("rm", name)
    assert r.returncode != 0
    assert "cannot remove a running container" in r.stderr
    assert name in _names_all(cli)
    r = cli("rm", "-f", name)
    assert r.returncode == 0, r.stderr
    assert name not in _names_all(cli)
    r = cli("rm", name)
    assert r.returncode != 0 and "No such container" in r.stderr


def test_inspect_fields(cli, names):
    name = names("insp")
    r = cli("create", "--name", name, "-e", "FOO=bar", "-l", "team=blue", "-w", "/tmp",
            "--restart", "on-failure:3", IMAGE, "sleep", "5")
    assert r.returncode == 0, r.stderr
    data = _inspect(cli, name)
    assert data["Id"] == r.stdout.strip()
    assert data["Name"] == f"/{name}"
    assert data["Path"] == "sleep" and data["Args"] == ["5"]
    assert data["Image"].startswith("sha256:") and len(data["Image"]) == 71
    assert data["State"]["Status"] == "created" and data["State"]["Running"] is False
    assert data["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    assert data["Driver"] == "overlay2" and data["Platform"] == "linux"
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert data["HostConfig"]["NetworkMode"] == "default"
    assert data["HostConfig"]["LogConfig"]["Type"] == "json-file"
    config = data["Config"]
    assert config["Image"] == IMAGE and config["Cmd"] == ["sleep", "5"]
    assert "FOO=bar" in config["Env"] and any(e.startswith("PATH=") for e in config["Env"])
    assert config["Labels"]["team"] == "blue" and config["WorkingDir"] == "/tmp"
    assert config["Hostname"] == data["Id"][:12]
    assert data["LogPath"].endswith(f"{data['Id']}/container.log")
    r = cli("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", name)
    assert r.stdout.strip() == "created 0"


def test_images(cli):
    r = cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    assert r.returncode == 0, r.stderr
    assert any(line.startswith(f"{IMAGE} ") for line in r.stdout.splitlines())
    r = cli("image", "inspect", "--format", "{{.Os}} {{.RootFS.Type}}", IMAGE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "linux layers"


def test_unknown_image_creates_nothing(cli, names):
    before = _names_all(cli)
    name = names("noimg")
    # on a closed loopback port: the CLI's pull attempt stays on this host, and fails
    ref = "127.0.0.1:9/dyapi-nope:nope"
    r = cli("run", "--name", name, ref, "true")
    assert r.returncode == 125
    assert f"Unable to find image '{ref}' locally" in r.stderr
    assert _names_all(cli) == before


def test_name_in_use_creates_nothing(cli, names):
    name = names("dup")
    assert cli("create", "--name", name, IMAGE, "true").returncode == 0
    before = _names_all(cli)
    r = cli("run", "--name", name, IMAGE, "true")
    assert r.returncode == 125
    assert f'The container name "/{name}" is already in use' in r.stderr
    assert _names_all(cli) == before


def test_wait_next_exit_and_not_running(cli, names):
    name = names("wait")
    assert cli("create", "--name", name, IMAGE, "sh", "-c", "exit 5").returncode == 0
    assert cli("start", name).returncode == 0
    r = cli("wait", name)
    assert r.stdout.strip() == "5"


@pytest.fixture(scope="module")
def token(live_stack):
    return live_stack.create_token()


def test_tcp_with_token(cli, names, token):
    name = names("tcp")
    r = cli("run", "--name", name, IMAGE, "echo", "over tcp", token=token)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "over tcp\n"
    r = cli("ps", "-a", "--format", "{{.Names}}", token=token)
    assert name in r.stdout.split()


def test_tcp_without_or_with_a_bad_token_is_401(live_stack, cli, token):
    status, headers, body = raw_request(live_stack, "GET", "/v1.41/containers/json", tcp=True)
    assert status == 401 and "message" in body
    status, _, body = raw_request(live_stack, "GET", "/v1.41/containers/json", tcp=True,
                                  headers={"Authorization": "Bearer dy_not-a-token"})
    assert status == 401 and "invalid" in body["message"]
    status, _, body = raw_request(live_stack, "GET", "/v1.41/containers/json", tcp=True,
                                  headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and isinstance(body, list)
    # The CLI over TCP without a token fails cleanly, with the server's message.
    r = _cli_without_token(live_stack, "ps")
    assert r.returncode != 0
    assert "authentication required" in r.stderr


def _cli_without_token(live_stack, *args):
    import live

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
    env["DOCKER_CONFIG"] = str(live_stack.tmp / "docker-config")
    return subprocess.run([live.docker_cli_path(), "-H", live_stack.tcp_host, *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _wait_for_log(cli, name: str, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in cli("logs", name).stdout:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never logged {text!r}")


def test_tty_output_is_raw(live_stack, cli, names):
    name = names("tty")
    r = live_stack.docker_cli("run", "-t", "--name", name, IMAGE, "sh", "-c", "echo hi; exit 2",
                              tty=True, timeout=60)
    assert r.returncode == 2
    # The container's PTY turns \n into \r\n; the CLI's own terminal (not raw without -i)
    # adds another \r, as with Docker.
    assert "hi\r\r\n" in r.stdout
    r = cli("logs", name, text=False)  # bytes: text mode would fold \r\n
    assert r.stdout == b"hi\r\n"
    assert _inspect(cli, name)["Config"]["Tty"] is True
