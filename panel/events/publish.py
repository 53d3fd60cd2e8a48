"""Push state transitions to browsers and API waiters, after the transaction commits."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    try:
        for group in groups:
            send(group, message)
    except Exception:  # the database holds the truth; a reload shows it even if a push is lost
        log.warning("could not push %s to %s", message.get("type"), groups, exc_info=True)


def on_commit_send(groups: list[str], message: dict) -> None:
    transaction.on_commit(lambda: _send(groups, message))


def container_state(container) -> None:
    on_commit_send(
        [f"container.{container.id}", f"team.{container.team_id}"],
        {
            "type": "container.state",
            "id": container.id,
            "name": container.name,
            "state": container.state,
            "exit_code": container.exit_code,
            "error": container.error,
        },
    )


def container_removed(container_id: str, team_id: int) -> None:
    on_commit_send(
        [f"container.{container_id}", f"team.{team_id}"],
        {"type": "container.removed", "id": container_id},
    )


def job_state(job) -> None:
    on_commit_send(
        [f"job.{job.id}", f"team.{job.team_id}"],
        {
            "type": "job.state",
            "id": str(job.id),
            "kind": job.kind,
            "state": job.state,
            "error": job.error,
            "target_id": job.target_id,
        },
    )
