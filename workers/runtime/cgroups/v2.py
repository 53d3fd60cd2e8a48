"""cgroup v2 backend: one unified hierarchy; ``cgroup.freeze``, ``cgroup.kill``."""

import os
import time

from . import FREEZE_TIMEOUT, CgroupError, Manager, _kill_pids, _read, _write


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
