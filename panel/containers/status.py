"""How Docker words a container's state, age, command and sizes (`docker ps`, the panel)."""

import shlex
from datetime import datetime

from django.utils import timezone


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, which `docker ps` uses: "5 seconds", "About a minute", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "Less than a second"
    return human_duration(max((now - moment).total_seconds(), 0))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`docker ps` CREATED column: "3 seconds ago", "About a minute ago"."""
    if moment is None:
        return ""
    return f"{_since(moment, now or timezone.now())} ago"


def status_text(container, now: datetime | None = None) -> str:
    now = now or timezone.now()
    state = container.state
    if state == "running":
        return f"Up {_since(container.started_at, now)}"
    if state == "paused":
        return f"Up {_since(container.started_at, now)} (Paused)"
    if state == "restarting":
        return f"Restarting ({container.exit_code or 0}) {_since(container.finished_at, now)} ago"
    if state == "exited":
        code = container.exit_code if container.exit_code is not None else 0
        if container.finished_at is None:
            return f"Exited ({code})"
        return f"Exited ({code}) {_since(container.finished_at, now)} ago"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    return "Created"


def human_size(size: int) -> str:
    """go-units HumanSize (decimal units), as `docker images` shows sizes."""
    value = float(size or 0)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            text = f"{value:.4g}"
            return f"{text}{unit}"
        value /= 1000
    return f"{size}B"


def command_of(container, image_config: dict | None) -> str:
    """Entrypoint plus command as the container will run it (an image's Cmd is dropped when
    the container overrides the entrypoint, as Docker does)."""
    image_config = image_config or {}
    entrypoint = container.entrypoint if container.entrypoint is not None else (
        image_config.get("Entrypoint") or []
    )
    if container.cmd is not None:
        cmd = container.cmd
    elif container.entrypoint is not None:
        cmd = []
    else:
        cmd = image_config.get("Cmd") or []
    return shlex.join([*(entrypoint or []), *(cmd or [])])
