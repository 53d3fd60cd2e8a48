"""Helpers for the layer and archive tests: hand-made layer tars, the store's emptiness, an
overlay's merged view (mounted in a forked child's own mount namespace), real tools."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import stat
import subprocess
import tarfile

import pytest

from workers.runtime import linux
from workers.runtime.spec import ContainerSpec, merge_env


def make_tar(entries, gz=False) -> bytes:
    """entries: (name, kind, extra) with kind file|dir|sym|hard|chr|blk|fifo; extra is the
    content (file), the target (sym, hard), or a dict of TarInfo attributes to set."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            data = None
            if kind == "file":
                data = extra.encode() if isinstance(extra, str) else b"x"
                ti.size = len(data)
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind in ("chr", "blk"):
                ti.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            if isinstance(extra, dict):
                for key, value in extra.items():
                    setattr(ti, key, value)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_store_empty(store) -> None:
    assert os.listdir(store.layers) == []
    assert os.listdir(store.blobs) == []
    assert os.listdir(store.tmp) == []


def merged_view(lower_dirs: list[str], tmp_path) -> dict[str, str]:
    """Mount an overlay of ``lower_dirs`` (top first) read-only in a forked child's own
    mount namespace; returns {path: "dir" | "file:<content>" | "link:<target>"}."""
    mnt = tmp_path / "merged-mnt"
    mnt.mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            linux.mount("overlay", str(mnt), "overlay", linux.MS_RDONLY,
                        "lowerdir=" + ":".join(lower_dirs))
            view = {}
            for dirpath, dirnames, filenames in os.walk(mnt):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, mnt)
                    st = os.lstat(path)
                    if stat.S_ISDIR(st.st_mode):
                        view[rel] = "dir"
                    elif stat.S_ISLNK(st.st_mode):
                        view[rel] = "link:" + os.readlink(path)
                    elif stat.S_ISREG(st.st_mode):
                        view[rel] = "file:" + open(path).read()
                    else:
                        view[rel] = "other"
            os.write(w, json.dumps(view).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the overlay could not be mounted in the child"
    mnt.rmdir()
    assert str(mnt) not in linux.mountpoints()
    return json.loads(data)


def tar_listing(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def tool(name: str) -> str:
    """A real tool the test needs; a clear failure (not a skip) when it is missing."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: run scripts/setup.sh", pytrace=False)
    return path


def run_tool(*args: str, cwd=None) -> str:
    r = subprocess.run([tool(args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd,
                       timeout=120)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr.strip()}"
    return r.stdout


def run_image(runtime_factory, read_log, store, loaded, args: list[str],
              timeout: float = 10) -> str:
    """Run ``args`` in a Dockyard container of a loaded image; its stdout (exit 0 checked).
    ``runtime_factory`` and ``read_log`` are the runtime tests' fixtures."""
    rt = runtime_factory()
    cid = secrets.token_hex(32)
    env = merge_env((loaded.config.get("config") or {}).get("Env") or [], [],
                    hostname=cid[:12], tty=False)
    spec = ContainerSpec(id=cid, name="c" + cid[:8], layers=store.layer_dirs(loaded.image_id),
                         args=args, env=env, hostname=cid[:12])
    rt.create(spec)
    rt.start(cid)
    code = rt.wait(cid, timeout)
    out, err = read_log(rt, cid)
    rt.remove(cid, force=True)
    assert code == 0, f"exit {code}: {err}"
    return out
