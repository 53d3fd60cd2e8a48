import os
import re
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q

from panel.audit import services as audit
from panel.errors import NotFound
from panel.teams.services import teams_of

from . import references
from .models import Image, ImageTag

_HEX_PREFIX = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")


def visible_images(user):
    if user is None or user.is_superuser:
        return Image.objects.all()
    # Images without a team (the node's base images) are shared by everyone.
    return Image.objects.filter(Q(team__isnull=True) | Q(team__in=teams_of(user)))


def resolve(user, ref: str) -> Image:
    """An image by tag, full id, or unique id prefix (Docker's lookup order)."""
    images = visible_images(user)
    try:
        parsed = references.parse(ref)
    except Exception:
        parsed = None
    if parsed:
        tag = (
            ImageTag.objects.filter(repository=parsed.repository, tag=parsed.tag, image__in=images)
            .select_related("image")
            .first()
        )
        if tag:
            return tag.image
    if _HEX_PREFIX.match(ref):
        hex_id = ref.removeprefix("sha256:")
        matches = list(images.filter(id__startswith=hex_id)[:2])
        if len(matches) == 1:
            return matches[0]
    raise NotFound(f"No such image: {ref}")


@transaction.atomic
def register_image(*, config: dict, image_id: str, layers: list[str], size: int, node, team=None,
                   tags: list[str] = (), acting_user=None, source: str = "system") -> Image:
    """Record an image that the node's store holds, and point the given tags at it."""
    created = config.get("created")
    created_at = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else datetime.now(UTC)
    image, _ = Image.objects.update_or_create(
        id=image_id,
        defaults={"config": config, "layers": layers, "size": size, "node": node, "team": team,
                  "created": created_at},
    )
    for ref in tags:
        parsed = references.parse(ref)
        ImageTag.objects.update_or_create(
            repository=parsed.repository, tag=parsed.tag, defaults={"image": image}
        )
        audit.record("image.tag", actor=acting_user, team=team, obj_type="image", obj_id=image_id,
                     obj_repr=str(parsed), after={"tag": str(parsed)}, source=source)
    return image


def build_busybox(*, node, busybox_path: str, tags: list[str]) -> Image:
    """Build the base image from the host's static busybox into the node's store."""
    import io

    from workers.runtime.images import ImageStore, build_busybox_layer, busybox_image_config

    store = ImageStore(node.state_root)
    layer = build_busybox_layer(busybox_path)
    diff_id = store.add_layer_tar(io.BytesIO(layer))
    config = busybox_image_config(diff_id)
    # The image is as old as the busybox it packs (stable per package version, so is the id).
    built = datetime.fromtimestamp(int(os.stat(busybox_path).st_mtime), UTC)
    config["created"] = built.strftime("%Y-%m-%dT%H:%M:%SZ")
    for entry in config.get("history", []):
        entry["created"] = config["created"]
    image_id = store.put_config(config)
    return register_image(config=config, image_id=image_id, layers=[diff_id],
                          size=len(layer), node=node, tags=tags)


# -- the images issue: contracts (bodies by helper C; see /work/notes/images.md) -----------
# Every function takes the acting user first, checks permission, writes the audit row and,
# for node work, creates a Job (jobs.enqueue) whose handler lives in workers/image_tasks.py.
# `source` is the interface ("panel", "api", "command") for the audit row. `auth` is Docker's
# X-Registry-Auth JSON ({"username", "password", "serveraddress"} or {"identitytoken"}); it
# travels to the worker sealed (panel/images/credentials.py), never in clear in a Job row.


def pull(user, ref: str, *, team=None, auth: dict | None = None, platform: str = "",
         source: str = "panel", job_id=None):
    """Job `image.pull`. Progress: Docker's JSON progress messages on the job's group
    (publish.job_progress). Result: {"id", "tags", "digest", "status"} where status is
    Docker's last line ("Status: Downloaded newer image for x" / "Image is up to date")."""
    raise NotImplementedError


def push(user, ref: str, *, auth: dict | None = None, source: str = "panel", job_id=None):
    """Job `image.push`. Result: {"tag", "digest", "size"}."""
    raise NotImplementedError


def tag(user, ref: str, repository: str, tag: str = "latest", *, source: str = "panel") -> Image:
    raise NotImplementedError


def remove(user, ref: str, *, force: bool = False, prune_parents: bool = True,
           source: str = "panel") -> list[dict]:
    """docker rmi: Docker's [{"Untagged": "x:y"}, {"Deleted": "sha256:..."}]; the node's
    files go in a job `image.remove`."""
    raise NotImplementedError


def prune(user, *, all_images: bool = False, filters: dict | None = None,
          source: str = "panel") -> dict:
    """docker image prune [-a]: {"ImagesDeleted": [...], "SpaceReclaimed": n}."""
    raise NotImplementedError


def load(user, path: str, *, team=None, source: str = "panel", job_id=None):
    """Job `image.load` of a spooled archive (the job removes the file). Result:
    {"images": [{"id", "tags"}]}; progress as "Loading layer" messages."""
    raise NotImplementedError


def save(user, refs: list[str], *, source: str = "panel"):
    """Job `image.save`. Result: {"path": a spool file the caller streams and removes}."""
    raise NotImplementedError


def import_image(user, path: str, *, repository: str = "", tag: str = "",
                 changes: list[str] = (), message: str = "", team=None,
                 source: str = "panel", job_id=None):
    """Job `image.import` of a spooled rootfs tarball. Result: {"id"}."""
    raise NotImplementedError


def commit(user, container_ref: str, *, repository: str = "", tag: str = "",
           comment: str = "", author: str = "", changes: list[str] = (),
           config: dict | None = None, pause: bool = True, source: str = "panel"):
    """Job `image.commit`. Result: {"id"}."""
    raise NotImplementedError


def export_container(user, container_ref: str, *, source: str = "panel"):
    """Job `container.export`. Result: {"path": a spool file the caller streams and removes}."""
    raise NotImplementedError


def history(user, ref: str) -> list[dict]:
    """docker history in the API's shape, newest first."""
    raise NotImplementedError


def disk_usage(user) -> dict:
    """The images part of `docker system df`: {"LayersSize": n, "Images": [summaries with
    SharedSize and Containers]}."""
    raise NotImplementedError


def login(user, *, registry: str, username: str, password: str, team=None,
          source: str = "panel") -> None:
    """Checks the credentials with the registry (job `registry.login`, waited for), then
    stores them for the team, encrypted. AuthError-shaped refusal: Unauthorized (401)."""
    raise NotImplementedError
