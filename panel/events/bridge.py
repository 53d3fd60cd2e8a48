"""Follow the shims' event stream of this node and record each transition.

The shims XADD to dockyard:events:<node>; a consumer group makes the stream durable, so
events written while no worker runs are recorded when one starts again.
"""

import logging
import socket
import threading

import redis
from django.db import close_old_connections

from panel.containers import observed
from panel.containers.models import Container

log = logging.getLogger(__name__)
GROUP = "bridge"


def stream_key(node_name: str) -> str:
    return f"dockyard:events:{node_name}"


class EventBridge:
    def __init__(self, redis_url: str, node, runtime):
        self.redis = redis.Redis.from_url(redis_url)
        self.node = node
        self.runtime = runtime
        self.key = stream_key(node.name)
        self.consumer = f"{socket.gethostname()}-{threading.get_native_id()}"
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # First what an earlier worker read but never acknowledged, then new events.
        cursor = "0"
        while not self._stopping.is_set():
            try:
                reply = self.redis.xreadgroup(GROUP, self.consumer, {self.key: cursor}, count=100,
                                              block=2000)
            except redis.ConnectionError:
                log.warning("event bridge: Redis unavailable, retrying")
                self._stopping.wait(1)
                continue
            entries = reply[0][1] if reply else []
            if cursor == "0" and not entries:
                cursor = ">"
                continue
            for entry_id, fields in entries:
                self.handle({k.decode(): v.decode() for k, v in fields.items()})
                self.redis.xack(self.key, GROUP, entry_id)

    def handle(self, event: dict) -> None:
        close_old_connections()
        container = Container.objects.filter(pk=event.get("container"), node=self.node).first()
        if container is None:
            return
        try:
            observed.sync(container, self.runtime.state(container.id))
        except Exception:
            log.exception("event bridge: could not record %s", event)
