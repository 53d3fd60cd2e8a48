"""The audit log: every row goes through `record` (or `note_refusal`, `record_job_finished`).

A row is complete before its INSERT (seq, time and the HMAC digest of panel/audit/chain.py)
and never changes after it: the database's triggers refuse UPDATE and DELETE
(panel/audit/triggers.py). params/before/after/result are redacted (panel/audit/redact.py).
"""

import contextlib
import os
import uuid

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from panel.events import publish

from . import chain, context
from .models import AuditEvent, AuditPrune
from .redact import redact


def record(
    action: str,
    *,
    actor,
    team,
    obj_type: str,
    obj_id: str,
    obj_repr: str = "",
    before=None,
    after=None,
    source: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    params=None,
    job=None,
    result=None,
) -> AuditEvent:
    """Append one row to the hash-chained audit log, inside the caller's transaction.
    `source`, the address and the user agent default to the bound context's."""
    bound = context.current()
    address = bound.address if bound else None
    event = AuditEvent(
        actor=actor,
        actor_name=actor.get_username() if actor else _nobody(bound),
        team=team,
        action=action,
        object_type=obj_type,
        object_id="" if obj_id is None else str(obj_id)[:64],
        object_repr=(obj_repr or "")[:200],
        params=chain.json_value(redact(params)),
        before=chain.json_value(redact(before)),
        after=chain.json_value(redact(after)),
        source=source or (bound.interface if bound else ""),
        # As the field will store it (an IPv6 address is normalized), for the digest.
        address=AuditEvent._meta.get_field("address").get_prep_value(address) or None,
        user_agent=bound.user_agent if bound else "",
        outcome=outcome,
        job=uuid.UUID(str(job)) if job else None,  # as the field gives it back
        result=chain.json_value(redact(result)),
    )
    with transaction.atomic():
        lock_chain()
        last_seq, event.prev_digest = _chain_end()
        event.seq = last_seq + 1
        event.time = timezone.now()
        event.digest = chain.digest(chain.canonical(event))
        event.save(force_insert=True)
        publish.audit_event(event)
    return event


def _nobody(bound) -> str:
    """The actor of a row without a user: an anonymous client of a request (a failed
    sign-in), else Dockyard itself."""
    return "anonymous" if bound and bound.interface in ("panel", "api") else "system"


def lock_chain() -> None:
    """Serialize writers of the chain, so two cannot take the same seq. SQLite: the
    transaction is IMMEDIATE (panel/settings.py), it holds the database's write lock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {AuditEvent._meta.db_table} IN EXCLUSIVE MODE")


def _chain_end() -> tuple[int, str]:
    """(seq, digest) of the chain's last entry: the last row, or the last prune's end."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "digest").first()
    if last is None or last[0] is None:
        prune = AuditPrune.objects.order_by("-upto_seq").first()
        return (prune.upto_seq, prune.last_digest) if prune else (0, "")
    return last


def verify_log() -> chain.Verdict:
    """Walk the chain in the database, from its start or from the last prune's end."""
    prune = AuditPrune.objects.order_by("-upto_seq").first()
    rows = AuditEvent.objects.order_by(F("seq").asc(nulls_first=True))
    if prune:
        rows = rows.filter(Q(seq__isnull=True) | Q(seq__gt=prune.upto_seq))
    verdict = chain.verify((chain.canonical(row) for row in rows.iterator(chunk_size=2000)),
                           first_seq=prune.upto_seq + 1 if prune else 1,
                           prev_digest=prune.last_digest if prune else "")
    # A forged AuditPrune (to excuse deleted rows) has no HMAC-covered `audit.prune` row.
    if not verdict.problem and prune and not AuditEvent.objects.filter(
            action="audit.prune", params__upto_seq=prune.upto_seq,
            params__sha256=prune.archive_sha256).exists():
        verdict.problem = (f"the prune up to entry {prune.upto_seq} is not recorded in the "
                           "chain")
    return verdict


def note_refusal(message: str, *, actor, team, action: str, obj_type: str = "",
                 obj_id: str = "", obj_repr: str = "", params=None) -> None:
    """Audit a refusal (outcome "denied"): permission.denied, policy.denied, quota.exceeded,
    object.hidden. Inside a transaction (which the refusal usually rolls back) the row waits
    on the bound context until `flush()`; outside one it is written at once. Inside a
    transaction with no bound context, there is nobody to flush it: it is written in that
    transaction, best effort (lost if the transaction rolls back)."""
    bound = context.current()
    row = {
        "action": action, "actor": actor, "team": team, "obj_type": obj_type,
        "obj_id": obj_id, "obj_repr": obj_repr,
        "params": {**({"route": bound.route} if bound and bound.route else {}),
                   **(params or {})},
        "result": {"message": message},
    }
    if bound is not None and connection.in_atomic_block:
        bound.refusals.append(row)
    else:
        _write_refusal(row)


def flush() -> None:
    """Write the bound context's pending refusals (call when the request's work is done)."""
    bound = context.current()
    if bound is None:
        return
    while bound.refusals:
        _write_refusal(bound.refusals.pop(0))


def _write_refusal(row: dict) -> None:
    record(row["action"], actor=row["actor"], team=row["team"], obj_type=row["obj_type"],
           obj_id=row["obj_id"], obj_repr=row["obj_repr"], params=row["params"],
           result=row["result"], outcome=AuditEvent.Outcome.DENIED)


def record_job_finished(job) -> AuditEvent:
    """The row of a job that reached a terminal state (called by jobs.services.mark)."""
    from panel.jobs.models import Job

    if job.state == Job.State.SUCCEEDED:
        outcome = AuditEvent.Outcome.SUCCESS
    elif (job.result or {}).get("status") == 403:  # the HTTP status the job's error carries
        outcome = AuditEvent.Outcome.DENIED
    else:
        outcome = AuditEvent.Outcome.FAILED
    return record("job.finished", actor=job.actor, team=job.team, obj_type=job.target_type,
                  obj_id=job.target_id, obj_repr=job.target_repr, source="system",
                  outcome=outcome, job=job.id, params={"kind": job.kind},
                  result={"state": job.state, "error": job.error, **(job.result or {})})


@contextlib.contextmanager
def working_in(interface: str, *, route: str, user_agent: str = ""):
    """Bind a context for work that is not a panel or API request (a job, a command, the
    retention), and write its pending refusals when it ends."""
    with context.bound(interface, user_agent=user_agent, route=route) as bound:
        try:
            yield bound
        finally:
            flush()


def command_context(name: str):
    """For management commands: the "command" interface, the OS user in the user agent."""
    return working_in("command", route=name, user_agent=f"manage.py {name} (uid {os.getuid()})")
