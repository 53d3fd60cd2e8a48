"""A `docker build` client that goes away cancels the build: the CLI is killed while a
`RUN sleep 30` step runs; the job ends cancelled long before the sleep would, its RUN
container is gone and nothing is tagged."""

import os
import select
import signal
import subprocess
import time

from live import docker_cli_path

from .build_helpers import build_containers, build_jobs, write_context


def _wait_for_output(proc: subprocess.Popen, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} in the build output:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        assert chunk or not ready, f"the CLI ended early:\n{seen.decode(errors='replace')}"
        seen += chunk
    return seen


def test_killing_the_cli_cancels_the_build(live_stack, cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox:1.29\nRUN echo sleeping-now && sleep 30\n",
    })
    tag = build_tags("cancel")
    before = {job["id"] for job in build_jobs(live_stack)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
    env.update(DOCKER_CONFIG=str(live_stack.tmp / "docker-config"), DOCKER_BUILDKIT="0")
    proc = subprocess.Popen([docker_cli_path(), "-H", live_stack.docker_host, "build",
                             "--no-cache", "-t", tag, str(ctx)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        _wait_for_output(proc, b"sleeping-now", timeout=120)
        assert len(build_containers(cli)) == 1  # the RUN step's container is up
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    job = None
    while time.monotonic() - killed_at < 25:
        job = next(j for j in build_jobs(live_stack) if j["id"] not in before)
        if job["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    # cancelled within 25 s of the kill: the 30 s sleep was not waited for
    assert job["state"] == "failed" and job["cancel_requested"], job
    assert build_containers(cli) == []
    assert cli("image", "inspect", tag).returncode != 0
