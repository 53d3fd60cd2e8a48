"""A test BuildHost for the builder: RUN steps in real containers of the runtime (network
none: a private netns with only lo), their upper dir diffed with archive.diff_tar; FROM
images from a dict; build output collected; cancellation from a flag or a callable."""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
import tempfile
import time

import pytest

from workers.runtime import archive
from workers.runtime.build.builder import (
    BuildCancelled,
    Builder,
    BuildError,
    BuildOptions,
    RunOutcome,
)
from workers.runtime.build.context import RootFS
from workers.runtime.container import StartError
from workers.runtime.spec import ContainerSpec, merge_env


class TestHost:
    __test__ = False  # not a pytest class

    def __init__(self, store, rt, images: dict[str, str]):
        self.store = store
        self.rt = rt
        self.images = dict(images)
        self.output: list[str] = []
        self.registered: list[tuple[str, str]] = []   # (image id, parent id)
        self.runs: list[dict] = []
        self.cancel_when = lambda: False
        self.quota: int | None = None
        self.added = 0

    # -- the BuildHost protocol ---------------------------------------------------------
    def base_image(self, ref: str) -> str:
        if ref not in self.images:
            raise BuildError(f"pull access denied for {ref}, repository does not exist")
        return self.images[ref]

    def run(self, image_id, argv, *, env, user, workdir, shell) -> RunOutcome:
        self.runs.append({"argv": argv, "env": env, "user": user, "workdir": workdir,
                          "shell": shell})
        cid = secrets.token_hex(32)
        spec = ContainerSpec(id=cid, name="build-" + cid[:8],
                             layers=self.store.layer_dirs(image_id), args=argv,
                             env=merge_env(env, [], hostname=cid[:12]),
                             working_dir=workdir or "/", user=user, hostname=cid[:12])
        self.rt.create(spec)
        try:
            self.log(f" ---> Running in {cid[:12]}\n")
            try:
                self.rt.start(cid)
            except StartError as e:
                raise BuildError(str(e)) from None
            seen = 0
            while True:
                try:
                    code = self.rt.wait(cid, 0.05)
                    break
                except TimeoutError:
                    pass
                finally:
                    seen = self._stream(cid, seen)
                if self.cancelled():
                    raise BuildCancelled("build cancelled")
            if code != 0:
                return RunOutcome(code, None)
            fd, tar_path = tempfile.mkstemp(dir=self.store.tmp, prefix="run-", suffix=".tar")
            with os.fdopen(fd, "wb") as out:
                archive.diff_tar(os.path.join(self.rt.containers, cid, "upper"), out)
        finally:
            self.rt.remove(cid, force=True)
        self.log(f"Removing intermediate container {cid[:12]}\n")
        return RunOutcome(0, tar_path)

    def _stream(self, cid: str, seen: int) -> int:
        try:
            with open(self.rt.logs_path(cid), encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return seen
        for line in lines[seen:]:
            if line.endswith("\n"):
                self.log(json.loads(line)["log"])
                seen += 1
        return seen

    def register(self, image_id, config, parent_id) -> None:
        assert self.store.get_config(image_id) == config
        self.registered.append((image_id, parent_id))

    def log(self, text: str) -> None:
        self.output.append(text)

    def cancelled(self) -> bool:
        return bool(self.cancel_when())

    def check_quota(self, added_bytes: int) -> None:
        self.added += added_bytes
        if self.quota is not None and self.added > self.quota:
            raise BuildError("storage quota of team t exceeded")

    # -- helpers for the tests ------------------------------------------------------------
    @property
    def text(self) -> str:
        return "".join(self.output)


def write_context(root, files: dict[str, str | bytes | tuple]) -> str:
    """files: {path: content} or {path: (content, mode)}; a path ending in / is a dir."""
    for name, content in files.items():
        path = os.path.join(str(root), name)
        if name.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = None
        if isinstance(content, tuple):
            content, mode = content
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            os.chmod(path, mode)
    return str(root)


def build(store, host, context_dir, **options):
    return Builder(store, host, BuildOptions(**options)).build(context_dir)


def image_files(store, image_id: str) -> RootFS:
    return RootFS(store.layer_dirs(image_id))


def read(store, image_id: str, rel: str) -> str:
    path = image_files(store, image_id).path(rel)
    assert path is not None, f"{rel} not in the image"
    with open(path) as f:
        return f.read()


def tar_gz(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in entries.items():
            ti = tarfile.TarInfo(name)
            data = content.encode()
            ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), 0o640, 7, 8, time.time()
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def host(store, image, runtime_factory):
    """A TestHost whose FROM knows busybox (the host's static busybox as an image)."""
    return TestHost(store, runtime_factory(), {"busybox": image["id"],
                                                "busybox:latest": image["id"]})
