"""Audit retention: old rows go to an archive file, then out of the database, and the prune
itself becomes a row of the chain.

`prune(before)` takes the chain's oldest rows older than `before`, in chunks of at most
CHUNK rows; per chunk, under the chain's lock: write `audit-<first seq>-<last seq>.jsonl.gz`
(one canonical row per line, digests included; fsynced, 0600, in a 0700 directory), insert
an `AuditPrune` (which is what lets the triggers accept the DELETE), delete the rows, and
append an `audit.prune` row (params: upto_seq, count, archive, sha256). The worker runs
`prune_expired()` at start and every 24 hours when DOCKYARD_AUDIT_RETENTION_DAYS > 0.
"""

import gzip
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import chain, services
from .models import AuditEvent, AuditPrune

log = logging.getLogger(__name__)

CHUNK = 10_000
PERIOD = timedelta(hours=24)


def archive_dir() -> Path:
    path = Path(settings.AUDIT_ARCHIVE_DIR)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def prune(before: datetime) -> list[AuditPrune]:
    """Archive and delete the rows older than `before`; the prunes made (none: nothing old)."""
    prunes = []
    while (made := _prune_chunk(before)) is not None:
        prunes.append(made)
    return prunes


def _prune_chunk(before: datetime) -> AuditPrune | None:
    with transaction.atomic():
        services.lock_chain()
        # The chain's oldest rows, up to the first one not older than `before` (a clock
        # that went back must not make the prune skip a row it then deletes).
        oldest = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")[:CHUNK]
        rows = list(itertools.takewhile(lambda row: row.time < before, oldest))
        if not rows:
            return None
        lines = [chain.canonical(row) for row in rows]
        first, last = lines[0]["seq"], lines[-1]["seq"]
        name = f"audit-{first}-{last}.jsonl.gz"
        sha256 = _write_archive(archive_dir() / name, lines)
        made = AuditPrune.objects.create(upto_seq=last, last_digest=lines[-1]["digest"],
                                         count=len(lines), archive=name, archive_sha256=sha256)
        AuditEvent.objects.filter(seq__lte=last).delete()
        services.record("audit.prune", actor=None, team=None, obj_type="audit",
                        obj_id=str(last), obj_repr=name,
                        params={"upto_seq": last, "count": len(lines), "archive": name,
                                "sha256": sha256})
    log.info("audit: archived %d rows up to %d in %s", len(lines), last, name)
    return made


def _write_archive(path: Path, lines: list[dict]) -> str:
    """Write the archive durably (temp file, fsync, rename, fsync the directory); its sha256."""
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as archive:
            for line in lines:
                archive.write(json.dumps(line, sort_keys=True, ensure_ascii=False).encode()
                              + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_archive(path: Path):
    """The canonical rows of an archive, in order."""
    with gzip.open(path, "rt", encoding="utf-8") as archive:
        for line in archive:
            yield json.loads(line)


def prune_expired() -> list[AuditPrune]:
    """Apply DOCKYARD_AUDIT_RETENTION_DAYS (0: keep everything)."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return []
    return prune(timezone.now() - timedelta(days=days))


def start_schedule() -> None:
    """The worker's retention: once now, then every PERIOD, in a daemon thread."""
    if settings.AUDIT_RETENTION_DAYS <= 0:
        return

    def loop():
        while True:
            try:
                with services.working_in("system", route="audit retention"):
                    prune_expired()
            except Exception:
                log.exception("audit retention failed; retrying in %s", PERIOD)
            finally:
                connection.close()  # this thread's; a new one in 24 hours
            time.sleep(PERIOD.total_seconds())

    threading.Thread(target=loop, name="dockyard-audit-retention", daemon=True).start()


def verify_archive(path: Path) -> chain.Verdict:
    """Check an archive: its chain (linked to the prune before it), its end and its sha256
    against the `AuditPrune` that made it."""
    path = Path(path)
    made = AuditPrune.objects.filter(archive=path.name).first()
    if made is None:
        return chain.Verdict(0, 0, "", f"{path.name} is not an archive that a prune recorded")
    earlier = (AuditPrune.objects.filter(upto_seq__lt=made.upto_seq).order_by("-upto_seq")
               .first())
    verdict = chain.verify(read_archive(path),
                           first_seq=earlier.upto_seq + 1 if earlier else 1,
                           prev_digest=earlier.last_digest if earlier else "")
    if verdict.problem:
        return verdict
    if (verdict.last_seq, verdict.last_digest) != (made.upto_seq, made.last_digest):
        verdict.problem = (f"it ends at entry {verdict.last_seq}, the prune recorded entry "
                           f"{made.upto_seq}")
    elif file_sha256(path) != made.archive_sha256:
        verdict.problem = "its sha256 differs from the one the prune recorded"
    return verdict
