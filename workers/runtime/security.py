"""What a container process may do: capabilities, no_new_privs, seccomp, devices, read-only
and masked paths, sysctls (the Resources and security issue).

Runs in the container's init (C2) and in ``docker exec``'s E2, so it imports only ``os``
and the ctypes wrappers (the shim launcher preloads it). The order in C2:

- ``Process(cfg, cdir)`` before the root is set up: reads the compiled seccomp filter
  (``<container dir>/seccomp.bpf``, written by ``Runtime.start`` through
  ``workers.runtime.seccomp``) while the node's files are still visible;
- ``make_devices`` while /dev is set up (the node's /dev is still visible);
- ``harden_rootfs`` right after pivot_root: sysctls first, then /proc and /sys read-only
  and masked paths (Docker's lists), then a read-only root;
- ``Process.before_user_switch`` (bounding set, keep-caps) before setuid and
  ``Process.apply`` (seccomp, the final capability sets, ambient, no_new_privs) last.

Capabilities follow Docker 20.10.14+ (after CVE-2022-24769): the container's set goes to
the bounding, effective and permitted sets of root; the inheritable and ambient sets stay
empty; a non-root user has empty effective and permitted sets.
"""

from __future__ import annotations

import ctypes
import os
import stat

from . import linux as L

CAP_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE")
# Docker's default set (moby oci/caps/defaults.go)
DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
# Docker's defaults (moby oci/defaults.go); privileged containers get neither
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
SECCOMP_FILTER = "seccomp.bpf"  # in the container's directory

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_V3 = 0x20080522
NSX = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC


class SecurityError(Exception):
    """A security setting that cannot be applied (a user-facing message)."""


