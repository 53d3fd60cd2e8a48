"""At worker start: adopt containers whose shim still runs, record how the others ended."""

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
            observed.sync(container, runtime.state(container.id))
        elif container.is_running:
            observed.sync(container, ContainerState(container.id, "dead", error="state lost"))
    # What the database does not know was half-made by a failed job: remove it.
    for container_id in on_disk - known:
        log.warning("removing unknown container %s from the state root", container_id)
        runtime.remove(container_id, force=True)
