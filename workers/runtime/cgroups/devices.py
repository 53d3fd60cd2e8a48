"""The devices a container may use: cgroup device rules (--device, --privileged).

The rules are runc's default allow list (what Docker containers get: mknod of any node,
/dev/null, zero, full, random, urandom, tty, the container's ptys, ptmx, tun) and the
``--device`` ones, on a deny-all default; ``--privileged`` allows everything.

- cgroup v1 (this machine, and hybrid hosts): ``a`` to the container's ``devices.deny``,
  then each rule to ``devices.allow``;
- cgroup v2 has no device files: like runc, a BPF_PROG_TYPE_CGROUP_DEVICE program made from
  the rules is attached to the container's cgroup (``bpf_program``, ``attach_program``;
  attached without BPF_F_ALLOW_MULTI, so a restart's program replaces the previous one).
"""

import os
import struct

# runc's AllowedDevices (libcontainer/specconv), in devices.allow syntax
DEFAULT_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                 "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm")


class DeviceError(ValueError):
    """A --device that this node cannot give (Docker's words)."""


def device_rule(device: dict) -> str:
    """A --device entry -> its devices.allow line, e.g. 'c 189:3 rwm' (the node's numbers)."""
    import stat

    path = device["path_on_host"]
    try:
        st = os.stat(path)
    except OSError as e:
        raise DeviceError(f'error gathering device information while adding custom device '
                          f'"{path}": {(e.strerror or str(e)).lower()}') from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise DeviceError(f'error gathering device information while adding custom device '
                          f'"{path}": not a device node')
    perms = device.get("permissions") or "rwm"
    return f"{kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {perms}"


def rules(cfg: dict) -> list[str]:
    """The devices.allow lines for a container (after denying all)."""
    if cfg.get("privileged"):
        return ["a *:* rwm"]
    return list(DEFAULT_RULES) + [device_rule(d) for d in cfg.get("devices") or ()]


def apply(manager, cfg: dict) -> bool:
    """Set the container's device rules on its cgroup (made by ``manager.create()``), before
    its init enters it. False where the host has neither a v1 devices controller nor v2."""
    allowed = rules(cfg)
    if manager.version == "v2":
        if allowed != ["a *:* rwm"]:
            attach_program(manager.paths()["unified"], bpf_program(allowed))
        return True
    path = manager.paths().get("devices") if manager.version == "v1" else None
    if not path:
        return False
    if allowed != ["a *:* rwm"]:
        _write(path, "devices.deny", "a")
    for rule in allowed:
        _write(path, "devices.allow", rule)
    return True


# -- cgroup v2: the BPF program ----------------------------------------------------------
SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
DEV_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def bpf_program(allowed: list[str]) -> bytes:
    """eBPF for ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}``:
    r2 = type, r3 = access, r4 = major, r5 = minor; one block per rule (mismatch: jump to
    the next block), 1 (allow) when a block matches, 0 (deny) after the last."""
    ldx_w, and_k, rsh_k, mov64_x, mov64_k, jne_k, exit_ = (0x61, 0x54, 0x74, 0xBF, 0xB7, 0x55,
                                                           0x95)
    prog = [_insn(ldx_w, 2, 1, 0), _insn(and_k, 2, imm=0xFFFF), _insn(ldx_w, 3, 1, 0),
            _insn(rsh_k, 3, imm=16), _insn(ldx_w, 4, 1, 4), _insn(ldx_w, 5, 1, 8)]
    for rule in allowed:
        kind, numbers, perms = rule.split()
        major, minor = numbers.split(":")
        checks = []
        if kind != "a":
            checks.append((2, DEV_TYPES[kind]))
        access = sum(ACCESS[p] for p in set(perms))
        block_checks = [_insn(mov64_x, 1, 3), _insn(and_k, 1, imm=~access & 0xFFFF)]
        if major != "*":
            checks.append((4, int(major)))
        if minor != "*":
            checks.append((5, int(minor)))
        # every jump skips to the end of this block: [checks...] r1 = access & ~allowed,
        # if r1 != 0 skip, r0 = 1, exit
        body = len(checks) + 3 + 2
        block = []
        for i, (reg, value) in enumerate(checks):
            block.append(_insn(jne_k, reg, off=body - i - 1, imm=value))
        block += block_checks
        block.append(_insn(jne_k, 1, off=2, imm=0))
        block += [_insn(mov64_k, 0, imm=1), _insn(exit_)]
        prog += block
    prog += [_insn(mov64_k, 0, imm=0), _insn(exit_)]
    return b"".join(prog)


def _bpf(cmd: int, attr: bytes) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(cmd), buf, ctypes.c_ulong(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def attach_program(cgroup_dir: str, program: bytes) -> None:
    """Load ``program`` and attach it to ``cgroup_dir`` (replacing the one attached before)."""
    import ctypes

    insns = ctypes.create_string_buffer(program, len(program))
    license_ = ctypes.create_string_buffer(b"Apache")
    attr = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                       ctypes.addressof(insns), ctypes.addressof(license_), 0, 0, 0, 0, 0,
                       b"dockyard_dev", 0, BPF_CGROUP_DEVICE).ljust(128, b"\0")
    prog_fd = _bpf(BPF_PROG_LOAD, attr)
    try:
        cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", cg_fd, prog_fd, BPF_CGROUP_DEVICE, 0)
                 .ljust(128, b"\0"))
        finally:
            os.close(cg_fd)
    finally:
        os.close(prog_fd)


def _write(path: str, name: str, value: str) -> None:
    fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
