"""This node's runtime and the worker-side services: reconciliation and the event bridge."""

import functools
import logging
import threading

from django.conf import settings

from workers.runtime.container import Runtime
from workers.runtime.images import ImageStore

log = logging.getLogger(__name__)
_bridge = None
_resolver = None  # the embedded DNS resolver; only the worker's node services run one


@functools.cache
def runtime() -> Runtime:
    from workers.runtime.cgroups import parent_name

    return Runtime(str(settings.STATE_ROOT), node=settings.NODE_NAME, redis_url=settings.REDIS_URL,
                   cgroup_parent=parent_name(settings.RESOURCE_PREFIX),
                   userns_remap=settings.USERNS_REMAP)


@functools.cache
def network():
    """This node's NetworkManager (bridges, veths, netns files, nftables)."""
    from workers.runtime.network import NetworkManager

    return NetworkManager(str(settings.STATE_ROOT), settings.RESOURCE_PREFIX)


def resolver():
    """The worker's embedded DNS resolver (workers/runtime/network/dns.py), None elsewhere."""
    return _resolver


@functools.cache
def image_store() -> ImageStore:
    return ImageStore(str(settings.STATE_ROOT))


def start_services() -> None:
    global _bridge, _resolver
    from panel.events.bridge import EventBridge
    from panel.networks import dns
    from panel.nodes.services import local_node
    from workers.runtime.network.dns import Resolver

    from . import reconcile

    node = local_node()
    runtime().start_launcher()  # so that even the first start skips the interpreter start-up
    reconcile.reconcile_node(node, runtime())
    _resolver = Resolver()
    dns.refresh()  # containers that kept running through a worker restart: names again
    _bridge = EventBridge(settings.REDIS_URL, node, runtime())
    threading.Thread(target=_bridge.run, name="dockyard-event-bridge", daemon=True).start()
    log.info("node %s: reconciled and following shim events", node.name)


def stop_services() -> None:
    if _bridge is not None:
        _bridge.stop()
    if _resolver is not None:
        _resolver.close()
