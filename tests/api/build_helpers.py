"""What the API build tests share: contexts on disk or as tars, and what a build leaves."""

import gzip
import io
import json
import tarfile
from pathlib import Path

SHORT_ID = r"[0-9a-f]{12}"


def write_context(root: Path, files: dict[str, str | bytes]) -> Path:
    """A build context directory: {relative path: content}."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def tar_context(files: dict[str, str | bytes], *, compress: bool = False) -> bytes:
    """A build context as the CLI or docker-py sends it (plain or gzipped tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue()) if compress else buf.getvalue()


def build_containers(cli) -> list[str]:
    """Containers of RUN steps (label dockyard.build) that still exist."""
    r = cli("ps", "-a", "-q", "--filter", "label=dockyard.build")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


_JOBS = """
import json
from panel.jobs.models import Job
print(json.dumps([{"id": str(j.id), "state": j.state, "error": j.error,
                   "cancel_requested": j.cancel_requested, "result": j.result}
                  for j in Job.objects.filter(kind="image.build").order_by("created")]))
"""


def build_jobs(live_stack) -> list[dict]:
    """The stack's `image.build` jobs, oldest first."""
    return json.loads(live_stack.manage("shell", "-c", _JOBS).strip().splitlines()[-1])
