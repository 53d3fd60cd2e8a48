"""Push state transitions to browsers and API waiters, after the transaction commits.

Sends go through one event loop thread per process, in order, without making the caller
wait: a sync group_send through async_to_sync costs a new loop and Redis connection each
time (about 5 ms), and a start or a removal sends half a dozen messages.
"""

import asyncio
import atexit
import logging
import os
import threading

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


class _Sender:
    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._loop = None
        self._queue = None

    def _start(self) -> None:
        # Also after a fork: the child inherits no thread, so it starts its own.
        self._pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._queue = asyncio.Queue()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="dockyard-publish", daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(ready.set)
        self._loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            groups, message = await self._queue.get()
            try:
                for group in groups:
                    await layer.group_send(group, message)
            except Exception:  # the database holds the truth; a reload shows it
                log.warning("could not push %s to %s", message.get("type"), groups, exc_info=True)
            finally:
                self._queue.task_done()

    def send(self, groups: list[str], message: dict) -> None:
        if get_channel_layer() is None:
            return
        with self._lock:
            if self._pid != os.getpid():
                self._start()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (groups, message))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything sent so far has gone out (short-lived processes)."""
        if self._pid != os.getpid():
            return
        future = asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop)
        try:
            future.result(timeout)
        except Exception:
            log.warning("pushes still pending at exit")


_sender = _Sender()
atexit.register(_sender.flush)


def on_commit_send(groups: list[str], message: dict) -> None:
    transaction.on_commit(lambda: _sender.send(groups, message))


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


def container_removed(container_id: str, team_id: int, exit_code: int | None = None) -> None:
    # The exit code rides along: `docker run --rm` waits for the removal and exits with it.
    on_commit_send(
        [f"container.{container_id}", f"team.{team_id}"],
        {"type": "container.removed", "id": container_id, "exit_code": exit_code},
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


def job_progress(job_id, event: dict) -> None:
    """A step of a long job (a layer's download, a load's image) for its live followers: the
    panel's progress bars and the Docker API's JSON progress stream. Sent at once, as the
    worker makes progress outside any transaction; the job's result keeps the final truth."""
    _sender.send([f"job.{job_id}"], {"type": "job.progress", "id": str(job_id), "event": event})


def audit_event(event) -> None:
    """A new audit row, for the audit page's live tail (groups `audit.all` for site admins
    and `audit.team.<id>` for the team's auditors and owners); the page reloads the row."""
    groups = ["audit.all"] + ([f"audit.team.{event.team_id}"] if event.team_id else [])
    on_commit_send(groups, {"type": "audit.event", "id": event.pk, "team_id": event.team_id})
