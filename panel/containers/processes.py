"""Read-only numbers about a container that only its node knows: the processes it runs
(`docker top`) and the size of its writable layer (`docker ps -s`). The runtime computes
them; the web and API processes ask through ``node_runtime()``."""

from panel.errors import Conflict, DockyardError


class TopFailed(DockyardError):
    status = 500  # Docker answers unknown ps options with a 500


def node_runtime():
    """The runtime of this node. Single-node build: the web/API process reads the node's
    state root itself; a multi-node build asks the container's node instead (this is
    the one place to change)."""
    from workers import node

    return node.runtime()


def size_rw(container_id: str) -> int:
    """SizeRw of a container (bytes of the files in its writable layer), 0 if unknown."""
    from workers.runtime.container import NotFound as RuntimeNotFound

    try:
        return node_runtime().size(container_id)
    except (RuntimeNotFound, OSError):
        return 0


def processes(container, ps_args: str = "") -> dict:
    """Docker's ContainerTopOKBody ({"Titles", "Processes"}) of a running container:
    Conflict (409) if it is not running, TopFailed (500) for ps options we do not know."""
    from workers.runtime.container import NotFound as RuntimeNotFound
    from workers.runtime.container import NotRunning
    from workers.runtime.procs import PsError

    if not container.is_running:
        raise Conflict(f"Container {container.id} is not running")
    try:
        return node_runtime().top(container.id, ps_args or "")
    except (NotRunning, RuntimeNotFound):
        raise Conflict(f"Container {container.id} is not running") from None
    except PsError as exc:
        raise TopFailed(str(exc)) from None
