"""Thin tasks: load the job, call the runtime, record what the node now observes."""

import logging

from celery import shared_task
from django.db import close_old_connections

from panel.audit import services as audit
from panel.containers import history, networking, observed
from panel.containers import resources as limits
from panel.containers.models import Container
from panel.containers.specs import runtime_spec
from panel.errors import Conflict, DockyardError
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.networks import dns as names
from panel.networks import services as networks
from panel.volumes import services as volumes
from workers import node
from workers.build_tasks import BUILD_HANDLERS
from workers.image_tasks import IMAGE_HANDLERS
from workers.runtime.container import RuntimeError_, StartError
from workers.runtime.images import ImageError
from workers.runtime.network.types import NetworkConfig, NetworkError
from workers.runtime.spec import SpecError

log = logging.getLogger(__name__)


@shared_task(name="workers.tasks.run_job", acks_late=True)
def run_job(job_id: str) -> None:
    close_old_connections()
    with audit.working_in("system", route="workers.tasks.run_job"):
        _run_job(job_id)


def _run_job(job_id: str) -> None:
    job = Job.objects.select_related("node", "team").get(pk=job_id)
    if job.is_terminal:  # a redelivered message: the work is done
        return
    if job.cancel_requested:  # cancelled while it waited in the queue
        jobs.mark(job, Job.State.FAILED, error="cancelled")
        return
    jobs.mark(job, Job.State.RUNNING)
    try:
        result = HANDLERS[job.kind](job)
    except (DockyardError, RuntimeError_, SpecError, NetworkError, ImageError, OSError,
            ValueError) as exc:
        log.warning("job %s %s failed: %s", job.id, job.kind, exc)
        # An error that knows its HTTP status (a registry's 401/404) hands it to the API.
        status = getattr(exc, "http_status", None) or getattr(exc, "status", None)
        result = {"status": status} if isinstance(status, int) else {}
        if isinstance(getattr(exc, "code", None), int):  # a failed build's RUN exit code
            result["code"] = exc.code
        jobs.mark(job, Job.State.FAILED, error=str(exc), result=result or None)
    except Exception as exc:
        log.exception("job %s %s crashed", job.id, job.kind)
        jobs.mark(job, Job.State.FAILED, error=f"internal error: {exc}")
    else:
        jobs.mark(job, Job.State.SUCCEEDED, result=result or {})


def _container(job: Job) -> Container:
    return Container.objects.select_related("image", "team", "node").get(pk=job.target_id)


def _create(container: Container) -> None:
    """The runtime's config (and the name files: hosts, resolv.conf) from the row."""
    store = node.image_store()
    layers = [store.layer_dir(diff_id) for diff_id in container.image.layers]
    node.runtime().create(runtime_spec(container, layers))


def start_container(job: Job) -> dict:
    return {"pid": start_on_node(_container(job))}


def start_on_node(container: Container) -> int:
    """Start a container row on this node: its runtime config, its network, its names, its
    process (also a build's RUN step, workers/build_tasks.py). Returns the pid."""
    rt = node.runtime()
    _create(container)
    try:
        networking.plumb(container)  # bridge, netns, veths, host ports
        names.refresh(starting=container.id)  # 127.0.0.11 answers before its process runs
        pid = rt.start(container.id)
    except (StartError, Conflict) as exc:
        networking.unplumb(container)
        names.refresh()  # not served: it does not run
        observed.record_start_failure(container, str(exc))
        raise
    observed.sync(container, rt.state(container.id))
    return pid


def stop_container(job: Job) -> dict:
    container = _container(job)
    rt = node.runtime()
    rt.stop(container.id, timeout=job.payload.get("timeout"))
    observed.sync(container, rt.state(container.id))
    history.record(_container(job), "stop", actor=job.actor, state="exited")
    return {}


def pause_container(job: Job) -> dict:
    container = _container(job)
    rt = node.runtime()
    rt.pause(container.id)
    history.record(container, "pause", actor=job.actor, state="paused")
    observed.sync(container, rt.state(container.id))
    return {}


