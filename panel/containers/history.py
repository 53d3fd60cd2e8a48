"""A container's history: one ContainerEvent row per lifecycle event, in Docker's vocabulary.

The services record what users ask for (create, kill, stop, restart, rename, ...), the
observed-state code records what the node reports (start, die, pause, unpause, destroy).
Rows are written in the caller's transaction and pushed on commit to the Channels groups
`events.all` and `events.team.<id>` (the Docker API's `GET /events` follows them; a
reload of the container page shows the same rows). Transitions the node reports carry a
natural key (the run's start or finish time), so the same transition seen twice (the job
handler and the event bridge, a redelivered event) is recorded once.
"""

import secrets
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from panel.events.publish import on_commit_send

from .models import ContainerEvent

ALL_GROUP = "events.all"


def team_group(team_id) -> str:
    return f"events.team.{team_id}"


def parse_time_ns(value) -> int | None:
    """RFC3339Nano (as the shim writes it) -> Unix nanoseconds; None if empty or bad."""
    if not value:
        return None
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    frac, zone = "", ""
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, zone = rest[:digits], rest[digits:]
    else:
        for sign in ("+", "-"):
            if sign in head[10:]:
                i = head.rindex(sign)
                head, zone = head[:i], head[i:]
                break
    try:
        base = datetime.fromisoformat(head + (zone or "+00:00"))
    except ValueError:
        return None
    return int(base.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000)


def _now_ns() -> int:
    import time

    return time.time_ns()


def record(container, action: str, *, actor=None, state: str | None = None,
           exit_code: int | None = None, attributes: dict | None = None,
           time_ns: int | None = None, key: str | None = None) -> ContainerEvent | None:
    """Record one event of `container` (a Container row); None if it was already recorded
    (same action and key)."""
    ns = time_ns or _now_ns()
    # Docker puts the container's labels among the Actor's attributes
    attrs = {str(k): str(v) for k, v in {**_labels(container), **(attributes or {})}.items()}
    try:
        with transaction.atomic():
            event = ContainerEvent.objects.create(
                container_id=container.id, name=container.name, image=container.image_ref,
                team_id=container.team_id, action=action,
                state=state if state is not None else container.state, exit_code=exit_code,
                actor=actor if getattr(actor, "pk", None) else None, attributes=attrs,
                time=_from_ns(ns), time_nano=ns, key=key or secrets.token_hex(16))
    except IntegrityError:
        return None
    message = {"type": "container.event", "pk": event.pk, "team_id": container.team_id,
               "event": docker_shape(event)}
    on_commit_send([ALL_GROUP, team_group(container.team_id)], message)
    return event


def _labels(container) -> dict:
    try:
        image_labels = container.image.run_config.get("Labels") or {}
    except Exception:  # noqa: BLE001 - the image may be gone; the container's own labels stay
        image_labels = {}
    return {**image_labels, **(container.labels or {})}


def docker_shape(event: ContainerEvent) -> dict:
    """The event as the Docker Engine API (v1.41) streams it from GET /events."""
    attributes = {**event.attributes, "image": event.image, "name": event.name}
    if event.action == "die" and event.exit_code is not None:
        attributes["exitCode"] = str(event.exit_code)
    return {
        "status": event.action,
        "id": event.container_id,
        "from": event.image,
        "Type": "container",
        "Action": event.action,
        "Actor": {"ID": event.container_id, "Attributes": attributes},
        "scope": "local",
        "time": event.time_nano // 1_000_000_000,
        "timeNano": event.time_nano,
    }


def observed(container, status: str, *, started_at="", finished_at="", exit_code=None,
             oom_killed=False) -> None:
    """Record what a runtime state (or a shim event) tells: the run that started at
    `started_at` ("start") and the run that ended at `finished_at` ("die", after "oom" when
    the OOM killer struck in it, as dockerd orders them). Pause and unpause are recorded by
    the tasks that do them."""
    start_ns = parse_time_ns(started_at)
    if start_ns and status in ("running", "paused", "restarting", "exited", "dead"):
        record(container, "start", state="running", time_ns=start_ns, key=f"run:{started_at}")
    finish_ns = parse_time_ns(finished_at)
    if finish_ns and status in ("restarting", "exited", "dead") and (
            not start_ns or finish_ns >= start_ns):
        if oom_killed:
            record(container, "oom", state=status, time_ns=finish_ns, key=f"oom:{finished_at}")
        record(container, "die", state=status, exit_code=exit_code, time_ns=finish_ns,
               key=f"end:{finished_at}")


def for_container(container_id: str, limit: int = 50) -> list[ContainerEvent]:
    """The latest events of a container, newest first."""
    return list(ContainerEvent.objects.filter(container_id=container_id)
                .select_related("actor").order_by("-time_nano", "-id")[:limit])
