"""A team's storage quota: the image layers its images hold on the node.

`Team.storage_quota` (bytes; null = no limit) is set by a team admin on the team's policy
page (or a site admin in the Django admin); like the container quotas
(panel/containers/quotas.py) it binds everyone acting in the team, site admins included.
A team's usage is the uncompressed size of the distinct layers of its images; a layer
counts once per team however many of its images share it, and not at all when a shared
image (no team: the node's base images) holds it too. Checked by the worker before an
image is recorded: each build step, and pull, load, import and commit. A refusal fails the
job with a 403 (its `job.finished` audit row has the outcome "denied").
"""

from panel.containers.policy import Forbidden

from . import services
from .models import Image


class StorageQuotaExceeded(Forbidden):
    """403: the team's images would hold more bytes than its quota."""


def _layers(images) -> set[str]:
    return {d for layers in images.values_list("layers", flat=True) for d in layers}


def usage(team) -> int:
    """Bytes of the distinct layers of the team's images on this node (but the shared
    images')."""
    counted = _layers(Image.objects.filter(team=team)) - \
        _layers(Image.objects.filter(team__isnull=True))
    return sum(services._layer_size(d) for d in counted)


def new_bytes(team, diff_ids) -> int:
    """What recording an image of these layers would add to the team's usage."""
    held = _layers(Image.objects.filter(team=team) | Image.objects.filter(team__isnull=True))
    return sum(services._layer_size(d) for d in set(diff_ids) - held)


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.4g}{unit}"
        size /= 1000
    return f"{size:.4g}TB"


def check_storage(team, adding_bytes: int) -> None:
    """Raise StorageQuotaExceeded when ``adding_bytes`` more would not fit in the quota."""
    if team is None or team.storage_quota is None:
        return
    used = usage(team)
    if used + adding_bytes > team.storage_quota:
        raise StorageQuotaExceeded(
            f"storage quota of team {team.name} exceeded: {_human(used)} used, "
            f"{_human(adding_bytes)} more asked, quota {_human(team.storage_quota)}")


def check_image(team, diff_ids) -> None:
    """check_storage for an image made of these layers (those the team holds are free)."""
    if team is not None and team.storage_quota is not None:
        check_storage(team, new_bytes(team, diff_ids))
