"""Seccomp profiles (Docker's JSON format) compiled to BPF with libseccomp, once per profile.

The default is Docker's own default profile (moby's profiles/seccomp/default.json, Apache
License 2.0), which scripts/setup.sh takes from Debian's golang-github-docker-docker-dev
package into ``DEFAULT_PROFILE``.

Compiling Docker's profile costs milliseconds, so ``write_filter`` (called by
``Runtime.start`` on the node, outside the container) keeps each compiled program in
``<state root>/seccomp/<sha256>.bpf``, keyed by the profile, the container's capabilities
(rules are included or excluded by them), the architecture and the kernel, and hard-links
it to ``<container dir>/seccomp.bpf``; the container's init and ``docker exec`` read that
file before they leave the node's mount namespace and load it with
``prctl(PR_SET_SECCOMP)`` (``security.install_filter``): no libseccomp in the container's
start path.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import platform

from . import security

DEFAULT_PROFILE = "/usr/local/share/dockyard/docker-default-seccomp.json"
CACHE_DIR = "seccomp"

ACT_KILL_THREAD = 0x00000000
ACT_KILL_PROCESS = 0x80000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
       "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
EPERM = 1
SCMP_FLTATR_CTL_OPTIMIZE = 8
# Go's GOARCH names, which the profile's includes/excludes use
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm",
          "s390x": "s390x", "ppc64le": "ppc64le", "riscv64": "riscv64"}


class ProfileError(ValueError):
    """The profile is not a valid seccomp profile (a user-facing message)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_lib = None


def _libseccomp():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib = lib
    return _lib


