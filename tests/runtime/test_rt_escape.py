"""Escape attempts from a default container (busybox, root inside): each one must fail."""

import os

import pytest

from workers.runtime import security

ESCAPES = {
    "mount": "mount -t tmpfs none /mnt",
    "remount the root": "mount -o remount,rw /proc/sys",
    "reboot": "reboot -f",
    "load a module": "echo x > /tmp/x.ko; insmod /tmp/x.ko",
    "write /proc/sys": "echo 1 > /proc/sys/kernel/sysrq",
    "write /proc/sysrq-trigger": "echo h > /proc/sysrq-trigger",
    "user namespace": "unshare -U -r true",
    "mount namespace": "unshare -m true",
    "chroot after unshare": "nsenter -t 1 -m -U true",
    "swap": "swapon /dev/zero",
    "mknod a disk": "mknod /tmp/sda b 8 0 && dd if=/tmp/sda of=/dev/null count=1",
    "raw memory": "devmem 0x1000",
    "kernel log": "dmesg",
}


@pytest.mark.parametrize("attempt", sorted(ESCAPES))
def test_escape_fails(run, attempt):
    code, out, err = run(["sh", "-c", ESCAPES[attempt]])
    assert code != 0, f"{attempt} succeeded: {out} {err}"


def test_proc_1_root_is_the_containers_own(run, state_root):
    marker = os.path.join(state_root, "host-secret")
    with open(marker, "w") as f:
        f.write("secret\n")
    code, out, err = run(["sh", "-c", f"cat /proc/1/root{marker}; cat /proc/1/root/etc/hostname;"
                                      " cat /proc/1/cmdline"])
    assert "secret" not in out
    assert "No such file" in err


def test_host_processes_are_invisible(run):
    me = os.getpid()
    code, out, err = run(["sh", "-c", f"ls /proc/{me}/root || echo no-root; kill -0 {me} || "
                                      "echo no-kill; ls -d /proc/[0-9]*"])
    assert code == 0, err
    lines = out.split()
    assert "no-root" in lines and "no-kill" in lines
    pids = [p.rsplit("/", 1)[1] for p in lines if p.startswith("/proc/")]
    assert str(me) not in pids and len(pids) <= 4  # sh, ls and the subshells only


def test_masked_and_read_only_paths(run):
    """Docker's lists, for the paths this kernel has."""
    masked = [p for p in security.MASKED_PATHS if os.path.exists(p)]
    read_only = [p for p in security.READONLY_PATHS if os.path.exists(p)]
    script = "; ".join(f"ls {p} | wc -l" if os.path.isdir(p) else f"wc -c < {p}"
                       for p in masked)
    code, out, err = run(["sh", "-c", script + "; cat /proc/self/mounts"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:len(masked)] == ["0"] * len(masked), dict(zip(masked, lines, strict=False))
    options = {line.split()[1]: line.split()[3].split(",") for line in lines[len(masked):]}
    for path in read_only:
        assert "ro" in options[path], path
    assert "ro" in options["/sys"]


def test_privileged_has_no_masks_and_a_writable_sys(run):
    code, out, err = run(["cat", "/proc/self/mounts"], privileged=True)
    assert code == 0, err
    options = {line.split()[1]: line.split()[3].split(",") for line in out.splitlines()}
    assert "rw" in options["/sys"]
    assert not set(options) & set(security.MASKED_PATHS + security.READONLY_PATHS)


def test_raw_socket_needs_net_raw(run):
    code, out, err = run(["ping", "-c", "1", "-W", "2", "127.0.0.1"])
    assert code == 0, err
    code, out, err = run(["ping", "-c", "1", "-W", "2", "127.0.0.1"], cap_drop=["net_raw"])
    assert code != 0 and "permission denied" in err.lower() + out.lower(), (out, err)
