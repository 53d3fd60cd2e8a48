"""cgroup limits through the real docker CLI: the seed's --memory 256m, --cpu-shares
1024/512 and --cpus 0.75 (inspect and the cgroup files), Docker's refusals, `docker update`
on a running container, and an OOM kill (State.OOMKilled, exit 137, the oom event)."""

import json
import time

import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"
MiB = 1024 * 1024


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _inspect(cli, name):
    return json.loads(_ok(cli("inspect", name)))[0]


def _cgroup_file(pid, controller, name):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _n, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as g:
                    return g.read().strip()
    pytest.skip(f"no v1 {controller} hierarchy on this host")


def test_seed_memory_and_cpu_shares(cli, names):
    db, wp = names("mariadb"), names("wordpress")
    _ok(cli("run", "-d", "--name", db, "--memory", "256m", "--cpu-shares", "1024", IMAGE,
            "sleep", "60"))
    _ok(cli("run", "-d", "--name", wp, "--cpu-shares", "512", "--cpus", "0.75", IMAGE,
            "sleep", "60"))
    a, b = _inspect(cli, db), _inspect(cli, wp)
    assert a["HostConfig"]["Memory"] == 256 * MiB
    assert a["HostConfig"]["MemorySwap"] == 512 * MiB  # dockerd's default: as much swap again
    assert (a["HostConfig"]["CpuShares"], b["HostConfig"]["CpuShares"]) == (1024, 512)
    assert b["HostConfig"]["NanoCpus"] == 750_000_000
    pa, pb = a["State"]["Pid"], b["State"]["Pid"]
    assert _cgroup_file(pa, "memory", "memory.limit_in_bytes") == str(256 * MiB)
    assert _cgroup_file(pa, "cpu", "cpu.shares") == "1024"
    assert _cgroup_file(pb, "cpu", "cpu.shares") == "512"
    assert _cgroup_file(pb, "cpu", "cpu.cfs_quota_us") == "75000"
    assert _cgroup_file(pb, "cpu", "cpu.cfs_period_us") == "100000"
    assert _ok(cli("inspect", "-f", "{{.HostConfig.NanoCpus}}", wp)).strip() == "750000000"


def test_docker_refusals(cli, names):
    r = cli("create", "--name", names("small"), "--memory", "4m", IMAGE)
    assert r.returncode != 0 and "Minimum memory limit allowed is 6MB" in r.stderr
    r = cli("create", "--name", names("swap"), "--memory", "64m", "--memory-swap", "32m", IMAGE)
    assert r.returncode != 0 and "Minimum memoryswap limit should be larger than memory" \
        in r.stderr
    r = cli("create", "--name", names("cpus"), "--cpus", "64", IMAGE)
    assert r.returncode != 0 and "Range of CPUs is from 0.01 to" in r.stderr
    r = cli("create", "--name", names("both"), "--cpus", "0.5", "--cpu-period", "50000", IMAGE)
    assert r.returncode != 0 and \
        "Conflicting options: Nano CPUs and CPU Period cannot both be set" in r.stderr
    r = cli("create", "--name", names("set"), "--cpuset-cpus", "0-63", IMAGE)
    assert r.returncode != 0 and "Requested CPUs are not available - requested 0-63" in r.stderr


def test_docker_update_running_container(cli, names, live_stack):
    name = names("upd")
    _ok(cli("run", "-d", "--name", name, "--memory", "64m", "--pids-limit", "50", IMAGE,
            "sleep", "60"))
    pid = _inspect(cli, name)["State"]["Pid"]
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    _ok(cli("update", "--memory", "100m", "--pids-limit", "30", "--cpu-shares", "256", name))
    hc = _inspect(cli, name)["HostConfig"]
    assert (hc["Memory"], hc["PidsLimit"], hc["CpuShares"]) == (100 * MiB, 30, 256)
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(100 * MiB)
    assert _cgroup_file(pid, "pids", "pids.max") == "30"
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "256"
    # more memory than the swap limit set at create: Docker's refusal
    r = cli("update", "--memory", "200m", name)
    assert r.returncode != 0 and "Memory limit should be smaller than already set memoryswap" \
        in r.stderr
    status, _h, body = raw_request(live_stack, "POST", f"/containers/{name}/update",
                                   body=json.dumps({"CpuQuota": 50000}),
                                   headers={"Content-Type": "application/json"})
    assert status == 200 and body == {"Warnings": []}
    status, _h, body = raw_request(live_stack, "POST", f"/containers/{name}/update",
                                   body=json.dumps({"NanoCpus": 500_000_000}),
                                   headers={"Content-Type": "application/json"})
    assert status == 409 and "Nano CPUs cannot be updated" in body["message"]
    # a stopped container keeps the values for its next start
    _ok(cli("kill", name))
    _ok(cli("update", "--memory", "80m", name))
    _ok(cli("start", name))
    pid = _inspect(cli, name)["State"]["Pid"]
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(80 * MiB)


def test_oom_kill_is_reported(cli, names):
    name = names("oom")
    since = str(int(time.time()) - 1)
    r = cli("run", "--name", name, "--memory", "16m", "--memory-swap", "16m", IMAGE,
            "tail", "/dev/zero")
    assert r.returncode == 137, r.stderr
    state = _inspect(cli, name)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    events = _ok(cli("events", "--since", since, "--until", str(int(time.time()) + 1),
                     "--filter", f"container={name}", "--format", "{{.Action}}"))
    assert events.split()[-2:] == ["oom", "die"], events
    # a run that is not OOM killed clears it, as in Docker
    _ok(cli("update", "--memory", "64m", "--memory-swap", "64m", name))
    _ok(cli("start", name))
    _ok(cli("kill", name))
    deadline = time.monotonic() + 10
    while _inspect(cli, name)["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _inspect(cli, name)["State"]["OOMKilled"] is False