def _read(path: str) -> bytes:
    """Plain os.read (no io stack): these run on the container's start path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _cap_last_cap() -> int:
    try:
        return min(int(_read("/proc/sys/kernel/cap_last_cap")), len(CAP_NAMES) - 1)
    except (OSError, ValueError):
        return len(CAP_NAMES) - 1


CAP_LAST_CAP = _cap_last_cap()  # read once (the launcher preloads this module)


def normalize_cap(name: str) -> str:
    """'net_raw', 'CAP_NET_RAW', 'Net_Raw' -> 'CAP_NET_RAW'; 'all' -> 'ALL'. ValueError
    for an unknown name (Docker's words)."""
    upper = name.strip().upper() if isinstance(name, str) else ""
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAP_NAMES[:CAP_LAST_CAP + 1]:
        raise ValueError(f'unknown capability: "{full}"')
    return full


def container_caps(cfg: dict) -> list[str]:
    """The container's capability set (names), as Docker's TweakCapabilities makes it:
    all with --privileged or --cap-add ALL (minus --cap-drop), only --cap-add with
    --cap-drop ALL, otherwise the default set minus --cap-drop plus --cap-add."""
    known = CAP_NAMES[:CAP_LAST_CAP + 1]
    if cfg.get("privileged"):
        return list(known)
    adds = [normalize_cap(c) for c in cfg.get("cap_add") or ()]
    drops = [normalize_cap(c) for c in cfg.get("cap_drop") or ()]
    if "ALL" in adds:
        return [c for c in known if c not in drops]
    if "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [c for c in DEFAULT_CAPS if c not in drops] + adds
    return [c for c in known if c in caps]


def cap_mask(names) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NAMES.index(name)
    return mask


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def capget() -> tuple[int, int, int]:
    """-> (effective, permitted, inheritable) of the calling thread."""
    data = (_CapData * 2)()
    L._check(L._libc.capget(ctypes.byref(_CapHeader(_CAP_V3, 0)), data), "capget")
    return tuple(getattr(data[0], f) | getattr(data[1], f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = effective >> shift & 0xFFFFFFFF
        data[i].permitted = permitted >> shift & 0xFFFFFFFF
        data[i].inheritable = inheritable >> shift & 0xFFFFFFFF
    L._check(L._libc.capset(ctypes.byref(_CapHeader(_CAP_V3, 0)), data), "capset")


def install_filter(bpf: bytes) -> None:
    """Load a compiled seccomp program (struct sock_filter[]) for this thread."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    L.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def _bounding() -> int:
    for line in _read("/proc/self/status").split(b"\n"):
        if line.startswith(b"CapBnd:"):
            return int(line.split()[1], 16)
    return 0


NODE_BOUNDING = _bounding()  # read once: the launcher preloads this module


class Process:
    """The capability sets, no_new_privs and seccomp filter of the container's process
    (``privileged``: a ``docker exec --privileged``, all capabilities)."""

    def __init__(self, cfg: dict, cdir: str, privileged: bool = False):
        caps = container_caps({**cfg, "privileged": True} if privileged else cfg)
        self.caps = cap_mask(caps) & NODE_BOUNDING  # never more than the node grants us
        self.no_new_privs = bool(cfg.get("no_new_privileges"))
        self.filter = None
        if seccomp_confined(cfg):
            try:
                self.filter = _read(os.path.join(cdir, SECCOMP_FILTER))
            except FileNotFoundError:
                raise SecurityError("seccomp: the container's compiled profile is missing "
                                    "(start it again)") from None

    def before_user_switch(self) -> None:
        """Drop the bounding set to the container's; keep the permitted set across setuid
        (``apply`` needs CAP_SYS_ADMIN to load the filter without no_new_privs)."""
        for cap in range(CAP_LAST_CAP + 1):
            if not self.caps >> cap & 1:
                L.prctl(L.PR_CAPBSET_DROP, cap)
        L.prctl(PR_SET_KEEPCAPS, 1)

    def apply(self, uid: int) -> None:
        """After setuid, right before execve: seccomp (while we may still load it), the
        final sets, ambient cleared, no_new_privs; seccomp last with no_new_privs, like
        runc."""
        _eff, permitted, _inh = capget()
        if self.filter is not None and not self.no_new_privs:
            capset(permitted, permitted, 0)
            install_filter(self.filter)
        final = self.caps if uid == 0 else 0
        capset(final, final, 0)
        L.prctl(PR_SET_KEEPCAPS, 0)
        L.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        if self.no_new_privs:
            L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
            if self.filter is not None:
                install_filter(self.filter)


def seccomp_confined(cfg: dict) -> bool:
    return not cfg.get("privileged") and cfg.get("seccomp_profile") != "unconfined"


# -- sysctls and devices: the checks (ValueError with Docker's and runc's words) ----------
# the sysctls that live in the container's own IPC or network namespace (runc's list)
NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced")
NAMESPACED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


def check_sysctl(key: str, value: str, host_network: bool = False) -> None:
    if not key or any(c in key for c in "/\0\n ") or ".." in key or "\n" in value:
        raise ValueError(f"invalid sysctl {key!r}")
    if key not in NAMESPACED_SYSCTLS and not key.startswith(NAMESPACED_SYSCTL_PREFIXES):
        raise ValueError(f'sysctl "{key}" is not in a separate kernel namespace')
    if host_network and key.startswith("net."):
        raise ValueError(f'sysctl "{key}" not allowed in host network namespace')


def check_device(device: dict) -> None:
    host = device.get("path_on_host")
    inside = device.get("path_in_container") or host
    perms = device.get("permissions", "rwm")
    for path in (host, inside):
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path or (
                "\n" in path) or ".." in path.split("/"):
            raise ValueError(f"{path!r} is not an absolute path")
    if not isinstance(perms, str) or not perms or set(perms) - set("rwm"):
        raise ValueError(f"invalid device mode: {perms}")


# -- devices ---------------------------------------------------------------------------
def _node(path: str) -> os.stat_result:
    st = os.stat(path)  # follows symlinks, like Docker
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise SecurityError(f"error gathering device information while adding custom device "
                            f'"{path}": not a device node')
    return st


def _mknod_like(source: str, st: os.stat_result, target: str) -> None:
    os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)  # --privileged: /dev/<subdir>
    if os.path.lexists(target):
        os.unlink(target)
    try:
        L.mknod(target, st.st_mode, os.major(st.st_rdev), os.minor(st.st_rdev))
    except PermissionError:  # in a user namespace: bind the node's own, as runc does
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        L.mount(source, target, None, L.MS_BIND)
        return
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.chown(target, st.st_uid, st.st_gid)


HOST_DEV_SKIP = ("pts", "shm", "mqueue", "fd", "console", "ptmx")


def make_devices(cfg: dict, rootfs: str, dev: str) -> None:
    """--privileged: every device node of the node's /dev; --device: the asked ones (same
    type, numbers, mode and owner as on the node). Before pivot_root."""
    if cfg.get("privileged"):
        for top, dirs, files in os.walk("/dev"):
            rel = os.path.relpath(top, "/dev")
            dirs[:] = [d for d in dirs if rel != "." or d not in HOST_DEV_SKIP]
            for name in files:
                path = os.path.join(top, name)
                if rel == "." and name in HOST_DEV_SKIP:
                    continue
                st = os.lstat(path)
                target = os.path.normpath(os.path.join(dev, rel, name))
                if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and not (
                        os.path.lexists(target)):
                    _mknod_like(path, st, target)
    for d in cfg.get("devices") or ():
        st = _node(d["path_on_host"])
        inside = d.get("path_in_container") or d["path_on_host"]
        if inside.startswith("/dev/"):
            target = _dir_inside(dev, inside[len("/dev/"):])
        else:
            target = _dir_inside(rootfs, inside)
        _mknod_like(d["path_on_host"], st, target)


def _dir_inside(root: str, rel: str) -> str:
    """``root``/``rel`` with its parent directories made; a symlink on the way is refused (it
    would lead out of the container's root while the node's is still ours)."""
    parts = [p for p in rel.split("/") if p]
    cur = root
    for part in parts[:-1]:
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise SecurityError(f"device path /{rel.strip('/')}: {cur[len(root):]} is not a "
                                "directory")
    target = os.path.join(cur, parts[-1])
    if os.path.isdir(target) and not os.path.islink(target):
        raise SecurityError(f"device path /{rel.strip('/')} is a directory")
    return target


# -- the root filesystem ---------------------------------------------------------------
def write_sysctls(sysctls: dict) -> None:
    for key, value in sorted((sysctls or {}).items()):
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SecurityError(f"sysctl {key!r} is not in this kernel") from None
        try:
            os.write(fd, str(value).encode())
        except OSError as e:
            raise SecurityError(f"sysctl {key}={value}: {e.strerror}") from None
        finally:
            os.close(fd)


def harden_rootfs(cfg: dict) -> None:
    """Right after pivot_root, with every capability: sysctls, then Docker's read-only and
    masked paths (not with --privileged), then the read-only root (--read-only)."""
    write_sysctls(cfg.get("sysctls"))
    if not cfg.get("privileged"):
        for path in READONLY_PATHS:
            if os.path.exists(path):
                L.mount(path, path, None, L.MS_BIND | L.MS_REC)
                L.mount(path, path, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | NSX)
        for path in MASKED_PATHS:
            if os.path.isdir(path):
                L.mount("tmpfs", path, "tmpfs", L.MS_RDONLY | NSX, "size=0")
            elif os.path.exists(path):
                L.mount("/dev/null", path, None, L.MS_BIND)
    if cfg.get("readonly_rootfs"):
        # per mount point: /dev, /proc, /sys, volumes and the /etc binds keep theirs
        L.mount(None, "/", None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY)
