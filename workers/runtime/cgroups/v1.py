"""cgroup v1 backend: one directory per controller hierarchy; ``freezer.state``."""

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

UNLIMITED = -1  # what v1 limit files take for "no limit"


class V1Manager(Manager):
    version = "v1"

    def __init__(self, parent, name, mounts):
        """``mounts``: {controller: mount point}; co-mounted controllers (cpu,cpuacct)
        share one directory, which is used once."""
        super().__init__(parent, name)
        self.mounts = dict(mounts)
        seen, self._paths = set(), {}
        for ctrl, point in sorted(self.mounts.items()):
            if point in seen:
                continue
            seen.add(point)
            self._paths[ctrl] = os.path.join(point, parent, name)

    def paths(self):
        return dict(self._paths)

    def create(self):
        for ctrl, path in self._paths.items():
            if os.path.isdir(path):
                continue
            parent = os.path.dirname(path)
            try:
                os.mkdir(parent, 0o755)
            except FileExistsError:
                pass
            if ctrl == "cpuset":
                _init_cpuset(parent)
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                pass
            if ctrl == "cpuset":
                _init_cpuset(path)

    @property
    def _freezer(self):
        path = self._paths.get("freezer")
        if path is None:
            raise CgroupError("no freezer hierarchy on this host: cannot pause")
        return os.path.join(path, "freezer.state")

    def freeze(self, timeout=FREEZE_TIMEOUT):
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            # FREEZING can stall on a process in uninterruptible sleep: writing FROZEN again
            # retries it (as runc does)
            _write(self._freezer, "FROZEN")
            if self.state() == "FROZEN":
                return
            if time.monotonic() > deadline:
                _write(self._freezer, "THAWED")
                raise CgroupError(f"cgroup {self._freezer} did not freeze within {timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self):
        _write(self._freezer, "THAWED")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while self.state() != "THAWED":
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroup {self._freezer} did not thaw")
            time.sleep(0.005)

    def state(self):
        try:
            return _read(self._freezer).strip()
        except OSError:
            return "THAWED"

    def frozen(self):
        return self.state() == "FROZEN"

    def kill(self, timeout=5.0):
        """Freeze, SIGKILL everything, thaw (no process can fork in between); repeat."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.procs()
            if not pids:
                return
            frozen = False
            if "freezer" in self._paths:
                try:
                    self.freeze(min(1.0, timeout))
                    frozen = True
                except OSError:
                    pass
            _kill_pids(self.procs())
            if frozen:
                self.thaw()
            if time.monotonic() > deadline:
                raise CgroupError(f"processes left in cgroup {self.name}: {pids}")
            time.sleep(0.01)


    # -- limits ----------------------------------------------------------------------
    def _dir(self, ctrl, what):
        point = self.mounts.get(ctrl)  # co-mounted ones (cpu,cpuacct) share a directory
        if point is None:
            raise CgroupError(f"no {ctrl} cgroup hierarchy on this host: cannot set {what}")
        return os.path.join(point, self.parent, self.name)

    def _apply(self, r):
        if r.memory is not None or r.memory_swap is not None:
            self._memory_and_swap(r.memory, r.memory_swap)
        if r.memory_reservation is not None:
            _write_limit(self._dir("memory", "--memory-reservation"),
                         "memory.soft_limit_in_bytes", r.memory_reservation or UNLIMITED)
        if r.oom_kill_disable is not None:
            _write_limit(self._dir("memory", "--oom-kill-disable"), "memory.oom_control",
                         int(r.oom_kill_disable))
        if r.cpu_shares is not None:
            _write_limit(self._dir("cpu", "--cpu-shares"), "cpu.shares", r.cpu_shares)
        if r.cpu_period is not None or r.cpu_quota is not None:
            self._cfs(r.cpu_period, r.cpu_quota)
        for value, name in ((r.cpuset_cpus, "cpuset.cpus"), (r.cpuset_mems, "cpuset.mems")):
            if value:
                _write_limit(self._dir("cpuset", f"--{name.replace('.', '-')}"), name, value)
        if r.pids_limit is not None:
            _write_limit(self._dir("pids", "--pids-limit"), "pids.max",
                         r.pids_limit if r.pids_limit > 0 else "max")
        if r.blkio_weight:  # only where the kernel has a weight (CFQ, or BFQ's file)
            path = self._dir("blkio", "--blkio-weight") if "blkio" in self.mounts else None
            for name in ("blkio.weight", "blkio.bfq.weight"):
                if path and os.path.exists(os.path.join(path, name)):
                    _write_limit(path, name, r.blkio_weight)
                    break

    def _memory_and_swap(self, memory, swap):
        """memory.memsw.limit_in_bytes (memory + swap) may never be below the memory limit:
        raising both writes memsw first, lowering them memory first (as runc does)."""
        path = self._dir("memory", "--memory")
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        writes = [("memory.limit_in_bytes", memory or UNLIMITED, "--memory")]
        if swap is not None and os.path.exists(memsw):
            writes.append(("memory.memsw.limit_in_bytes", swap or UNLIMITED, "--memory-swap"))
            current = int(_read(memsw))
            if swap == UNLIMITED or 0 <= current < swap:
                writes.reverse()
        for name, value, what in writes:
            _write_limit(path, name, value, what)

    def _cfs(self, period, quota):
        """A period shorter than the quota set may be refused: then the quota goes first."""
        path = self._dir("cpu", "--cpus")
        writes = [("cpu.cfs_period_us", period), ("cpu.cfs_quota_us", quota)]
        writes = [(name, value) for name, value in writes if value is not None]
        try:
            for name, value in writes:
                _write_limit(path, name, value)
        except CgroupError:
            for name, value in reversed(writes):
                _write_limit(path, name, value)

    def oom_kills(self):
        if "memory" not in self.mounts:
            return None
        return _keyed_value(os.path.join(self._dir("memory", ""), "memory.oom_control"),
                            "oom_kill")


def _init_cpuset(path):
    """A new v1 cpuset cgroup has empty cpus/mems (no process may join): copy the parent's."""
    up = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            if _read(os.path.join(path, name)).strip():
                continue
            value = _read(os.path.join(up, name)).strip()
            if value:
                _write(os.path.join(path, name), value)
        except OSError as e:
            raise CgroupError(e.errno, f"cannot set up {path}/{name}: {e.strerror}") from None
