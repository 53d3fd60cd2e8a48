"""A real node for the build tests: the worker's code in the test process, on its own state
root, resource prefix (bridge, nft table, cgroup parent) and bridge subnet, so RUN steps run
in real containers on the default bridge. Jobs are run with workers.tasks.run_job.

`build_node` fixture -> BuildNode: .store, .progress (the job progress events), .busybox
(the shared busybox:1.29 image), .context(files) -> a spooled context tar, .build(user,
files, **build options) -> the finished job, .run(job) -> the job reloaded, .stream() ->
the "stream" text, .file(image, path) -> a file's bytes in an image, .leftovers() -> what a
build must not leave (containers, rows, netns files, veths, spool and build dirs),
.cancel_when_a_step_runs(cancel) -> calls cancel() from a thread once a step container runs.
"""

import io
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time

import pytest
from django.db import OperationalError, connection
from live import _remove_host_resources

from panel.containers.models import Container
from panel.images import builds, spool
from panel.images import services as images
from panel.jobs.models import Job
from panel.nodes.services import local_node
from workers import node
from workers.runtime import linux
from workers.runtime.container import drain_trash, stop_launcher


class BuildNode:
    def __init__(self, root: str, prefix: str, progress: list):
        self.root, self.prefix, self.progress = root, prefix, progress
        self.store = node.image_store()
        self.busybox = images.build_busybox(node=local_node(), busybox_path="/bin/busybox",
                                            tags=["busybox:1.29"])

    def context(self, files: dict) -> str:
        path = spool.spool_path(".tar")
        with tarfile.open(path, "w") as tf:
            for name, data in files.items():
                data = data.encode() if isinstance(data, str) else data
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
        return path

    def build(self, user, files: dict | None = None, **options) -> Job:
        if files is not None:
            options["context_path"] = self.context(files)
        self.progress.clear()
        return self.run(builds.build(user, **options))

    def file(self, image, path: str) -> bytes | None:
        """A regular file of the image, read from its layers top down (no whiteouts)."""
        for diff_id in reversed(image.layers):
            candidate = os.path.join(self.store.layer_dir(diff_id), path.lstrip("/"))
            if os.path.lexists(candidate):
                with open(candidate, "rb") as f:
                    return f.read()
        return None

    def run(self, job: Job) -> Job:
        from workers.tasks import run_job

        run_job(str(job.id))
        job.refresh_from_db()
        return job

    def stream(self, job: Job | None = None) -> str:
        return "".join(e.get("stream", "") for e in self.progress)

    def cancel_when_a_step_runs(self, cancel) -> dict:
        """Once a container runs (seen by the runtime, not the database), wait 0.3 s and call
        ``cancel()`` in another thread; the dict gets "container" and "at" (monotonic)."""
        seen: dict = {}

        def watch():
            rt = node.runtime()
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline and "at" not in seen:
                    running = [c for c in rt.list_ids() if rt.state(c).status == "running"]
                    if running:
                        seen["container"] = running[0]
                        time.sleep(0.3)
                        try:
                            cancel()
                            seen["at"] = time.monotonic()
                        except OperationalError:  # the in-memory test database is busy
                            continue
                    time.sleep(0.05)
            finally:
                connection.close()

        seen["thread"] = threading.Thread(target=watch, daemon=True)
        seen["thread"].start()
        return seen

    def leftovers(self) -> list[str]:
        found = [f"container {cid}" for cid in node.runtime().list_ids()]
        found += [f"row {c.name}" for c in Container.objects.all()]
        netns = os.path.join(self.root, "netns")
        found += [f"netns {n}" for n in (os.listdir(netns) if os.path.isdir(netns) else [])]
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
        found += [f"link {line.split(':')[1].strip()}" for line in links.stdout.splitlines()
                  if line.split(":")[1].strip().startswith(f"{self.prefix}v")]
        for sub in ("spool", "builds"):
            path = os.path.join(self.root, sub)
            found += [f"{sub}/{n}" for n in (os.listdir(path) if os.path.isdir(path) else [])]
        return found


@pytest.fixture
def build_node(settings, monkeypatch, transactional_db):
    if os.geteuid() != 0:
        pytest.skip("RUN steps need root")
    root = tempfile.mkdtemp(prefix="dy-build-")
    prefix = "db" + secrets.token_hex(2)
    settings.STATE_ROOT = root
    settings.RESOURCE_PREFIX = prefix
    settings.BRIDGE_SUBNET = f"10.215.{secrets.randbelow(256)}.0/24"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: the shims cope
    progress = []
    monkeypatch.setattr("panel.events.publish.job_progress",
                        lambda job_id, event: progress.append(event))
    monkeypatch.setattr("panel.jobs.services._send_task", lambda job: None)
    for cached in (node.runtime, node.network, node.image_store):
        cached.cache_clear()
    try:
        yield BuildNode(root, prefix, progress)
    finally:
        rt = node.runtime()
        for cid in rt.list_ids():
            rt.remove(cid, force=True)
        drain_trash()
        stop_launcher(root)
        for cached in (node.runtime, node.network, node.image_store):
            cached.cache_clear()
        for mount in sorted(linux.mounts_under(root), key=len, reverse=True):
            linux.umount2(mount, linux.MNT_DETACH)
        _remove_host_resources(prefix)
        shutil.rmtree(root, ignore_errors=True)
