"""--read-only, --sysctl, --shm-size (real kernel)."""

import pytest

from workers.runtime.spec import SpecError, validate


def test_read_only_root_keeps_dev_proc_and_etc_binds(run):
    script = ("touch /x 2>&1; touch /tmp/x 2>&1; echo ok > /dev/shm/f && cat /dev/shm/f; "
              "echo h > /etc/hosts && echo hosts-ok; grep ' / ' /proc/self/mounts")
    code, out, err = run(["sh", "-c", script], readonly_rootfs=True)
    lines = out.splitlines()
    assert "Read-only file system" in lines[0] and "Read-only file system" in lines[1]
    assert lines[2:4] == ["ok", "hosts-ok"]
    assert " ro," in lines[4]
    code, out, err = run(["touch", "/x"])
    assert code == 0, err


def test_namespaced_sysctls_are_written_before_proc_sys_is_read_only(run):
    code, out, err = run(["sh", "-c", "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward"
                                      " /proc/sys/fs/mqueue/msg_max; sysctl -w kernel.shmmni=9"],
                         sysctls={"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1",
                                  "fs.mqueue.msg_max": "20"})
    assert out.split()[:3] == ["1234", "1", "20"]
    assert code != 0  # /proc/sys stays read-only for the container's own processes
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read().strip() != "1234"  # the node's IPC namespace is untouched


@pytest.mark.parametrize("key", ["kernel.hostname", "vm.swappiness", "kernel.domainname"])
def test_other_sysctls_are_refused(make_spec, key):
    with pytest.raises(SpecError, match="not in a separate kernel namespace"):
        validate(make_spec(["true"], sysctls={key: "1"}))


def test_shm_size(run):
    code, out, err = run(["df", "-k", "/dev/shm"], shm_size=8 << 20)
    assert code == 0, err
    assert out.splitlines()[1].split()[1] == "8192"
    code, out, err = run(["df", "-k", "/dev/shm"])
    assert out.splitlines()[1].split()[1] == "65536"
