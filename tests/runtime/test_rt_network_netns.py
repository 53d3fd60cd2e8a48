"""ContainerSpec.netns on the real kernel: "" a private netns with only lo (--network
none), "host" the node's, a netns file joined instead of a new netns (also by two
containers at once, as --network container:<id>), with the shim back in its own netns
afterwards; with a user namespace the netns (owned by the node's user namespace) forbids
a sysfs mount, so /sys is the node's bound read-only; a missing file is a clear error."""

import os
import secrets
import subprocess

import pytest

from tests.runtime.netkit import lab  # noqa: F401 (fixture)
from workers.runtime.container import Runtime
from workers.runtime.spec import SpecError, validate, validate_netns

DEAD_REDIS = "redis://127.0.0.1:1/0"


def own_netns() -> str:
    return os.readlink("/proc/self/ns/net")


@pytest.mark.parametrize("value", ["", "host", "/run/dockyard/netns/" + "a" * 64])
def test_valid_netns_values(value, make_spec):
    validate_netns(value)
    validate(make_spec(["true"], netns=value))


@pytest.mark.parametrize("value", ["none", "netns/x", "/a/../b", "/a//b", "/a\x00", 3])
def test_invalid_netns_values(value):
    with pytest.raises(SpecError):
        validate_netns(value)


def test_no_net_sysctls_in_the_nodes_netns(make_spec):
    spec = make_spec(["true"], netns="host", sysctls={"net.ipv4.ip_forward": "0"})
    with pytest.raises(SpecError, match='sysctl "net.ipv4.ip_forward" not allowed in host '
                       "network namespace"):
        validate(spec)
    spec.netns = ""
    validate(spec)


def test_none_is_a_private_netns_with_only_lo(run):
    code, out, err = run(["sh", "-c", "ip -o link; readlink /proc/self/ns/net"])
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("1: lo: <LOOPBACK,UP,LOWER_UP>")
    assert lines[1] != own_netns()


def test_host_is_the_nodes_netns(run):
    code, out, err = run(["readlink", "/proc/self/ns/net"], netns="host")
    assert code == 0, err
    assert out.strip() == own_netns()


def test_two_containers_share_one_netns_file(rt, lab, make_spec, read_log):  # noqa: F811
    net = lab.network()
    first = make_spec(["sh", "-c", "echo shared | nc -l -p 7000; sleep 30"])
    path = lab.mgr.setup_container(first.id, [lab.endpoint(net, 2)], [])
    first.netns = second_netns = path
    rt.create(first)
    rt.start(first.id)
    inode = os.readlink(f"/proc/{rt.state(first.id).pid}/ns/net")
    # the shim (launcher: it cloned PID 1 itself) is back in the node's netns
    assert os.readlink(f"/proc/{rt.state(first.id).shim_pid}/ns/net") == own_netns()
    assert inode != own_netns()

    second = make_spec(["sh", "-c", "readlink /proc/self/ns/net; "
                        "for i in $(seq 50); do nc 127.0.0.1 7000 && break; sleep 0.1; done"],
                       netns=second_netns)
    rt.create(second)
    rt.start(second.id)
    assert rt.wait(second.id, 20) == 0
    out, err = read_log(rt, second.id)
    assert out.splitlines() == [inode, "shared"], err


def test_a_missing_netns_file_is_a_clear_error(rt, make_spec, state_root):
    missing = os.path.join(state_root, "netns", "f" * 64)
    spec = make_spec(["true"], netns=missing)
    rt.create(spec)
    with pytest.raises(Exception, match=f"cannot join the network namespace {missing}"):
        rt.start(spec.id)


@pytest.fixture(params=["launcher", "direct"])
def urt(request, state_root, cgroup_parent):
    rt = Runtime(state_root, node="t" + secrets.token_hex(4), redis_url=DEAD_REDIS,
                 launcher=request.param == "launcher", cgroup_parent=cgroup_parent,
                 userns_remap="default")
    yield rt
    for cid in rt.list_ids():
        rt.remove(cid, force=True)


def test_a_netns_file_with_a_user_namespace(urt, lab, make_spec, read_log,  # noqa: F811
                                           tmp_path):
    net = lab.network()
    ep, peer = lab.endpoint(net, 4), lab.endpoint(net, 5)
    (tmp_path / "index.html").write_text("from-the-peer\n")
    peer_ns = lab.mgr.setup_container("5" * 64, [peer], [])
    server = subprocess.Popen(["nsenter", f"--net={peer_ns}", "busybox", "httpd", "-f",
                               "-p", "80", "-h", str(tmp_path)])
    try:
        spec = make_spec(["sh", "-c", "cat /proc/self/uid_map; ip -f inet -4 -o addr; "
                          "ls /sys/kernel >/dev/null && echo sys-ok; "
                          "grep ' /sys ' /proc/mounts; "
                          f"for i in $(seq 50); do timeout 2 wget -q -O - http://{peer.ip}/ "
                          "&& break; sleep 0.1; done"])
        urt.create(spec)  # the runtime fills in the id maps
        spec = urt.spec(spec.id)
        assert spec.uid_map
        urt.remove(spec.id)
        spec.netns = lab.mgr.setup_container(spec.id, [ep], [])
        urt.create(spec)
        urt.start(spec.id)
        code = urt.wait(spec.id, 20)
    finally:
        server.kill()
        server.wait()
    out, err = read_log(urt, spec.id)
    assert code == 0, (out, err)
    assert out.startswith("         0     100000      65536")
    assert f"eth0    inet {ep.ip}/24" in out
    assert "sysfs /sys sysfs ro," in out  # the node's, bound read-only
    for word in ("sys-ok", "from-the-peer"):
        assert word in out, (out, err)
