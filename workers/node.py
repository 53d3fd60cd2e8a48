"""This node's runtime and the worker-side services: reconciliation and the event bridge."""

import functools
import logging
import threading

from django.conf import settings

from workers.runtime.container import Runtime
from workers.runtime.images import ImageStore

log = logging.getLogger(__name__)
_bridge = None


@functools.cache
def runtime() -> Runtime:
    from workers.runtime.cgroups import parent_name

    return Runtime(str(settings.STATE_ROOT), node=settings.NODE_NAME, redis_url=settings.REDIS_URL,
                   cgroup_parent=parent_name(settings.RESOURCE_PREFIX),
                   userns_remap=settings.USERNS_REMAP)


@functools.cache
def image_store() -> ImageStore:
    return ImageStore(str(settings.STATE_ROOT))


def start_services() -> None:
    global _bridge
    from panel.events.bridge import EventBridge
    from panel.nodes.services import local_node

    from . import reconcile

    node = local_node()
    runtime().start_launcher()  # so that even the first start skips the interpreter start-up
    reconcile.reconcile_node(node, runtime())
    _bridge = EventBridge(settings.REDIS_URL, node, runtime())
    threading.Thread(target=_bridge.run, name="dockyard-event-bridge", daemon=True).start()
    log.info("node %s: reconciled and following shim events", node.name)


def stop_services() -> None:
    if _bridge is not None:
        _bridge.stop()
