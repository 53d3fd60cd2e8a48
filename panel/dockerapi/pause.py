"""POST /containers/{id}/pause, /unpause and /restart: thin views over the services."""

from asgiref.sync import sync_to_async
from django.http import HttpResponse

from panel.containers import services
from panel.errors import Conflict, DockyardError
from panel.jobs import services as jobs
from panel.jobs.models import Job

from .common import endpoint, qint

JOB_TIMEOUT = 120.0


async def _run(job: Job, timeout: float = JOB_TIMEOUT, failed=Conflict) -> None:
    job = await jobs.wait_for(job.id, timeout=timeout)
    if job.state == Job.State.FAILED:
        raise failed(job.error or f"{job.kind} failed")
    if not job.is_terminal:
        raise DockyardError(f"timed out after {timeout:.0f}s waiting for {job.kind} on the node")


async def _pause(request, ref):
    container = await sync_to_async(services.resolve)(request.user, ref)
    job = await sync_to_async(services.pause)(acting_user=request.user, container=container)
    await _run(job)
    return HttpResponse(status=204)


async def _unpause(request, ref):
    container = await sync_to_async(services.resolve)(request.user, ref)
    job = await sync_to_async(services.unpause)(acting_user=request.user, container=container)
    await _run(job)
    return HttpResponse(status=204)


async def _restart(request, ref):
    from .containers import _start_failed

    container = await sync_to_async(services.resolve)(request.user, ref)
    timeout = qint(request, "t")
    job = await sync_to_async(services.restart)(acting_user=request.user, container=container,
                                                timeout=timeout)
    await _run(job, timeout=JOB_TIMEOUT + max(timeout or 0, 0), failed=_start_failed)
    return HttpResponse(status=204)


container_pause = endpoint(POST=_pause)
container_unpause = endpoint(POST=_unpause)
container_restart = endpoint(POST=_restart)
