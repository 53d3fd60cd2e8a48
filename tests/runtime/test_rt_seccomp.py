"""Seccomp: Docker's default profile compiled with libseccomp, cached, loaded before execve;
unconfined and custom profiles. Syscalls busybox cannot make (keyctl, init_module, ptrace,
clone3...) are made with ctypes by a process that applies a container's filter and
capabilities exactly as the container's init does (``security.Process``)."""

import ctypes
import errno
import json
import os
import platform

import pytest

from workers.runtime import seccomp, security
from workers.runtime.container import StartError

if platform.machine() != "x86_64":
    pytest.skip("syscall numbers below are x86_64's", allow_module_level=True)

CLONE_NEWUSER = 0x10000000
# name -> (syscall number, arguments); each one harmless where it is allowed
SYSCALLS = {
    "keyctl": (250, (0, -3, 0)),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": (248, (0, 0, 0, 0, 0)),
    "init_module": (175, (0, 0, 0)),
    "finit_module": (313, (-1, 0, 0)),
    "delete_module": (176, (0, 0)),
    "unshare(CLONE_NEWUSER)": (272, (CLONE_NEWUSER,)),
    "ptrace(PTRACE_ATTACH, parent)": (101, (16, os.getpid(), 0, 0)),
    "mount": (165, (0, 0, 0, 0, 0)),
    "reboot": (169, (0xFEE1DEAD, 672274793, 0x7E57, 0)),  # an unknown command
    "kexec_load": (246, (0, 0, 0, 0)),
    "bpf": (321, (0, 0, 0)),
    "open_by_handle_at": (304, (-1, 0, 0)),
    "clone3": (435, (0, 0)),
}


def errnos_under(cfg: dict, cdir: str) -> dict:
    """Fork; the child applies the container's filter and capabilities as root and makes
    each call; -> {name: errno or 0}."""
    seccomp.write_filter(cfg, cdir, cdir)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            process = security.Process(cfg, cdir)
            process.before_user_switch()
            process.apply(0)
            out = {}
            for name, (number, args) in SYSCALLS.items():
                ctypes.set_errno(0)
                ret = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
                out[name] = ctypes.get_errno() if ret < 0 else 0
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_default_profile_blocks_the_dangerous_calls(tmp_path):
    got = errnos_under({}, str(tmp_path))
    want = dict.fromkeys(SYSCALLS, errno.EPERM)
    want["clone3"] = errno.ENOSYS  # so that libc falls back to clone
    assert got == want


def test_unconfined_leaves_it_to_the_capabilities(tmp_path):
    got = errnos_under({"seccomp_profile": "unconfined"}, str(tmp_path))
    assert got["keyctl"] == 0  # only seccomp forbade it
    assert got["ptrace(PTRACE_ATTACH, parent)"] == errno.EPERM  # no CAP_SYS_PTRACE
    assert got["init_module"] in (errno.EPERM, errno.ENOSYS)  # ENOSYS: a kernel without modules
    assert got["clone3"] != errno.ENOSYS


def test_added_capability_opens_its_syscalls(tmp_path):
    got = errnos_under({"cap_add": ["SYS_BOOT"]}, str(tmp_path))
    assert got["reboot"] == errno.EINVAL  # allowed through; the command is unknown
    assert got["mount"] == errno.EPERM


def test_container_is_filtered_and_the_filter_is_cached(run, state_root):
    code, out, err = run(["grep", "^Seccomp", "/proc/self/status"])
    assert code == 0, err
    assert out.split()[:2] == ["Seccomp:", "2"]
    run(["true"])
    assert len(os.listdir(os.path.join(state_root, "seccomp"))) == 1  # compiled once
    code, out, err = run(["grep", "^Seccomp:", "/proc/self/status"],
                         seccomp_profile="unconfined")
    assert out.split() == ["Seccomp:", "0"]
    code, out, err = run(["grep", "^Seccomp:", "/proc/self/status"], privileged=True)
    assert out.split() == ["Seccomp:", "0"]


def test_user_namespace_blocked_by_default_but_not_unconfined(run):
    code, out, err = run(["unshare", "-U", "true"])
    assert code != 0 and "not permitted" in err
    code, out, err = run(["unshare", "-U", "true"], seccomp_profile="unconfined")
    assert code == 0, err


def test_custom_profile(run):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": errno.EACCES}]}
    code, out, err = run(["mkdir", "/tmp/d"], seccomp_profile=json.dumps(profile))
    assert code != 0 and "Permission denied" in err
    code, out, err = run(["mkdir", "/tmp/d"])
    assert code == 0, err


def test_invalid_profile_fails_the_start(rt, make_spec):
    spec = make_spec(["true"], seccomp_profile='{"defaultAction": "SCMP_ACT_NOPE"}')
    rt.create(spec)
    with pytest.raises(StartError, match="unsupported action"):
        rt.start(spec.id)


def test_exec_gets_the_containers_filter_and_caps(rt, make_spec):
    from workers.runtime import execs

    spec = make_spec(["sleep", "30"], cap_drop=["net_raw"])
    rt.create(spec)
    rt.start(spec.id)
    cdir = os.path.join(rt.containers, spec.id)
    for privileged in (False, True):
        code, out, err = execs.run(cdir, ["grep", "^CapBnd\\|^Seccomp:", "/proc/self/status"],
                                   privileged=privileged)
        assert code == 0, err
        status = dict(line.split(":\t") for line in out.decode().splitlines())
        assert status["Seccomp"] == "2"  # the container's profile, also when privileged
        bounding = int(status["CapBnd"], 16)
        if privileged:
            assert bounding & 1 << 21  # CAP_SYS_ADMIN: docker exec --privileged
        else:
            assert bounding == 0xA80405FB  # the default set without NET_RAW
