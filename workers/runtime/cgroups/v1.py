"""cgroup v1 backend: one directory per controller hierarchy; ``freezer.state``."""

import os
import time

from . import FREEZE_TIMEOUT, CgroupError, Manager, _kill_pids, _read, _write


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
