"""Spool files: archives on their way between the API/panel and a node's job.

Uploads (docker load, docker import) are written here by the API or the panel and removed
by the job that reads them; downloads (docker save, docker export) are written here by the
job and removed by the API or the panel once streamed. The directory is root's only.
"""

import os
import secrets

from django.conf import settings


def spool_dir() -> str:
    path = os.path.join(str(settings.STATE_ROOT), "spool")
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)  # also when an older one was made with the umask's mode
    return path


def spool_path(suffix: str = "") -> str:
    """A new, not yet existing path under the spool dir."""
    return os.path.join(spool_dir(), secrets.token_hex(16) + suffix)


def check_spooled(path: str) -> str:
    """The path, if it lies in the spool dir (a job never reads or deletes elsewhere)."""
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(spool_dir()):
        raise ValueError(f"{path} is not a spool file")
    return real


def discard(path: str) -> None:
    try:
        os.unlink(check_spooled(path))
    except FileNotFoundError:
        pass
