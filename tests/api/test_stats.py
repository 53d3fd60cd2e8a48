"""`docker stats` over the Docker API: the v1.41 JSON (stream=false with a sample taken a
second before, one-shot, the stream of one object a second that ends when the container
stops), zeros for a container that does not run, access by team, the real CLI
(`--no-stream`, `--format`, the live table on a PTY) and docker-py."""

import http.client
import json
import os
import re
import time
from datetime import datetime

import pytest

from workers.runtime import cgroups

from .conftest import UnixHTTPConnection, raw_request

pexpect = pytest.importorskip("pexpect")

IMAGE = "busybox:1.29"
BUSY = ["sh", "-c", "while :; do :; done"]
ZERO_TIME = "0001-01-01T00:00:00Z"
MiB = 1024 * 1024
BLKIO_KEYS = {"io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive"}


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _run_busy(cli, names, live_stack, memory_limit=None):
    """A container spinning on one CPU; ``memory_limit`` written straight into its cgroup
    (setting limits is `docker run --memory`'s business, not this test's)."""
    name = names("stats")
    cid = _ok(cli("run", "-d", "--name", name, IMAGE, *BUSY)).strip()
    if memory_limit:
        manager = cgroups.open_manager(cgroups.parent_name(live_stack.prefix), cid)
        if manager.version == "v1":
            path = os.path.join(manager.paths()["memory"], "memory.limit_in_bytes")
        else:
            path = os.path.join(manager.paths()["unified"], "memory.max")
        with open(path, "w") as f:
            f.write(str(memory_limit))
    return name, cid


def _seconds(stamp):
    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def _cpu_percent(s):
    """The docker CLI's calculateCPUPercentUnix."""
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    system = cpu["system_cpu_usage"] - pre.get("system_cpu_usage", 0)
    used = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    return used / system * cpu["online_cpus"] * 100


