"""--device (node made with the node's numbers, cgroup rule set) and --privileged's /dev."""

import os
import stat

import pytest

from workers.runtime import cgroups
from workers.runtime.cgroups import devices
from workers.runtime.container import StartError

V1_DEVICES = cgroups.cgroup_mounts()[1].get("devices")


def test_device_node_is_made_like_the_nodes(run):
    st = os.stat("/dev/zero")
    code, out, err = run(["stat", "-c", "%F %t:%T %a", "/dev/myzero"],
                         devices=[{"path_on_host": "/dev/zero",
                                   "path_in_container": "/dev/myzero", "permissions": "rwm"}])
    assert code == 0, err
    kind, numbers, mode = out.split()[-3:]
    assert "character" in out
    assert numbers == f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x}"
    assert mode == f"{stat.S_IMODE(st.st_mode):o}"


@pytest.mark.skipif(not V1_DEVICES or not os.path.exists("/dev/loop0"),
                    reason="no v1 devices controller or no /dev/loop0 on this host")
def test_cgroup_rule_limits_the_access(run, rt, make_spec, cgroup_parent):
    device = {"path_on_host": "/dev/loop0", "path_in_container": "/dev/roloop",
              "permissions": "r"}  # not among the default rules
    code, out, err = run(["sh", "-c", "cat /dev/roloop > /dev/null && echo read-ok; "
                                      "echo x > /dev/roloop"],
                         devices=[device], cgroup_parent=cgroup_parent)
    assert out.split() == ["read-ok"]
    assert code != 0 and "not permitted" in err  # not ENXIO: the cgroup refused the write
    # a node the container makes itself stays unusable (mknod is allowed, access is not)
    code, out, err = run(["sh", "-c", "mknod /tmp/loop b 7 0 && head -c 1 /tmp/loop"],
                         cgroup_parent=cgroup_parent)
    assert code != 0 and "not permitted" in err
    spec = make_spec(["sleep", "30"], devices=[device], cgroup_parent=cgroup_parent)
    rt.create(spec)
    rt.start(spec.id)
    with open(os.path.join(V1_DEVICES, cgroup_parent, spec.id, "devices.list")) as f:
        rules = f.read().split("\n")
    loop = os.stat("/dev/loop0").st_rdev
    assert f"b {os.major(loop)}:{os.minor(loop)} r" in rules
    assert "c 1:3 rwm" in rules and "a *:* rwm" not in rules


def test_missing_device_fails_the_start(rt, make_spec, cgroup_parent):
    spec = make_spec(["true"], devices=[{"path_on_host": "/dev/dockyard-none",
                                         "path_in_container": "/dev/x", "permissions": "rwm"}],
                     cgroup_parent=cgroup_parent)
    rt.create(spec)
    with pytest.raises(StartError, match="dockyard-none"):
        rt.start(spec.id)


def test_privileged_sees_the_nodes_devices(run, cgroup_parent):
    host = {n for n in os.listdir("/dev") if stat.S_ISBLK(os.lstat("/dev/" + n).st_mode)}
    code, out, err = run(["ls", "/dev"], privileged=True, cgroup_parent=cgroup_parent)
    assert code == 0, err
    assert host <= set(out.split())  # the seed's `--privileged ... ls /dev`
    code, out, err = run(["ls", "/dev"], cgroup_parent=cgroup_parent)
    assert not host & set(out.split())


def test_default_rules():
    assert devices.rules({"privileged": True}) == ["a *:* rwm"]
    assert "c 136:* rwm" in devices.rules({})


def test_device_path_outside_dev(run, rt, make_spec):
    code, out, err = run(["ls", "-l", "/opt/dev/zero"],
                         devices=[{"path_on_host": "/dev/zero", "path_in_container":
                                   "/opt/dev/zero", "permissions": "rwm"}])
    assert code == 0 and out.startswith("c"), err
    spec = make_spec(["true"], devices=[{"path_on_host": "/dev/zero",
                                         "path_in_container": "/bin/sh/zero",
                                         "permissions": "rwm"}])
    rt.create(spec)
    with pytest.raises(StartError, match="is not a directory"):
        rt.start(spec.id)


V2_MOUNTS = cgroups.cgroup_mounts()[0]


@pytest.mark.skipif(not V2_MOUNTS or not os.path.exists("/dev/loop1"),
                    reason="no cgroup2 mount or no /dev/loop1 on this host")
def test_v2_bpf_program_enforces_the_rules(cgroup_parent):
    """The v2 path on this host's (controller-less) cgroup2 mount: BPF device programs work on
    any cgroup2 hierarchy. A child in the cgroup may read /dev/loop0 (rule "r") only."""
    import errno
    import json

    from workers.runtime.cgroups.v2 import V2Manager

    manager = V2Manager(cgroup_parent, "devtest", mount=V2_MOUNTS[0])
    manager.create()
    assert devices.apply(manager, {"devices": [{"path_on_host": "/dev/loop0",
                                                "permissions": "r"}]})
    devices.apply(manager, {"devices": [{"path_on_host": "/dev/loop0",
                                         "permissions": "r"}]})  # a restart: replaced
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            manager.enter(0)
            out = {}
            for name, path, flags in (("null", "/dev/null", os.O_RDWR),
                                      ("loop0 read", "/dev/loop0", os.O_RDONLY),
                                      ("loop0 write", "/dev/loop0", os.O_WRONLY),
                                      ("loop1 read", "/dev/loop1", os.O_RDONLY)):
                try:
                    os.close(os.open(path, flags))
                    out[name] = 0
                except OSError as e:
                    out[name] = e.errno
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 4096)
    os.close(r)
    os.waitpid(pid, 0)
    assert json.loads(data) == {"null": 0, "loop0 read": 0, "loop0 write": errno.EPERM,
                                "loop1 read": errno.EPERM}
