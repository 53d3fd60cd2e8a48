"""ctypes wrappers around the Linux syscalls the runtime needs.

Every wrapper raises ``OSError(errno, "<call>(<path>): <strerror>")`` on failure.
Imported by the runtime and by the shim's forked children only (never by the shim's
long-lived parent, to keep it small).
"""

from __future__ import annotations

import ctypes
import os

SIGCHLD = 17
CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38

SYS_CLONE = 56  # x86_64
SYS_PIVOT_ROOT = 155
SYS_SETNS = 308

_libc = ctypes.CDLL(None, use_errno=True)

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.mknod.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def _b(value: str | bytes | None) -> bytes | None:
    if value is None:
        return None
    return os.fsencode(value)


def _check(ret: int, call: str, path: str | bytes | None = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        what = f"{call}({os.fsdecode(path)})" if path is not None else call
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns(fd {fd})")


def pivot_root(new_root: str, put_old: str) -> None:
    ret = _libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), ctypes.c_char_p(_b(new_root)),
                        ctypes.c_char_p(_b(put_old)))
    _check(ret, "pivot_root", new_root)


def clone(flags: int) -> int:
    """fork(2) with extra ``flags`` (namespaces, CLONE_PARENT), without a new stack: like
    ``os.fork()`` but without Python's at-fork bookkeeping, so only for a single-threaded
    process whose child soon execs or exits. Returns 0 in the child."""
    ret = _libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(flags | SIGCHLD),
                        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0),
                        ctypes.c_ulong(0))
    return _check(ret, f"clone({flags:#x})")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)


def mknod(path: str, mode: int, major: int = 0, minor: int = 0) -> None:
    _check(_libc.mknod(_b(path), mode, os.makedev(major, minor)), "mknod", path)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    out = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(out), 0, 0, 0),
           "prctl(PR_GET_CHILD_SUBREAPER)")
    return bool(out.value)


def mountpoints() -> list[str]:
    """Mount points of the calling process's mount namespace (decoded, in order)."""
    result = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            field = line.split(b" ")[4]
            result.append(_unescape(field.decode("utf-8", "surrogateescape")))
    return result


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace."""
    path = os.path.realpath(path).rstrip("/") or "/"
    prefix = path + "/"
    return [m for m in mountpoints() if m == path or m.startswith(prefix)]
