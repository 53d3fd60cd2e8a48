"""Record what the node observes about a container (state files, shim events) in the database.

Both the job handlers and the event bridge call sync(); it is idempotent, so an event that
arrives twice or after the handler already recorded it changes nothing.
"""

from datetime import UTC, datetime

from django.db import transaction

from panel.audit import services as audit
from panel.errors import Conflict
from panel.events import publish
from panel.networks import dns as names

from . import history, networking
from .models import Container

_RUNTIME_STATES = {
    "created": Container.State.CREATED,
    "running": Container.State.RUNNING,
    "paused": Container.State.PAUSED,
    "restarting": Container.State.RESTARTING,
    "exited": Container.State.EXITED,
    "dead": Container.State.DEAD,
}


def _time(value):
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).replace("Z", "+00:00")
    # Python parses at most microseconds; the shim writes nanoseconds.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = tail[:len(tail) - len(tail.lstrip("0123456789"))]
        zone = tail[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text)


@transaction.atomic
def sync(container: Container, state, event: dict | None = None) -> Container:
    """Bring the row in line with the runtime's ContainerState; publish when it changed.
    `event`: the shim's event that prompted this (its fields name the run it is about, which
    the state file may already have moved past), for the container's history."""
    # image and team: the history's labels and the audit row need them.
    row = (Container.objects.select_for_update(of=("self",)).select_related("image", "team")
           .filter(pk=container.pk).first())
    if row is None or row.state == Container.State.REMOVING:
        return container
    oom_killed = bool(getattr(state, "oom_killed", False))
    seen = {"status": state.status, "started_at": state.started_at,
            "finished_at": state.finished_at, "exit_code": state.exit_code,
            "oom_killed": oom_killed}
    if event:
        code = event.get("exit_code", "")
        told = {"status": event.get("status", ""), "started_at": event.get("started_at", ""),
                "finished_at": event.get("finished_at", ""),
                "exit_code": int(code) if code.lstrip("-").isdigit() else None,
                "oom_killed": event.get("oom_killed") == "1"}
        history.observed(row, **told)
        if told == seen:  # the usual case: the state file tells the same run again
            seen = None
    if seen:
        history.observed(row, **seen)
    new_state = _RUNTIME_STATES.get(state.status, Container.State.DEAD)
    live = new_state in (Container.State.RUNNING, Container.State.PAUSED)
    changes = {
        "state": new_state,
        "pid": state.pid or 0 if live else 0,
        "exit_code": state.exit_code if not live else None,
        "started_at": _time(state.started_at) or row.started_at,
        "finished_at": _time(state.finished_at) if not live else None,
        "error": state.error or "",
        "restart_count": getattr(state, "restart_count", 0),
        "oom_killed": oom_killed,
    }
    if new_state == Container.State.CREATED:
        changes["exit_code"] = row.exit_code
        changes["oom_killed"] = row.oom_killed
    if all(getattr(row, field) == value for field, value in changes.items()):
        return row
    before = row.state
    for field, value in changes.items():
        setattr(row, field, value)
    row.save(update_fields=list(changes))
    if before != row.state:
        audit.record(f"container.{row.state}", actor=None, team=row.team, obj_type="container",
                     obj_id=row.id, obj_repr=row.name, before={"state": before},
                     after={"state": row.state, "exit_code": row.exit_code}, source="system")
    publish.container_state(row)
    stopped = row.state in (Container.State.EXITED, Container.State.DEAD)
    if stopped and row.host_config.get("AutoRemove"):
        # Its removal unplumbs it and refreshes the names (workers.tasks.remove_from_node):
        # doing both here first would only delay the removal `docker run --rm` waits for.
        transaction.on_commit(lambda: _auto_remove(row))
        return row
    if before != row.state and stopped:
        transaction.on_commit(lambda: networking.unplumb(row))  # stopped for good: host ports
    if before != row.state:
        transaction.on_commit(names.refresh)  # who answers to its names changed
    return row


def _auto_remove(container: Container) -> None:
    from . import services

    try:
        services.remove(acting_user=None, container=container, force=True, source="system")
    except (Conflict, Container.DoesNotExist):
        pass  # already being removed


@transaction.atomic
def record_start_failure(container: Container, error: str) -> None:
    # Docker leaves a container whose process could not start in "created", with the error.
    exit_code = 127 if "not found" in error or "no such file" in error else 126
    Container.objects.filter(pk=container.pk).update(error=error, exit_code=exit_code)
    container.error, container.exit_code = error, exit_code
    publish.container_state(container)
    if container.host_config.get("AutoRemove"):
        # Docker removes an auto-remove container whose start failed (`docker run --rm`
        # waits for that removal before it exits).
        transaction.on_commit(lambda: _auto_remove(container))


@transaction.atomic
def removed(container: Container, actor=None) -> None:
    team_id = container.team_id
    history.record(container, "destroy", actor=actor, state="removed")
    Container.objects.filter(pk=container.pk).delete()
    publish.container_removed(container.id, team_id, container.exit_code)
    transaction.on_commit(names.refresh)
