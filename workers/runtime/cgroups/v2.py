"""cgroup v2 backend: one unified hierarchy; ``cgroup.freeze``, ``cgroup.kill``."""

import os
import time

from . import (
    FREEZE_TIMEOUT,
    CgroupError,
    Manager,
    _keyed_value,
    _kill_pids,
    _read,
    _write,
    _write_limit,
)


def cpu_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), runc's conversion."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight(blkio_weight: int) -> int:
    """v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), runc's conversion."""
    return 1 + ((blkio_weight - 10) * 9999) // 990


def _max(value):
    """A v2 limit: a positive number, or "max" for none (-1, 0)."""
    return value if value is not None and value > 0 else "max"


class V2Manager(Manager):
    version = "v2"

    def __init__(self, parent, name, mount="/sys/fs/cgroup"):
        super().__init__(parent, name)
        self.mount = mount
        self.parent_path = os.path.join(mount, parent)
        self.path = os.path.join(self.parent_path, name)

    def paths(self):
        return {"unified": self.path}

    def create(self):
        if os.path.isdir(self.path):
            return
        try:
            os.mkdir(self.parent_path, 0o755)
            self._enable_controllers()
        except FileExistsError:
            pass
        try:
            os.mkdir(self.path, 0o755)
        except FileExistsError:
            pass

    def _enable_controllers(self):
        """Delegate to the containers whatever our parent got from its own parent (we never
        write to cgroups that are not ours)."""
        try:
            available = _read(os.path.join(self.parent_path, "cgroup.controllers")).split()
        except OSError:
            return
        for ctrl in available:
            try:
                _write(os.path.join(self.parent_path, "cgroup.subtree_control"), "+" + ctrl)
            except OSError:
                pass  # e.g. a threaded controller that cannot be enabled here

    # -- limits ----------------------------------------------------------------------
    def _apply(self, r):
        """oom_kill_disable has no v2 file: it is left out (dockerd warns the same)."""
        path = self.path
        if r.memory is not None:
            _write_limit(path, "memory.max", _max(r.memory), "--memory")
        if r.memory_swap is not None:  # v2 limits the swap alone: the total minus memory
            swap = "max" if r.memory_swap == -1 else max(r.memory_swap - (r.memory or 0), 0)
            if r.memory_swap and os.path.exists(os.path.join(path, "memory.swap.max")):
                _write_limit(path, "memory.swap.max", swap, "--memory-swap")
        if r.memory_reservation is not None:
            _write_limit(path, "memory.low", r.memory_reservation, "--memory-reservation")
        if r.cpu_shares is not None:
            _write_limit(path, "cpu.weight", cpu_weight(r.cpu_shares), "--cpu-shares")
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota = "max" if r.cpu_quota is None or r.cpu_quota <= 0 else r.cpu_quota
            line = f"{quota} {r.cpu_period}" if r.cpu_period else f"{quota}"
            _write_limit(path, "cpu.max", line, "--cpus")
        for value, name in ((r.cpuset_cpus, "cpuset.cpus"), (r.cpuset_mems, "cpuset.mems")):
            if value:
                _write_limit(path, name, value, f"--{name.replace('.', '-')}")
        if r.pids_limit is not None:
            _write_limit(path, "pids.max", _max(r.pids_limit), "--pids-limit")
        if r.blkio_weight:  # BFQ's own file takes the v1 scale; io.weight its own
            if os.path.exists(os.path.join(path, "io.bfq.weight")):
                _write_limit(path, "io.bfq.weight", r.blkio_weight, "--blkio-weight")
            elif os.path.exists(os.path.join(path, "io.weight")):
                _write_limit(path, "io.weight", f"default {io_weight(r.blkio_weight)}",
                             "--blkio-weight")

    def oom_kills(self):
        return _keyed_value(os.path.join(self.path, "memory.events"), "oom_kill")

    def freeze(self, timeout=FREEZE_TIMEOUT):
        self._set_freeze("1", timeout)

    def thaw(self):
        self._set_freeze("0", FREEZE_TIMEOUT)

    def _set_freeze(self, value, timeout):
        try:
            _write(os.path.join(self.path, "cgroup.freeze"), value)
        except OSError as e:
            raise CgroupError(e.errno, f"cgroup.freeze of {self.path}: {e.strerror}") from None
        deadline = time.monotonic() + timeout
        want = value == "1"
        delay = 0.001
        while self.frozen() != want:
            if time.monotonic() > deadline:
                if want:
                    _write(os.path.join(self.path, "cgroup.freeze"), "0")
                raise CgroupError(f"cgroup {self.path} did not {'freeze' if want else 'thaw'} "
                                  f"within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def frozen(self):
        try:
            for line in _read(os.path.join(self.path, "cgroup.events")).splitlines():
                key, _, value = line.partition(" ")
                if key == "frozen":
                    return value.strip() == "1"
        except OSError:
            pass
        return False

    def kill(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        kill_file = os.path.join(self.path, "cgroup.kill")
        while True:
            pids = self.procs()
            if not pids:
                return
            if os.path.exists(kill_file):  # Linux 5.14+: atomic, also for forking processes
                try:
                    _write(kill_file, "1")
                except OSError:
                    _kill_pids(pids)
            else:
                _kill_pids(pids)
            if time.monotonic() > deadline:
                raise CgroupError(f"processes left in cgroup {self.path}: {pids}")
            time.sleep(0.01)
