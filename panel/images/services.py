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
