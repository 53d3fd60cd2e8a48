import asyncio

from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from panel.audit import services as audit
from panel.events import publish

from .models import Job


def enqueue(kind: str, *, target_type: str, target_id: str, target_repr: str = "",
            actor, team, node, payload: dict | None = None, job_id=None) -> Job:
    """Create a Job and send it to its node's queue once the transaction commits.

    A caller that follows the job's progress passes its own `job_id`, so that it can join
    the job's Channels group before the worker can send anything."""
    job = Job.objects.create(
        **({"id": job_id} if job_id else {}),
        kind=kind,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        actor=actor,
        team=team,
        node=node,
        payload=payload or {},
    )
    publish.job_state(job)
    transaction.on_commit(lambda: _send_task(job))
    return job


def _send_task(job: Job) -> None:
    from workers.celery import app

    app.send_task("workers.tasks.run_job", args=[str(job.id)], queue=job.node.queue)


def mark(job: Job, state: str, *, error: str = "", result: dict | None = None) -> None:
    job.state = state
    now = timezone.now()
    if state == Job.State.RUNNING:
        job.started = now
    if state in Job.TERMINAL:
        job.finished = now
        job.progress = 100 if state == Job.State.SUCCEEDED else job.progress
    job.error = error
    if result is not None:
        job.result = result
    with transaction.atomic():
        job.save(update_fields=["state", "started", "finished", "progress", "error", "result"])
        if state in Job.TERMINAL:
            audit.record_job_finished(job)
    publish.job_state(job)


async def wait_for(job_id, timeout: float = 60.0) -> Job:
    """Wait until a job is terminal; listens on its Channels group, checks the row to close races."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = f"job.{job_id}"
    await layer.group_add(group, channel)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            job = await Job.objects.aget(pk=job_id)
            if job.is_terminal:
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                return job
            try:
                # Re-read the row after every message or every second, whichever first.
                await asyncio.wait_for(layer.receive(channel), timeout=min(remaining, 1.0))
            except TimeoutError:
                pass
    finally:
        await layer.group_discard(group, channel)


def request_cancel(job: Job) -> bool:
    """Ask the worker to stop a running job (its handler polls `cancelled`); False when the
    job has already finished. Permission and audit are the caller's (the job's domain)."""
    updated = Job.objects.filter(pk=job.pk, state__in=[Job.State.QUEUED, Job.State.RUNNING]
                                 ).update(cancel_requested=True)
    return bool(updated)


def cancelled(job_id) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def visible_jobs(user):
    """The jobs of the user's teams (all for site admins)."""
    from panel.teams.services import teams_of

    if user is None or user.is_superuser:
        return Job.objects.all()
    return Job.objects.filter(team__in=teams_of(user))


def resolve(user, job_id, *, kinds: str = "", message: str = "No such job") -> Job:
    """A job the user may see (``kinds``: the kind or its prefix, "image." for every image
    job); another team's job is a NotFound like a missing one."""
    from panel.teams.services import hidden

    jobs = Job.objects.filter(pk=job_id, kind__startswith=kinds)
    found = jobs.filter(pk__in=visible_jobs(user)).select_related("team").first()
    if found is None:
        raise hidden(user, message, obj_type="job", ref=str(job_id), elsewhere=jobs)
    return found