def _host_memory():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def test_stats_no_stream_shape(cli, names, live_stack):
    name, cid = _run_busy(cli, names, live_stack, memory_limit=64 * MiB)
    started = time.monotonic()
    status, headers, s = raw_request(live_stack, "GET",
                                     f"/v1.41/containers/{name}/stats?stream=false")
    took = time.monotonic() - started
    assert status == 200, s
    assert headers["Content-Type"] == "application/json"
    assert 0.9 < took < 3.0  # a sample a second before, as dockerd
    assert set(s) == {"read", "preread", "pids_stats", "blkio_stats", "num_procs",
                      "storage_stats", "cpu_stats", "precpu_stats", "memory_stats", "name",
                      "id", "networks"}
    assert s["name"] == f"/{name}" and s["id"] == cid
    assert 0.8 < _seconds(s["read"]) - _seconds(s["preread"]) < 2.5
    assert abs(_seconds(s["read"]) - time.time()) < 5

    cpu = s["cpu_stats"]
    assert cpu["online_cpus"] == os.cpu_count()
    assert cpu["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"] > 0
    usage = cpu["cpu_usage"]
    assert usage["total_usage"] > s["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert usage["usage_in_usermode"] > 0
    assert usage["usage_in_usermode"] + usage["usage_in_kernelmode"] <= usage["total_usage"] * 1.1
    if cgroups.detect()[0] == "v1":
        assert len(usage["percpu_usage"]) == os.cpu_count()
    assert set(cpu["throttling_data"]) == {"periods", "throttled_periods", "throttled_time"}
    assert 20 < _cpu_percent(s) <= os.cpu_count() * 100 + 5  # one busy core (a shared host)

    memory = s["memory_stats"]
    assert 0 < memory["usage"] < 64 * MiB and memory["limit"] == 64 * MiB
    assert memory["max_usage"] >= memory["usage"]
    assert "total_inactive_file" in memory["stats"] or "inactive_file" in memory["stats"]
    assert s["pids_stats"] == {"current": 1}  # `:` is a builtin: the shell alone, no limit
    assert set(s["blkio_stats"]) == BLKIO_KEYS
    assert isinstance(s["blkio_stats"]["io_service_bytes_recursive"], list)
    assert s["blkio_stats"]["io_queue_recursive"] is None
    assert s["num_procs"] == 0 and s["storage_stats"] == {}
    # the container's own network namespace (only its loopback today)
    assert set(s["networks"]["lo"]) == {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                                        "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}


def test_one_shot_paused_and_parameters(cli, names, live_stack):
    name, _cid = _run_busy(cli, names, live_stack)
    started = time.monotonic()
    status, _, s = raw_request(live_stack, "GET",
                               f"/v1.41/containers/{name}/stats?stream=0&one-shot=1")
    assert status == 200 and time.monotonic() - started < 0.9
    assert s["preread"] == ZERO_TIME and s["read"] != ZERO_TIME
    assert s["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert "system_cpu_usage" not in s["precpu_stats"]
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["memory_stats"]["limit"] == _host_memory()  # no limit: the node's memory

    # paused: still numbers (its cgroup is there), but the frozen loop uses no CPU
    _ok(cli("pause", name))
    status, _, s = raw_request(live_stack, "GET", f"/v1.41/containers/{name}/stats?stream=0")
    assert status == 200 and s["read"] != ZERO_TIME and s["pids_stats"]["current"] == 1
    assert _cpu_percent(s) < 5
    _ok(cli("unpause", name))

    status, _, body = raw_request(live_stack, "GET",
                                  f"/v1.41/containers/{name}/stats?one-shot=true")
    assert status == 400 and body["message"] == "cannot have stream=true and one-shot=true"
    status, _, body = raw_request(live_stack, "GET", "/v1.41/containers/nosuchbox/stats")
    assert status == 404 and "No such container: nosuchbox" in body["message"]


def _open_stream(live_stack, path):
    conn = UnixHTTPConnection(live_stack.docker_host.removeprefix("unix://"), timeout=15)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 200
    return conn, resp


def test_stream_one_object_a_second_until_the_container_stops(cli, names, live_stack):
    name, _cid = _run_busy(cli, names, live_stack)
    conn, resp = _open_stream(live_stack, f"/v1.41/containers/{name}/stats")
    try:
        assert resp.getheader("Transfer-Encoding") == "chunked"
        lines, arrived = [], []
        for _ in range(3):
            lines.append(json.loads(resp.readline()))
            arrived.append(time.monotonic())
        first, second, third = lines
        assert first["preread"] == ZERO_TIME
        assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
        assert second["preread"] == first["read"] and third["preread"] == second["read"]
        assert second["precpu_stats"] == first["cpu_stats"]
        assert third["cpu_stats"]["cpu_usage"]["total_usage"] > \
            second["cpu_stats"]["cpu_usage"]["total_usage"]
        assert 0.6 < arrived[2] - arrived[1] < 1.8  # every second, flushed as it goes
        assert _cpu_percent(third) > 20

        _ok(cli("stop", "-t", "0", name))
        deadline = time.monotonic() + 10
        last = third
        while (line := resp.readline()):  # the stream ends once the container stops
            last = json.loads(line)
            assert time.monotonic() < deadline
        assert last["read"] == ZERO_TIME and last["memory_stats"] == {}
    finally:
        conn.close()

    # a client that goes away ends its stream; the server carries on serving
    conn, resp = _open_stream(live_stack, f"/v1.41/containers/{name}/stats")
    assert json.loads(resp.readline())["read"] == ZERO_TIME  # stopped: one zero object
    assert resp.readline() == b""
    conn.close()
    status, _, _ = raw_request(live_stack, "GET", "/v1.41/_ping")
    assert status == 200


def test_a_container_that_does_not_run_gives_zeros(cli, names, live_stack):
    name = names("idle")
    cid = _ok(cli("create", "--name", name, IMAGE, "true")).strip()
    started = time.monotonic()
    status, _, s = raw_request(live_stack, "GET", f"/v1.41/containers/{name}/stats?stream=0")
    assert status == 200 and time.monotonic() - started < 0.9
    assert s["read"] == s["preread"] == ZERO_TIME
    assert s["name"] == f"/{name}" and s["id"] == cid
    assert s["memory_stats"] == {} and s["pids_stats"] == {} and "networks" not in s
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    out = _ok(cli("stats", "--no-stream", "--format",
                  "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", name))
    assert out.split() == [name, "0.00%", "0B", "/", "0B", "0"]


def test_other_teams_cannot_read_stats(cli, names, live_stack):
    name, _cid = _run_busy(cli, names, live_stack)
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership, Team\n"
        "u, _ = get_user_model().objects.get_or_create(username='statsother')\n"
        "t, _ = Team.objects.get_or_create(name='statsteam')\n"
        "Membership.objects.get_or_create(user=u, team=t, role=Membership.Role.VIEWER)\n"))
    token = live_stack.create_token("statsother")
    host, port = live_stack.tcp_host.removeprefix("tcp://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", f"/v1.41/containers/{name}/stats?stream=0&one-shot=1",
                     headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert resp.status == 404, resp.read()
    finally:
        conn.close()


def test_docker_cli_no_stream_and_format(cli, names, live_stack):
    name, cid = _run_busy(cli, names, live_stack, memory_limit=64 * MiB)
    lines = _ok(cli("stats", "--no-stream", name)).splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == [
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O",
        "PIDS"]
    row = re.split(r"\s{2,}", lines[1].strip())
    assert row[0] == cid[:12] and row[1] == name
    assert float(row[2].rstrip("%")) > 20
    assert re.fullmatch(r"[\d.]+(B|KiB|MiB) / 64MiB", row[3]), row[3]
    assert row[7] == "1"

    mem = _ok(cli("stats", "--no-stream", "--format", "{{.MemUsage}}", name)).strip()
    assert re.fullmatch(r"[\d.]+(B|KiB|MiB) / 64MiB", mem), mem
    out = _ok(cli("stats", "--no-stream", "--format", "{{.Name}} {{.NetIO}} {{.PIDs}}", name))
    assert re.fullmatch(rf"{name} [\d.]+k?B / [\d.]+k?B 1\n", out), out
    # no names: every running container
    everyone = _ok(cli("stats", "--no-stream", "--format", "{{.Name}}")).split()
    assert name in everyone


def test_docker_cli_streams_on_a_terminal(cli, names, live_stack):
    from tests.live import docker_cli_path

    name, _cid = _run_busy(cli, names, live_stack)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
    env.update(DOCKER_CONFIG=str(live_stack.tmp / "docker-config"),
               DOCKER_HOST=live_stack.docker_host, TERM="xterm")
    child = pexpect.spawn(docker_cli_path(), ["stats", name], env=env, dimensions=(20, 140),
                          timeout=20)
    try:
        percents = []
        deadline = time.monotonic() + 15
        # the CLI redraws its table twice a second; a new object arrives every second (the
        # first one's CPU % is low: it has no earlier sample, as with dockerd)
        while len(set(percents)) < 3 or max(percents) <= 20:
            assert time.monotonic() < deadline, percents
            child.expect(rf"{name}\s+([\d.]+)%")
            percents.append(float(child.match.group(1)))
        # no Ctrl-C: docker CLI 28 does not exit on it for named containers (docker/cli#6090)
    finally:
        child.close(force=True)


def test_docker_py_stats(docker_client, cli, names, live_stack):
    name, cid = _run_busy(cli, names, live_stack)
    container = docker_client.containers.get(name)
    s = container.stats(stream=False)
    assert s["id"] == cid and s["name"] == f"/{name}"
    assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["memory_stats"]["usage"] > 0
    stream = container.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    assert second["preread"] == first["read"]
    stream.close()