def parse(text: str) -> dict:
    """A profile's JSON -> dict, with its shape checked (ProfileError)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise ProfileError(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise ProfileError("Decoding seccomp profile failed: defaultAction is required")
    action(profile["defaultAction"], None)
    for rule in profile.get("syscalls") or []:
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not isinstance(rule, dict) or not names or not isinstance(rule.get("action"), str):
            raise ProfileError("Decoding seccomp profile failed: each syscall rule needs names "
                               "and an action")
        action(rule["action"], None)
        for arg in rule.get("args") or []:
            if arg.get("op") not in OPS or not 0 <= int(arg.get("index", -1)) <= 5:
                raise ProfileError(f"seccomp: invalid argument condition {arg!r}")
    return profile


def action(name: str, errno: int | None) -> int:
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | ((EPERM if errno is None else int(errno)) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE | ((EPERM if errno is None else int(errno)) & 0xFFFF)
    actions = {"SCMP_ACT_KILL": ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
               "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS, "SCMP_ACT_TRAP": ACT_TRAP,
               "SCMP_ACT_LOG": ACT_LOG, "SCMP_ACT_ALLOW": ACT_ALLOW}
    if name not in actions:
        raise ProfileError(f"seccomp: unsupported action {name!r}")
    return actions[name]


def _kernel_at_least(version: str) -> bool:
    def key(text):
        return tuple(int(p) for p in text.split("-")[0].split(".")[:2] if p.isdigit())
    return key(platform.release()) >= key(version)


def _applies(rule: dict, caps: set[str], arch: str) -> bool:
    """Docker's includes (all listed caps, one of the arches, minKernel) and excludes (any
    listed cap or arch)."""
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("minKernel") and not _kernel_at_least(inc["minKernel"]):
        return False
    if arch in (exc.get("arches") or ()) or caps & set(exc.get("caps") or ()):
        return False
    return True


def _arches(lib, profile: dict) -> list[int]:
    """The native architecture's sub-architectures of the profile's archMap."""
    native = lib.seccomp_arch_native()
    out = []
    for entry in profile.get("archMap") or []:
        token = lib.seccomp_arch_resolve_name(
            entry["architecture"].lower().removeprefix("scmp_arch_").encode())
        if token == native:
            for sub in entry.get("subArchitectures") or []:
                out.append(lib.seccomp_arch_resolve_name(
                    sub.lower().removeprefix("scmp_arch_").encode()))
    for name in profile.get("architectures") or []:  # the older flat list
        out.append(lib.seccomp_arch_resolve_name(name.lower().removeprefix("scmp_arch_")
                                                 .encode()))
    return [a for a in out if a and a != native]


def compile_bpf(profile: dict, caps: list[str]) -> bytes:
    """The BPF program (struct sock_filter[]) of ``profile`` for a container with ``caps``
    on this node, as runc builds it."""
    lib = _libseccomp()
    arch = GOARCH.get(platform.machine(), platform.machine())
    default = action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise ProfileError("seccomp: libseccomp could not make a filter")
    try:
        # a binary tree of syscall numbers: same decisions, and measured here the kernel loads
        # it ~30% faster than the linear list (libseccomp < 2.5 ignores it)
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for token in _arches(lib, profile):
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -17:  # EEXIST
                raise ProfileError(f"seccomp: cannot add architecture {token:#x}: "
                                   f"{os.strerror(-ret)}")
        capset = set(caps)
        for rule in profile.get("syscalls") or []:
            if not _applies(rule, capset, arch):
                continue
            act = action(rule["action"], rule.get("errnoRet"))
            if act == default:
                continue  # libseccomp refuses a rule that does what the default does
            for name in rule.get("names") or [rule.get("name")]:
                _add_rule(lib, ctx, act, name, rule.get("args") or [])
        fd = os.memfd_create("seccomp-bpf")
        try:
            ret = lib.seccomp_export_bpf(ctx, fd)
            if ret < 0:
                raise ProfileError(f"seccomp: export failed: {os.strerror(-ret)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _add_rule(lib, ctx, act: int, name: str, args: list[dict]) -> None:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number == -1:  # __NR_SCMP_ERROR: a name this libseccomp does not know
        return
    conds = [_ArgCmp(int(a["index"]), OPS[a["op"]], int(a.get("value") or 0) & (2**64 - 1),
                     int(a.get("valueTwo") or 0) & (2**64 - 1)) for a in args]
    # runc: conditions on one argument twice cannot be ANDed in one rule: one rule each
    if len({c.arg for c in conds}) < len(conds):
        groups = [[c] for c in conds]
    else:
        groups = [conds]
    for group in groups:
        array = (_ArgCmp * len(group))(*group)
        ret = lib.seccomp_rule_add_array(ctx, act, number, len(group), array)
        if ret < 0:
            raise ProfileError(f"seccomp: cannot add the rule for {name}: {os.strerror(-ret)}")


@functools.cache
def _default_profile() -> str:
    try:
        with open(DEFAULT_PROFILE, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ProfileError(f"seccomp: Docker's default profile {DEFAULT_PROFILE} is missing "
                           "(scripts/setup.sh installs it)") from None


def profile_text(cfg: dict) -> str:
    """The container's profile JSON: its own (--security-opt seccomp=FILE) or Docker's."""
    return cfg.get("seccomp_profile") or _default_profile()


def write_filter(cfg: dict, cdir: str, state_root: str) -> None:
    """Make ``<cdir>/seccomp.bpf`` for the container (compiled once per profile, caps,
    architecture and kernel; cached under the state root), or remove it when the
    container runs unconfined (--privileged, seccomp=unconfined)."""
    target = os.path.join(cdir, security.SECCOMP_FILTER)
    if not security.seccomp_confined(cfg):
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        return
    text = profile_text(cfg)
    caps = security.container_caps(cfg)
    key = hashlib.sha256("\n".join((text, ",".join(caps), platform.machine(),
                                    platform.release())).encode()).hexdigest()
    cache_dir = os.path.join(state_root, CACHE_DIR)
    cached = os.path.join(cache_dir, key + ".bpf")
    if not os.path.exists(cached):
        bpf = compile_bpf(parse(text), caps)
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        tmp = f"{cached}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(bpf)
        os.rename(tmp, cached)
    tmp = f"{target}.{os.getpid()}"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.link(cached, tmp)
    os.rename(tmp, target)
