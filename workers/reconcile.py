"""At worker start: adopt containers whose shim still runs, mark the rest as exited."""

import logging

from panel.containers import observed
from panel.containers.models import Container

log = logging.getLogger(__name__)


def reconcile_node(node, runtime) -> None:
    known = set()
    for container in Container.objects.filter(node=node).select_related("team"):
        known.add(container.id)
        if container.state == Container.State.REMOVING:
            runtime.remove(container.id, force=True)
            observed.removed(container)
            continue
        if container.id in runtime.list_ids():
            observed.sync(container, runtime.state(container.id))
    # Containers on disk that the database does not know were half-made: remove them.
    for container_id in runtime.list_ids():
        if container_id not in known:
            log.warning("removing unknown container %s from the state root", container_id)
            runtime.remove(container_id, force=True)
