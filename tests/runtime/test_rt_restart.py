"""Restart policies, applied by the shim on the real kernel: back-off timing, on-failure:N,
manual stops that the policy never undoes, the same root kept across restarts."""

import json
import os
import time

import pytest

from workers.runtime.container import Conflict
from workers.runtime.spec import SpecError, validate


@pytest.fixture(params=["launcher", "direct"])
def rrt(request, redis_server, cgroup_parent, runtime_factory):
    # cgroup_parent first: its teardown (removing the cgroups) runs after the runtime's
    rt = runtime_factory(redis_url=redis_server, launcher=request.param == "launcher",
                         cgroup_parent=cgroup_parent)
    if request.param == "launcher":
        assert rt.start_launcher()
    return rt


def _wait_for(pred, timeout=30.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def _runs(rt, cid):
    """The host uptime at each start of PID 1, which appends it to /runs in its root."""
    try:
        with open(os.path.join(rt.containers, cid, "upper", "runs")) as f:
            return [float(line.split()[0]) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _events(rt, cid):
    import redis

    r = redis.Redis.from_url(rt.redis_url)
    try:
        entries = r.xrange(f"dockyard:events:{rt.node}")
    finally:
        r.close()
    out = []
    for _id, fields in entries:
        f = {k.decode(): v.decode() for k, v in fields.items()}
        if f["container"] == cid:
            out.append(f)
    return out


RECORD = "cat /proc/uptime >> /runs; "


def test_on_failure_backs_off_and_stops_after_n(rrt, make_spec):
    spec = make_spec(["sh", "-c", RECORD + "exit 3"], restart_policy="on-failure",
                     restart_max_retries=3)
    rrt.create(spec)
    rrt.start(spec.id)
    _wait_for(lambda: rrt.state(spec.id).status == "exited", timeout=40)
    st = rrt.state(spec.id)
    assert (st.exit_code, st.restart_count) == (3, 3)
    runs = _runs(rrt, spec.id)
    assert len(runs) == 4, runs  # the first run and 3 restarts, all on the same root
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    # back-off 1 s, 2 s, 4 s (plus the time a start takes on a busy machine)
    for gap, want in zip(gaps, (1, 2, 4), strict=True):
        assert want - 0.05 <= gap <= want + 1.5, gaps
    assert gaps[0] < gaps[1] < gaps[2]
    def finished():
        events = _events(rrt, spec.id)
        return events if events and events[-1]["status"] == "exited" else None

    statuses = [e["status"] for e in _wait_for(finished)]
    assert statuses == ["running", "restarting", "running", "restarting", "running",
                        "restarting", "running", "exited"]
    counts = [int(e["restart_count"]) for e in _events(rrt, spec.id)]
    assert counts == [0, 1, 1, 2, 2, 3, 3, 3]


def test_on_failure_does_not_restart_a_success(rrt, make_spec):
    spec = make_spec(["sh", "-c", RECORD + "exit 0"], restart_policy="on-failure",
                     restart_backoff_base=0.2)
    rrt.create(spec)
    rrt.start(spec.id)
    assert rrt.wait(spec.id, 10) == 0
    time.sleep(0.5)
    st = rrt.state(spec.id)
    assert (st.status, st.restart_count, len(_runs(rrt, spec.id))) == ("exited", 0, 1)


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_a_manual_stop_is_not_undone(rrt, make_spec, policy):
    spec = make_spec(["sh", "-c", RECORD + "exec sleep 1000"], restart_policy=policy,
                     restart_backoff_base=0.2)
    rrt.create(spec)
    first = rrt.start(spec.id)
    _wait_for(lambda: len(_runs(rrt, spec.id)) == 1)
    os.kill(first, 9)  # dies on its own (not through Dockyard): the policy restarts it
    st = _wait_for(lambda: (s := rrt.state(spec.id)).status == "running" and s.pid != first
                   and s)
    assert st.restart_count == 1
    _wait_for(lambda: len(_runs(rrt, spec.id)) == 2)
    st = rrt.stop(spec.id, timeout=5)
    assert st.status == "exited" and st.manual_stop
    time.sleep(1.0)  # several back-offs
    st = rrt.state(spec.id)
    assert (st.status, st.restart_count, len(_runs(rrt, spec.id))) == ("exited", 1, 2)
    # a new start forgets the manual stop
    rrt.start(spec.id)
    st = rrt.state(spec.id)
    assert st.status == "running" and not st.manual_stop


def test_a_kill_via_dockyard_is_not_undone(rrt, make_spec):
    spec = make_spec(["sleep", "1000"], restart_policy="always", restart_backoff_base=0.2)
    rrt.create(spec)
    rrt.start(spec.id)
    rrt.kill(spec.id, "SIGKILL")
    assert rrt.wait(spec.id, 10) == 137
    time.sleep(0.6)
    assert rrt.state(spec.id).status == "exited"


def test_stop_while_restarting(rrt, make_spec):
    spec = make_spec(["sh", "-c", "exit 1"], restart_policy="always", restart_backoff_base=30)
    rrt.create(spec)
    rrt.start(spec.id)
    _wait_for(lambda: rrt.state(spec.id).status == "restarting")
    with pytest.raises(Conflict, match="is restarting"):
        rrt.pause(spec.id)
    began = time.monotonic()
    st = rrt.stop(spec.id, timeout=5)
    assert time.monotonic() - began < 5  # not after the 30 s back-off
    assert (st.status, st.exit_code, st.restart_count) == ("exited", 1, 1)


def test_backoff_cap(rrt, make_spec):
    spec = make_spec(["sh", "-c", RECORD + "exit 1"], restart_policy="on-failure",
                     restart_max_retries=4, restart_backoff_base=0.2, restart_backoff_cap=0.4)
    rrt.create(spec)
    rrt.start(spec.id)
    _wait_for(lambda: rrt.state(spec.id).status == "exited")
    runs = _runs(rrt, spec.id)
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    assert len(gaps) == 4
    for gap, want in zip(gaps, (0.2, 0.4, 0.4, 0.4), strict=True):
        assert want - 0.05 <= gap <= want + 1.0, gaps


def test_restart_with_a_tty(rrt, make_spec):
    spec = make_spec(["sh", "-c", "tty; exit 2"], tty=True, restart_policy="on-failure",
                     restart_max_retries=1, restart_backoff_base=0.2)
    rrt.create(spec)
    rrt.start(spec.id)
    _wait_for(lambda: rrt.state(spec.id).status == "exited")
    with open(rrt.logs_path(spec.id)) as f:
        lines = [json.loads(line)["log"] for line in f]
    assert sum("/dev/pts/0" in line for line in lines) == 2


def test_restart_policy_validation(make_spec):
    for kw, message in (
        ({"restart_policy": "on-failure", "restart_max_retries": -1},
         "maximum retry count cannot be negative"),
        ({"restart_policy": "always", "restart_max_retries": 3},
         "maximum retry count cannot be used with restart policy 'always'"),
        ({"restart_policy": "sometimes"}, "invalid restart policy 'sometimes'"),
        ({"restart_backoff_base": 0}, "restart_backoff_base"),
        ({"restart_backoff_base": 5, "restart_backoff_cap": 1}, "restart_backoff_cap"),
        ({"cgroup_parent": "../x"}, "invalid cgroup parent"),
    ):
        with pytest.raises(SpecError, match=message):
            validate(make_spec(["true"], **kw))