def unpause_container(job: Job) -> dict:
    container = _container(job)
    rt = node.runtime()
    rt.unpause(container.id)
    history.record(container, "unpause", actor=job.actor, state="running")
    observed.sync(container, rt.state(container.id))
    return {}


def restart_container(job: Job) -> dict:
    container = _container(job)
    rt = node.runtime()
    if container.id in rt.list_ids() and rt.state(container.id).alive:
        rt.stop(container.id, timeout=job.payload.get("timeout"))
        observed.sync(container, rt.state(container.id))
        history.record(container, "stop", actor=job.actor, state="exited")
    result = start_container(job)
    history.record(_container(job), "restart", actor=job.actor)
    return result


def kill_container(job: Job) -> dict:
    container = _container(job)
    node.runtime().kill(container.id, job.payload["signal"])
    return {}


def remove_container(job: Job) -> dict:
    try:
        container = _container(job)
    except Container.DoesNotExist:
        return {}
    remove_from_node(container, actor=job.actor,
                     anonymous_volumes=bool(job.payload.get("volumes")
                                            or container.host_config.get("AutoRemove")))
    return {}


def remove_from_node(container: Container, *, actor, anonymous_volumes: bool) -> None:
    """Kill and remove a container on this node, its network and its row; with
    ``anonymous_volumes`` (rm -v, --rm, a build step) also its anonymous volumes."""
    node.runtime().remove(container.id, force=True)
    networking.unplumb(container)
    observed.removed(container, actor=actor)
    if anonymous_volumes:
        for name in volumes.release_anonymous(container, actor=actor):
            volumes.store().remove(name)


def update_container(job: Job) -> dict:
    """docker update: the new limits in a running container's cgroup, then on the row."""
    container = _container(job)
    host_config = {**container.host_config, **job.payload["host_config"]}
    rt = node.runtime()
    if container.is_running and container.id in rt.list_ids():
        rt.update(container.id, limits.runtime_resources(host_config))
    limits.record_update(container, host_config, actor=job.actor)
    return {}


def create_volume(job: Job) -> dict:
    return {"mountpoint": volumes.store().create(job.payload["name"], job.payload["options"])}


def remove_volume(job: Job) -> dict:
    volumes.store().remove(job.payload["name"])
    return {}


def create_network(job: Job) -> dict:
    """network.create (and a changed policy): the bridge and its rules; idempotent."""
    node.network().ensure_network(NetworkConfig(**job.payload["network"]))
    return {}


def remove_network(job: Job) -> dict:
    node.network().remove_network(NetworkConfig(**job.payload["network"]))
    return {}


def connect_network(job: Job) -> dict:
    """A running container joins one more network (a stopped one does at its next start)."""
    container = _container(job)
    endpoint = networks.endpoint_from_payload(job.payload["endpoint"])
    if container.is_running:
        node.network().ensure_network(endpoint.network)
        node.network().connect(container.id, endpoint)
        _names_changed(container)
    return {}


def disconnect_network(job: Job) -> dict:
    endpoint = networks.endpoint_from_payload(job.payload["endpoint"])
    node.network().disconnect(job.target_id, endpoint)
    container = Container.objects.filter(pk=job.target_id).first()
    if container is not None and container.is_running:
        _names_changed(container)
    return {}


def _names_changed(container: Container) -> None:
    """A running container's networks changed: its /etc/hosts and resolv.conf (rewritten
    in place, as Docker does) and the embedded resolver's views."""
    _create(container)
    names.refresh()


HANDLERS = {
    "container.start": start_container,
    "container.stop": stop_container,
    "container.kill": kill_container,
    "container.remove": remove_container,
    "container.pause": pause_container,
    "container.unpause": unpause_container,
    "container.restart": restart_container,
    "container.update": update_container,
    "volume.create": create_volume,
    "volume.remove": remove_volume,
    "network.create": create_network,
    "network.remove": remove_network,
    "network.connect": connect_network,
    "network.disconnect": disconnect_network,
    **IMAGE_HANDLERS,
    **BUILD_HANDLERS,
}
