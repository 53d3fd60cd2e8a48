"""States through the Docker API and the real CLI: pause/unpause (409s in Docker's words),
restart, restart policies (bad counts refused, RestartCount in inspect), and `always`
containers that come back after every Dockyard process and shim stopped (a host restart)."""

import json
import os
import signal
import time

import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"


def _until(pred, timeout=60.0, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _inspect(cli, name):
    r = cli("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def _counter_size(live_stack, cid):
    path = os.path.join(live_stack.state_root, "containers", cid, "upper", "counter")
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def test_pause_and_unpause(cli, names, live_stack):
    name = names("pause")
    r = cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
            "while true; do echo x >> /counter; sleep 0.02; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    _until(lambda: _counter_size(live_stack, cid) > 0)

    r = cli("pause", name)
    assert r.returncode == 0 and r.stdout.strip() == name, r.stderr
    info = _inspect(cli, name)
    assert info["State"]["Status"] == "paused" and info["State"]["Paused"]
    assert info["State"]["Running"] and info["State"]["Pid"] > 0
    size = _counter_size(live_stack, cid)
    time.sleep(1.0)
    assert _counter_size(live_stack, cid) == size, "a paused container made progress"
    r = cli("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert r.stdout.strip().endswith("(Paused)")

    r = cli("pause", name)
    assert r.returncode != 0
    assert f"Container {cid} is already paused" in r.stderr

    r = cli("unpause", name)
    assert r.returncode == 0, r.stderr
    assert _inspect(cli, name)["State"]["Status"] == "running"
    _until(lambda: _counter_size(live_stack, cid) > size, timeout=10)

    status, _h, body = raw_request(live_stack, "POST", f"/v1.41/containers/{cid}/unpause")
    assert (status, body) == (409, {"message": f"Container {cid} is not paused"})

    assert cli("stop", "-t", "1", name).returncode == 0
    status, _h, body = raw_request(live_stack, "POST", f"/v1.41/containers/{cid}/pause")
    assert (status, body) == (409, {"message": f"Container {cid} is not running"})
    r = cli("pause", name)
    assert r.returncode != 0 and f"Container {cid} is not running" in r.stderr


def test_stop_a_paused_container(cli, names):
    name = names("pstop")
    assert cli("run", "-d", "--name", name, IMAGE, "sleep", "1000").returncode == 0
    assert cli("pause", name).returncode == 0
    r = cli("stop", "-t", "2", name)
    assert r.returncode == 0, r.stderr
    assert _inspect(cli, name)["State"]["Status"] == "exited"


def test_restart(cli, names, live_stack):
    name = names("restart")
    r = cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
            "cat /proc/uptime >> /runs; exec sleep 1000")
    cid = r.stdout.strip()
    pid1 = _inspect(cli, name)["State"]["Pid"]
    r = cli("restart", "-t", "1", name)
    assert r.returncode == 0 and r.stdout.strip() == name, r.stderr
    info = _inspect(cli, name)
    assert info["State"]["Status"] == "running" and info["State"]["Pid"] != pid1
    runs = os.path.join(live_stack.state_root, "containers", cid, "upper", "runs")
    _until(lambda: os.path.exists(runs) and len(open(runs).read().splitlines()) == 2)
    # a stopped container is just started
    assert cli("stop", "-t", "1", name).returncode == 0
    assert cli("restart", name).returncode == 0
    assert _inspect(cli, name)["State"]["Status"] == "running"


@pytest.mark.parametrize("policy,message", [
    ("on-failure:-1", "maximum retry count cannot be negative"),
    ("always:3", "maximum retry count cannot be used with restart policy 'always'"),
    ("sometimes", "invalid restart policy"),
])
def test_bad_restart_policies_change_nothing(cli, names, docker_client, policy, message):
    name = names("badpol")
    r = cli("run", "-d", "--name", name, "--restart", policy, IMAGE, "true")
    assert r.returncode != 0
    assert message in r.stderr
    assert cli("inspect", name).returncode != 0  # nothing was created


@pytest.mark.parametrize("policy,message", [
    ({"Name": "on-failure", "MaximumRetryCount": -1}, "maximum retry count cannot be negative"),
    ({"Name": "always", "MaximumRetryCount": 3},
     "maximum retry count cannot be used with restart policy 'always'"),
])
def test_bad_restart_policies_via_the_api(live_stack, names, policy, message):
    name = names("badapi")
    status, _h, body = raw_request(
        live_stack, "POST", f"/v1.41/containers/create?name={name}",
        body=json.dumps({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"RestartPolicy": policy}}),
        headers={"Content-Type": "application/json"})
    assert (status, body) == (400, {"message": message})
    status, _h, _b = raw_request(live_stack, "GET", f"/v1.41/containers/{name}/json")
    assert status == 404


def test_on_failure_n_and_restart_count(cli, names):
    name = names("onfail")
    r = cli("run", "-d", "--name", name, "--restart", "on-failure:2", IMAGE, "sh", "-c", "exit 3")
    assert r.returncode == 0, r.stderr

    def done():
        info = _inspect(cli, name)
        return info if info["State"]["Status"] == "exited" and info["RestartCount"] == 2 else None

    info = _until(done, timeout=60)
    assert info["State"]["ExitCode"] == 3
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    time.sleep(1.5)
    assert _inspect(cli, name)["RestartCount"] == 2


def test_a_manual_stop_is_not_undone(cli, names, live_stack):
    name = names("always")
    r = cli("run", "-d", "--name", name, "--restart", "always", IMAGE, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    pid = _inspect(cli, name)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)  # dies on its own: the shim restarts it

    def restarted():
        info = _inspect(cli, name)
        return info if info["State"]["Status"] == "running" and info["RestartCount"] == 1 else None

    _until(restarted, timeout=30)
    assert cli("stop", "-t", "1", name).returncode == 0
    time.sleep(2.5)  # longer than the next back-off
    info = _inspect(cli, name)
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == 1


def _shim_pids(live_stack):
    pids = []
    root = os.path.join(live_stack.state_root, "containers")
    for cid in os.listdir(root):
        try:
            with open(os.path.join(root, cid, "state.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if st.get("status") in ("running", "paused", "restarting") and st.get("shim_pid"):
            pids.append((st["shim_pid"], st.get("pid") or 0))
    return pids


def test_always_containers_come_back_after_a_host_restart(cli, names, live_stack):
    always, stopped_us, plain = names("hr-always"), names("hr-unless"), names("hr-no")
    assert cli("run", "-d", "--name", always, "--restart", "always", IMAGE,
               "sleep", "1000").returncode == 0
    assert cli("run", "-d", "--name", stopped_us, "--restart", "unless-stopped", IMAGE,
               "sleep", "1000").returncode == 0
    assert cli("run", "-d", "--name", plain, IMAGE, "sleep", "1000").returncode == 0
    assert cli("stop", "-t", "1", stopped_us).returncode == 0
    before = _inspect(cli, always)["State"]["Pid"]

    # a host restart: every Dockyard process and every shim (and container) gone
    live_stack.stop_worker()
    for shim_pid, pid in _shim_pids(live_stack):
        for p in (shim_pid, pid):
            if p:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    time.sleep(0.5)
    live_stack.start_worker()

    info = _until(lambda: (i := _inspect(cli, always))["State"]["Status"] == "running" and i,
                  timeout=60)
    assert info["State"]["Pid"] != before
    assert _inspect(cli, stopped_us)["State"]["Status"] == "exited"  # stopped by hand
    assert _until(lambda: _inspect(cli, plain)["State"]["Status"] == "exited", timeout=30)
