"""The audit log's hash chain: each row's digest is an HMAC over all of its fields, including
its position `seq` and the previous row's digest, so an edited, deleted, inserted or moved
row breaks the chain. The HMAC key is derived from SECRET_KEY (HKDF), so whoever can write
to the database but does not know the key cannot forge a valid chain; a changed SECRET_KEY
makes every row look altered.

Rows are compared in a canonical form (`canonical()`: plain JSON types); an archive of
pruned rows (panel/audit/retention.py) stores exactly that form, so one walker
(`verify()`) checks the database and archives alike. Known limit of any hash chain: rows
cut off the END of the log leave no trace in the rows that remain.
"""

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# The fields a digest covers (besides seq and prev_digest), in the canonical form's names.
CONTENT_FIELDS = ("time", "actor_name", "team", "action", "object_type", "object_id",
                  "object_repr", "params", "before", "after", "source", "address",
                  "user_agent", "outcome", "job", "result")


@functools.cache
def _key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"dockyard audit chain").derive(secret_key.encode())


def canonical(event) -> dict:
    """A row (an AuditEvent, also a migration's historical one) as plain JSON data: what the
    digest covers, plus id, actor id and the digests (an archive line)."""
    return {
        "id": event.id,
        "seq": event.seq,
        "prev_digest": event.prev_digest,
        "digest": event.digest,
        "time": event.time.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor_id,
        "actor_name": event.actor_name,
        "team": event.team_id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "params": event.params,
        "before": event.before,
        "after": event.after,
        "source": event.source,
        "address": event.address,
        "user_agent": event.user_agent,
        "outcome": event.outcome,
        "job": str(event.job) if event.job else None,
        "result": event.result,
    }


def digest(row: dict, *, seq: int | None = None, prev_digest: str | None = None) -> str:
    """The HMAC of a canonical row, optionally as if it stood at another place in the chain."""
    body = {name: row[name] for name in CONTENT_FIELDS}
    body["seq"] = row["seq"] if seq is None else seq
    body["prev_digest"] = row["prev_digest"] if prev_digest is None else prev_digest
    message = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(_key(settings.SECRET_KEY), message.encode(), hashlib.sha256).hexdigest()


def json_value(value):
    """`value` as it comes back from a JSONField (tuples are lists, keys are strings), so that
    the digest computed before the INSERT matches the row read later."""
    return None if value is None else json.loads(json.dumps(value))


@dataclass
class Verdict:
    count: int  # entries checked
    last_seq: int
    last_digest: str
    problem: str = ""  # the first problem found, "" when intact


def verify(rows: Iterable[dict], *, first_seq: int = 1, prev_digest: str = "") -> Verdict:
    """Walk canonical rows in seq order from `first_seq` (whose prev_digest must be
    `prev_digest`) and name the first altered, missing or misplaced entry."""
    rows = iter(rows)
    expected, previous, count = first_seq, None, 0
    for row in rows:
        seq = row["seq"]
        problem = ""
        if seq is None:
            problem = f"row {row['id']} has no sequence number (written outside the application)"
        elif seq > expected:
            problem = _missing(expected, seq)
        elif previous is not None and row["id"] < previous["id"]:
            # Rows moved with their seq: the chain reads fine, the insertion order does not.
            problem = f"entries are out of order at {previous['seq']}"
        elif row["prev_digest"] != prev_digest or digest(row) != row["digest"]:
            # Only on failure: the rest of the walk is needed to tell a move from an edit.
            moved = _misplaced(row, list(rows), seq, prev_digest)
            problem = f"entries are out of order at {seq}" if moved else f"entry {seq} was altered"
        if problem:
            return Verdict(count, expected - 1, prev_digest, problem)
        count += 1
        expected, prev_digest, previous = seq + 1, row["digest"], row
    return Verdict(count, expected - 1, prev_digest)


def _missing(expected: int, found: int) -> str:
    entries = (f"entry {expected} is" if found == expected + 1
               else f"entries {expected} to {found - 1} are")
    if expected == 1:
        return f"{entries} missing (the log starts at entry {found})"
    return f"{entries} missing (entries {expected - 1} and {found} are not linked)"


def _misplaced(row: dict, later: list[dict], seq: int, prev_digest: str) -> bool:
    """Whether the content that belongs at `seq` sits in a later row (rows swapped, with or
    without their digests), rather than having been changed."""
    for other in later:
        for candidate_digest in (other["digest"], row["digest"]):
            if digest(other, seq=seq, prev_digest=prev_digest) == candidate_digest:
                return True
    return False
