"""Follow the shims' event stream of this node and record each transition.

The shims XADD to dockyard:events:<node>; a consumer group makes the stream durable, so
events written while no worker runs are recorded when one starts again. Whenever the
stream is quiet, running containers are checked against their state files as well, so a
lost event (Redis was down when the shim wrote it) heals within seconds.
"""

import logging
import threading
import time

import redis
from django.db import close_old_connections

from panel.containers import observed
from panel.containers.models import Container

log = logging.getLogger(__name__)
GROUP = "bridge"
# One worker per node: a fixed consumer name lets a restarted worker pick up the events
# its predecessor read but did not acknowledge.
CONSUMER = "worker"
QUIET_MS = 2000
CHECK_EVERY = 5.0  # seconds between checks of running containers against their state files


def stream_key(node_name: str) -> str:
    return f"dockyard:events:{node_name}"


class EventBridge:
    def __init__(self, redis_url: str, node, runtime):
        self.redis = redis.Redis.from_url(redis_url)
        self.node = node
        self.runtime = runtime
        self.key = stream_key(node.name)
        self._stopping = threading.Event()
        self._checked = 0.0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        cursor = "0"  # first what an earlier worker read but never acknowledged
        while not self._stopping.is_set():
            try:
                cursor = self._step(cursor)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.exception("event bridge: Redis refused a command")
                    self._stopping.wait(1)
                self._create_group()
            except redis.RedisError:
                log.warning("event bridge: Redis unavailable, retrying")
                self._stopping.wait(1)
            except Exception:  # never let one bad event stop the node's bookkeeping
                log.exception("event bridge: unexpected error")
                self._stopping.wait(1)

    def _create_group(self) -> None:
        try:
            self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _step(self, cursor: str) -> str:
        reply = self.redis.xreadgroup(GROUP, CONSUMER, {self.key: cursor}, count=100,
                                      block=QUIET_MS)
        entries = reply[0][1] if reply else []
        if not entries:
            if cursor == ">" and time.monotonic() - self._checked > CHECK_EVERY:
                self.check_running()
            return ">"
        for entry_id, fields in entries:
            self.handle({k.decode(): v.decode() for k, v in fields.items()})
            self.redis.xack(self.key, GROUP, entry_id)
        return cursor

    def handle(self, event: dict) -> None:
        close_old_connections()
        if event.get("exec"):  # an exec'd process exited (workers/runtime/shimexec.py)
            from panel.containers import execs

            execs.finished(event["exec"], int(event.get("exit_code") or 0))
            return
        container = Container.objects.filter(pk=event.get("container"), node=self.node).first()
        if container is not None:
            self._sync(container, event)

    def check_running(self) -> None:
        self._checked = time.monotonic()
        close_old_connections()
        live = (Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING)
        for container in Container.objects.filter(node=self.node, state__in=live):
            self._sync(container)

    def _sync(self, container: Container, event: dict | None = None) -> None:
        try:
            observed.sync(container, self.runtime.state(container.id), event=event)
        except Exception:
            log.exception("event bridge: could not record the state of %s", container.id)
