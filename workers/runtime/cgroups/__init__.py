"""Container cgroups: one interface, two backends (cgroup v1 and v2), chosen by the host.

``open_manager(parent, name)`` returns the ``Manager`` of cgroup ``<parent>/<name>`` for
the hierarchy this host runs:

- pure v2 (``/sys/fs/cgroup`` is a cgroup2 mount): ``v2.V2Manager`` there;
- v1 or hybrid (v1 controllers at ``/sys/fs/cgroup/<controller>``, maybe a controller-less
  cgroup2 at ``/sys/fs/cgroup/unified``): ``v1.V1Manager`` over the v1 controllers;
- neither: ``NullManager`` (no pause, no limits).

Everything Dockyard makes lives under its own parent (``dockyard``, or ``dockyard-<prefix>``
for a non-default ``DOCKYARD_PREFIX``); nothing else is created, written or removed.

This package is imported by the shim (pause, unpause) and by the container's init before
exec (to enter the cgroup), so the backends import only ``os`` and ``time``; the config
types (dataclasses) are imported by ``apply()`` only.
"""

import os
import time

CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "dockyard"
FREEZE_TIMEOUT = 5.0


class CgroupError(OSError):
    """A cgroup operation failed."""


def parent_name(prefix: str = "dy") -> str:
    """Dockyard's parent cgroup for a resource prefix: ``dockyard`` for the default ``dy``,
    ``dockyard-<prefix>`` otherwise (test stacks, so their cgroups never meet)."""
    return DEFAULT_PARENT if not prefix or prefix == "dy" else f"{DEFAULT_PARENT}-{prefix}"


def _unescape(field):
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def cgroup_mounts(mountinfo="/proc/self/mountinfo"):
    """-> (v2 mount points, {v1 controller: mount point}) of this mount namespace."""
    v2, v1 = [], {}
    with open(mountinfo, encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            parts = right.split()
            if len(parts) < 3:
                continue
            point = _unescape(left.split()[4])
            if parts[0] == "cgroup2":
                v2.append(point)
            elif parts[0] == "cgroup":
                for opt in parts[2].split(","):
                    if opt in V1_CONTROLLERS:
                        v1.setdefault(opt, point)
    return v2, v1


# the v1 controllers a container gets a cgroup in (named hierarchies like name=systemd are
# left alone); freezer is the one that pause needs
V1_CONTROLLERS = ("freezer", "pids", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices",
                  "hugetlb", "net_cls", "net_prio", "perf_event")

_detected = None


def detect(root=CGROUP_ROOT):
    """-> ("v2", mount point) | ("v1", {controller: mount point}) | ("none", None)."""
    global _detected
    if _detected is not None and _detected[0] == root:
        return _detected[1]
    v2, v1 = cgroup_mounts()
    if root in v2:
        found = ("v2", root)
    elif "freezer" in v1:
        found = ("v1", v1)
    elif v2:
        found = ("v2", sorted(v2, key=len)[0])
    else:
        found = ("none", None)
    _detected = (root, found)
    return found


class Manager:
    """One container's cgroup. ``create`` (idempotent) before the container's PID 1 runs;
    ``enter`` moves a process in (``0``: the caller); ``destroy`` once it is removed."""

    version = ""

    def __init__(self, parent, name):
        for what, value in (("parent", parent), ("name", name)):
            if not value or "/" in value or value in (".", "..") or "\n" in value:
                raise CgroupError(f"invalid cgroup {what} {value!r}")
        self.parent = parent
        self.name = name

    def paths(self):
        """{hierarchy: directory} of this cgroup."""
        raise NotImplementedError

    def exists(self):
        return any(os.path.isdir(p) for p in self.paths().values())

    def create(self):
        raise NotImplementedError

    def enter(self, pid=0):
        """Create if needed, then move ``pid`` (0: the calling process) in."""
        self.create()
        for path in self.paths().values():
            _write(os.path.join(path, "cgroup.procs"), str(pid))

    def procs(self):
        """Pids in the cgroup (and its children)."""
        pids = set()
        for path in self.paths().values():
            for dirpath, _dirs, _files in os.walk(path):
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
        return sorted(pids)

    def freeze(self, timeout=FREEZE_TIMEOUT):
        raise NotImplementedError

    def thaw(self):
        raise NotImplementedError

    def frozen(self):
        """True when every process is frozen."""
        raise NotImplementedError

    def kill(self, timeout=5.0):
        """SIGKILL every process in the cgroup and wait until it is empty."""
        raise NotImplementedError

    def apply(self, resources):
        """Write the limits of a ``config.Resources`` (validated first) to the cgroup made
        by ``create``; also for a running container (``docker update``)."""
        from .validate import validate_resources

        validate_resources(resources)
        if resources.items():
            self._apply(resources)

    def _apply(self, resources):
        raise CgroupError(f"the {self.version} backend cannot set limits")

    def oom_kills(self):
        """How many processes the kernel's OOM killer has killed in this cgroup (None:
        unknown). Compared before and after a run to tell an OOM kill (State.OOMKilled)."""
        return None

    def destroy(self, timeout=5.0):
        """Kill what is left, then remove the cgroup (not the parent). Idempotent."""
        if not self.exists():
            return
        if self.procs():
            try:
                self.thaw()
            except OSError:
                pass
            self.kill(timeout)
        for path in self.paths().values():
            _rmtree_cgroup(path, timeout)

    def remove_parent(self):
        """Remove Dockyard's parent cgroup if it is empty (tests, uninstall)."""
        for path in self.paths().values():
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass


class NullManager(Manager):
    """No cgroup hierarchy on this host: containers run without one."""

    version = "none"

    def paths(self):
        return {}

    def create(self):
        pass

    def freeze(self, timeout=FREEZE_TIMEOUT):
        raise CgroupError("cgroups are not available on this host: cannot pause")

    thaw = freeze

    def frozen(self):
        return False

    def kill(self, timeout=5.0):
        pass


def _write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path):
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _keyed_value(path, key):
    """The number after ``key`` in a flat keyed file (memory.events, memory.oom_control)."""
    try:
        for line in _read(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _write_limit(directory, name, value, what=None):
    """Write one limit file; a CgroupError that names the file (and the flag, ``what``)."""
    try:
        _write(os.path.join(directory, name), str(value))
    except OSError as e:
        detail = f" ({what})" if what else ""
        raise CgroupError(e.errno, f"cannot set {name}{detail} to {value}: {e.strerror}") from None


def _rmtree_cgroup(path, timeout):
    """rmdir a cgroup and its children, deepest first (cgroupfs removes its files itself);
    retried briefly: a dying process keeps its cgroup busy for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        dirs = [d for d, _s, _f in os.walk(path)]
        try:
            for d in sorted(dirs, key=len, reverse=True):
                os.rmdir(d)
            return
        except FileNotFoundError:
            if not os.path.isdir(path):
                return
        except OSError as e:
            if time.monotonic() > deadline:
                raise CgroupError(e.errno, f"cannot remove cgroup {path}: {e.strerror}") from None
            time.sleep(0.02)


def _kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def open_manager(parent, name, root=CGROUP_ROOT):
    """The ``Manager`` of ``<parent>/<name>`` for this host's hierarchy."""
    kind, where = detect(root)
    if kind == "v2":
        from .v2 import V2Manager

        return V2Manager(parent, name, mount=where)
    if kind == "v1":
        from .v1 import V1Manager

        return V1Manager(parent, name, mounts=where)
    return NullManager(parent, name)
