"""Fixtures for the kernel-level runtime tests (root, real kernel, no mocks).

Every test gets its own state root; the finalizer force-removes every container,
checks that no mount under the root is left in the host's mount namespace and that
no shim of the root still runs, then deletes the root.
"""

import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT_DIR not in sys.path:
    sys.path.insert(0, ROOT_DIR)

from workers.runtime import linux  # noqa: E402
from workers.runtime.container import Runtime, stop_launcher  # noqa: E402
from workers.runtime.images import (  # noqa: E402
    ImageStore,
    build_busybox_layer,
    busybox_image_config,
)
from workers.runtime.spec import ContainerSpec, merge_env  # noqa: E402

if os.geteuid() != 0:
    pytest.skip("runtime tests need root", allow_module_level=True)

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens: the shim must cope


def remove_cgroup_parent(name: str, timeout: float = 5.0) -> None:
    """Remove a test's cgroup parent in every hierarchy, deepest first, killing what still
    runs in it (only this test's containers can). A cgroup can stay busy for a moment after
    its last process died, so this retries."""
    from workers.runtime import cgroups

    v2, v1 = cgroups.cgroup_mounts()
    paths = [os.path.join(mount, name) for mount in set(v2) | set(v1.values())]
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for path in paths:
            for d in sorted((d for d, _s, _f in os.walk(path)), key=len, reverse=True):
                _kill_members(d)  # a fixture torn down before the containers' own
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(d)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cgroups left behind: {left}")
        time.sleep(0.05)


def _kill_members(cgroup_dir: str) -> None:
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            pids = [int(line) for line in f if line.strip()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _test_cgroup_parents() -> set[str]:
    from workers.runtime import cgroups

    v2, v1 = cgroups.cgroup_mounts()
    return {name for mount in set(v2) | set(v1.values()) if os.path.isdir(mount)
            for name in os.listdir(mount) if name.startswith("dockyard-t")}


@pytest.fixture(scope="session", autouse=True)
def no_test_cgroups_left():
    """A safety net: test cgroup parents that appeared during the session are removed."""
    before = _test_cgroup_parents()
    yield
    for name in _test_cgroup_parents() - before:
        remove_cgroup_parent(name)


@pytest.fixture
def cgroup_parent():
    """A private cgroup parent under Dockyard's name; removed afterwards."""
    name = "dockyard-t" + secrets.token_hex(4)
    yield name
    remove_cgroup_parent(name)


@pytest.fixture(scope="session")
def busybox_tar():
    return build_busybox_layer()


def processes_mentioning(text):
    """Pids whose command line contains ``text``, except the state root's shim launcher
    (a node-level service, not a leftover of a container)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if text.encode() in cmd and b"workers.runtime.launcher" not in cmd:
            found.append(int(pid))
    return found


def launcher_pids(root):
    return [p for p in _all_mentioning(root) if p not in processes_mentioning(root)]


def _all_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if text.encode() in cmd:
            found.append(int(pid))
    return found


@pytest.fixture
def state_root():
    root = tempfile.mkdtemp(prefix="dy-test-")
    yield root
    problems = []
    if not stop_launcher(root):
        problems.append(f"the shim launcher of {root} did not stop")
    mounts = linux.mounts_under(root)
    for m in sorted(mounts, key=len, reverse=True):
        try:
            linux.umount2(m, linux.MNT_DETACH)
        except OSError:
            pass
    if mounts:
        problems.append(f"mounts left under {root}: {mounts}")
    leftover = [p for p in _all_mentioning(root) if p != os.getpid()]
    for pid in leftover:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if leftover:
        problems.append(f"processes left for {root}: {leftover}")
    shutil.rmtree(root, ignore_errors=True)
    assert not problems, problems


@pytest.fixture
def store(state_root, busybox_tar):
    return ImageStore(state_root)


@pytest.fixture
def image(store, busybox_tar):
    diff_id = store.add_layer_tar(io.BytesIO(busybox_tar))
    config = busybox_image_config(diff_id)
    image_id = store.put_config(config)
    return {"id": image_id, "config": config, "layers": store.layer_dirs(image_id)}


def _cleanup(rt):
    errors = []
    for cid in rt.list_ids():
        try:
            rt.remove(cid, force=True)
        except Exception as e:  # keep going: remove everything we can
            errors.append(f"{cid}: {e!r}")
    return errors


@pytest.fixture
def runtime_factory(state_root):
    made = []

    def make(redis_url=DEAD_REDIS, node=None, launcher=True, cgroup_parent=None):
        rt = Runtime(state_root, node=node or "t" + secrets.token_hex(4), redis_url=redis_url,
                     launcher=launcher, cgroup_parent=cgroup_parent)
        made.append(rt)
        return rt

    yield make
    errors = []
    for rt in made:
        errors += _cleanup(rt)
    assert not errors, errors


@pytest.fixture(params=["launcher", "direct"])
def rt(request, runtime_factory):
    """A runtime whose shims come from the state root's launcher (already running), or
    one that spawns every shim as a fresh interpreter."""
    if request.param == "direct":
        return runtime_factory(launcher=False)
    rt = runtime_factory()
    assert rt.start_launcher(), "the shim launcher did not come up"
    return rt


@pytest.fixture
def make_spec(image):
    def make(args, **kw):
        cid = secrets.token_hex(32)
        hostname = kw.pop("hostname", cid[:12])
        env = merge_env(image["config"]["config"]["Env"], kw.pop("env", []), hostname=hostname,
                        tty=kw.get("tty", False))
        return ContainerSpec(id=cid, name=kw.pop("name", "c" + cid[:8]),
                             layers=image["layers"], args=args, env=env, hostname=hostname,
                             **kw)
    return make


def read_log(rt, cid):
    out, err = [], []
    with open(rt.logs_path(cid), encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            assert set(entry) == {"log", "stream", "time"}
            (out if entry["stream"] == "stdout" else err).append(entry["log"])
    return "".join(out), "".join(err)


@pytest.fixture
def run(rt, make_spec):
    """Create, start and wait for a container; returns (exit_code, stdout, stderr)."""
    def run_(args, timeout=10, **kw):
        spec = make_spec(args, **kw)
        rt.create(spec)
        rt.start(spec.id)
        code = rt.wait(spec.id, timeout)
        out, err = read_log(rt, spec.id)
        return code, out, err
    return run_


@pytest.fixture(name="read_log")
def read_log_fixture():
    return read_log


@pytest.fixture(name="processes_mentioning")
def processes_mentioning_fixture():
    return processes_mentioning


@pytest.fixture(scope="session")
def root_dir():
    return ROOT_DIR


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a unix socket; yields its URL."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(exe):
        pytest.skip("redis-server not installed")
    d = tempfile.mkdtemp(prefix="dyr-")
    sock = os.path.join(d, "r.sock")
    proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
                             "--save", "", "--appendonly", "no", "--dir", d],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("redis-server did not start")
            time.sleep(0.01)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
