"""At worker start: adopt containers whose shim still runs, record how the others ended, and
bring back the containers whose restart policy says so (`always`; `unless-stopped` unless
it was stopped through Dockyard), as Docker does when its daemon starts."""

import logging

from panel.containers import observed
from panel.containers.models import Container
from workers.runtime.container import ContainerState

log = logging.getLogger(__name__)


def reconcile_node(node, runtime) -> None:
    on_disk = set(runtime.list_ids())
    known = set()
    for container in Container.objects.filter(node=node).select_related("team"):
        known.add(container.id)
        if container.state == Container.State.REMOVING:
            # A removal was interrupted: finish it.
            runtime.remove(container.id, force=True)
            observed.removed(container)
        elif container.id in on_disk:
            state = runtime.state(container.id)
            observed.sync(container, state)
            if _should_restart(container, state):
                _restart(container, runtime)
        elif container.is_running:
            observed.sync(container, ContainerState(container.id, "dead", error="state lost"))
    # What the database does not know was half-made by a failed job: remove it.
    for container_id in on_disk - known:
        log.warning("removing unknown container %s from the state root", container_id)
        runtime.remove(container_id, force=True)
    _reconcile_networks(node)


def _reconcile_networks(node) -> None:
    """The bridges of the database's networks exist; links, netns files and rules of no
    network and no running container are removed."""
    from panel.containers import networking
    from panel.networks import services as networks

    networks.ensure_defaults(node)
    configs = [networks.network_config(n) for n in networks.bridge_networks(node)]
    live = {c.id: [networks.runtime_endpoint(e) for e in networks.endpoints_of(c)]
            for c in Container.objects.filter(node=node) if c.is_running}
    manager = networking.node_network()
    for stray in manager.reconcile(configs, live):
        log.info("removed stray network object %s", stray)
    for config in configs:
        manager.ensure_network(config)


def _should_restart(container, state) -> bool:
    from panel.containers.specs import restart_policy

    if state.alive or state.status not in ("exited", "dead") or not state.started_at:
        return False  # running (its shim lives), or never started
    try:
        name = restart_policy(container.host_config)[0]
    except Exception:  # noqa: BLE001 - a stored policy that no longer validates: leave it
        return False
    return name == "always" or (name == "unless-stopped" and not state.manual_stop)


def _restart(container, runtime) -> None:
    from panel.containers import networking
    from panel.containers.specs import runtime_spec
    from panel.errors import Conflict
    from workers import node
    from workers.runtime.container import RuntimeError_
    from workers.runtime.network.types import NetworkError
    from workers.runtime.spec import SpecError

    log.info("restarting %s (%s): its restart policy says so", container.name, container.id)
    try:
        store = node.image_store()
        layers = [store.layer_dir(diff_id) for diff_id in container.image.layers]
        runtime.create(runtime_spec(container, layers))
        networking.plumb(container)
        runtime.start(container.id)
    except (RuntimeError_, SpecError, OSError, Conflict, NetworkError) as exc:
        log.warning("could not restart %s: %s", container.id, exc)
        observed.record_start_failure(container, str(exc))
        return
    observed.sync(container, runtime.state(container.id))
