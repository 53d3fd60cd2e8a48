from django import template

from panel.containers import status

register = template.Library()


@register.filter
def human_size(value):
    return status.human_size(value)


@register.filter
def docker_ago(value):
    """Docker's "2 years ago" wording."""
    return status.ago(value)


@register.filter
def state_class(state):
    """CSS modifier of a state badge (containers and jobs)."""
    return {
        "running": "ok",
        "succeeded": "ok",
        "created": "idle",
        "queued": "idle",
        "exited": "off",
        "paused": "warn",
        "restarting": "warn",
        "removing": "warn",
        "dead": "bad",
        "failed": "bad",
    }.get(state, "idle")


@register.filter
def badge_class(container):
    """A container's badge: an exit with a non-zero code is shown as a failure."""
    if container.state == "exited" and container.exit_code:
        return "badge-bad"
    return f"badge-{state_class(container.state)}"


@register.simple_tag
def job_duration(job, now):
    """How long a job ran (or has been running); empty while it is queued."""
    if job.started is None:
        return ""
    seconds = max(((job.finished or now) - job.started).total_seconds(), 0)
    if seconds < 10:
        text = f"{seconds:.1f} s"
    elif seconds < 60:
        text = f"{seconds:.0f} s"
    else:
        text = f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return text if job.finished else f"{text}…"
