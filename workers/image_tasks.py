"""Thin tasks for images: pull, push, load, save, import, commit, export, remove, login.

Each handler takes the Job made by panel/images/services.py and returns its result dict;
progress goes out through panel.events.publish.job_progress. Secrets arrive sealed
(panel/images/credentials.py) and are opened here only to be handed to the registry client.
"""

import contextlib
import os
import tempfile
import threading
import time

from django.conf import settings

from panel.containers import userns
from panel.containers.models import Container
from panel.events import publish
from panel.images import credentials, quota, references, spool
from panel.images import services as images
from panel.images.models import Image, ImageTag
from panel.jobs.models import Job
from workers import node
from workers.runtime import archive, registry

PROGRESS_INTERVAL = 0.1  # seconds between two byte counts of one layer (~10/s, as dockerd)
_THROTTLED = {"Downloading", "Extracting", "Pushing", "Loading layer"}


class _Progress:
    """Forwards Docker's JSON progress messages to the job's followers; byte counts of a
    layer at most every PROGRESS_INTERVAL (the last one, complete, always)."""

    def __init__(self, job_id):
        self.job_id = job_id
        self._last: dict[tuple, float] = {}
        self._lock = threading.Lock()  # layers are fetched by several threads

    def __call__(self, event: dict) -> None:
        if event.get("status") in _THROTTLED:
            detail = event.get("progressDetail") or {}
            complete = bool(detail.get("total")) and detail.get("current", 0) >= detail["total"]
            key, now = (event.get("id"), event["status"]), time.monotonic()
            with self._lock:
                if not complete and now - self._last.get(key, 0.0) < PROGRESS_INTERVAL:
                    return
                self._last[key] = now
        publish.job_progress(self.job_id, event)


def _credentials(payload: dict) -> registry.Credentials | None:
    if not payload.get("auth"):
        return None
    data = credentials.unseal(payload["auth"])
    return registry.Credentials(username=data.get("username", ""),
                                password=data.get("password", ""),
                                identity_token=data.get("identity_token", ""))


def _insecure(remote: registry.RemoteRef) -> bool:
    return registry.is_insecure(remote.registry, settings.INSECURE_REGISTRIES)


def _source(job: Job) -> str:
    return job.payload.get("source") or "system"


def _image_ids_of(parsed: references.Reference) -> set[str]:
    """The images that the reference names now (a tag's, or the holders of a digest)."""
    if parsed.digest:
        return {i.id for i in Image.objects.exclude(repo_digests=[])
                if str(parsed) in i.repo_digests}
    return set(ImageTag.objects.filter(repository=parsed.repository, tag=parsed.tag)
               .values_list("image_id", flat=True))


def _layers_in_use(node_row) -> set[str]:
    """The diff_ids that an Image row of the node lists (containers hold their images)."""
    return {diff_id for layers in Image.objects.filter(node=node_row)
            .values_list("layers", flat=True) for diff_id in layers}


def check_quota(team, node_row, new_images: list[tuple[str, list[str]]]) -> None:
    """The team's storage quota before images (id, diff_ids) that the store now holds are
    recorded; over it, the files of those no row records yet are deleted again."""
    try:
        quota.check_image(team, [d for _image_id, diff_ids in new_images for d in diff_ids])
    except quota.StorageQuotaExceeded:
        ids = [image_id for image_id, _diff_ids in new_images]
        known = set(Image.objects.filter(pk__in=ids).values_list("pk", flat=True))
        node.image_store().delete([i for i in ids if i not in known],
                                  keep_diff_ids=_layers_in_use(node_row))
        raise


def pull_image(job: Job) -> dict:
    return pull_ref(job, job.payload["ref"], sealed_auth=job.payload.get("auth") or "",
                    platform=job.payload.get("platform") or "")


def pull_ref(job: Job, ref: str, *, sealed_auth: str, platform: str = "") -> dict:
    """Pull for the job's team, with progress on the job's group: `image.pull`, and a
    build's FROM images (inline: a job never waits for another job)."""
    parsed = references.parse(ref)
    remote = registry.RemoteRef.parse(ref)
    before = _image_ids_of(parsed)
    quota.check_storage(job.team, 0)  # a team already over its quota downloads nothing
    result = registry.pull(node.image_store(), remote,
                           credentials=_credentials({"auth": sealed_auth}),
                           insecure=_insecure(remote), platform=platform or None,
                           progress=_Progress(job.id), max_layer_size=settings.MAX_LAYER_SIZE)
    check_quota(job.team, job.node, [(result.image_id, result.diff_ids)])
    tags = [] if parsed.digest else [str(parsed)]
    images.register_image(config=result.config, image_id=result.image_id,
                          layers=result.diff_ids, size=result.size, node=job.node, team=job.team,
                          tags=tags,
                          repo_digests=[f"{parsed.repository}@{result.manifest_digest}"],
                          acting_user=job.actor, source=_source(job))
    # Docker's last line: "newer" when the reference now names another image than before.
    if before == {result.image_id}:
        status = f"Status: Image is up to date for {parsed}"
    else:
        status = f"Status: Downloaded newer image for {parsed}"
    publish.job_progress(job.id, {"status": status})
    return {"id": f"sha256:{result.image_id}", "tags": tags, "digest": result.manifest_digest,
            "status": status}


def push_image(job: Job) -> dict:
    remote = registry.RemoteRef.parse(job.payload["ref"])
    result = registry.push(node.image_store(), job.payload["image_id"], remote,
                           credentials=_credentials(job.payload), insecure=_insecure(remote),
                           progress=_Progress(job.id))
    image = Image.objects.filter(pk=job.payload["image_id"]).first()
    if image is not None:
        repository = references.parse(job.payload["ref"]).repository
        images.add_repo_digests(image, [f"{repository}@{result.digest}"])
    return {"tag": remote.tag, "digest": result.digest, "size": result.size}


def login_registry(job: Job) -> dict:
    """Only the check: the service stores the credentials once the job succeeded."""
    name = job.payload["registry"]
    data = credentials.unseal(job.payload["auth"])
    registry.check_login(name, registry.Credentials(username=data["username"],
                                                    password=data["password"]),
                         insecure=registry.is_insecure(name, settings.INSECURE_REGISTRIES))
    return {}


def load_images(job: Job) -> dict:
    path = spool.check_spooled(job.payload["path"])
    try:
        quota.check_storage(job.team, 0)
        loaded = archive.load(node.image_store(), path, max_layer_size=settings.MAX_LAYER_SIZE,
                              progress=_Progress(job.id))
    finally:
        spool.discard(path)
    check_quota(job.team, job.node, [(item.image_id, item.diff_ids) for item in loaded])
    out = []
    for item in loaded:
        images.register_image(config=item.config, image_id=item.image_id, layers=item.diff_ids,
                              size=item.size, node=job.node, team=job.team, tags=item.repo_tags,
                              acting_user=job.actor, source=_source(job))
        out.append({"id": f"sha256:{item.image_id}",
                    "tags": [str(references.parse_tag(t)) for t in item.repo_tags]})
    return {"images": out}


def _write_spool_file(path: str, write) -> dict:
    """Run ``write(out)`` into a new spool file; no half-written file is left on error."""
    path = os.path.join(spool.spool_dir(), os.path.basename(path))
    try:
        with open(path, "xb") as out:
            write(out)
    except BaseException:
        spool.discard(path)
        raise
    return {"path": path}


def save_images(job: Job) -> dict:
    items = [archive.SaveItem(i["image_id"], i["repo_tags"]) for i in job.payload["images"]]
    return _write_spool_file(job.payload["path"],
                             lambda out: archive.save(node.image_store(), items, out))


def import_image(job: Job) -> dict:
    path = spool.check_spooled(job.payload["path"])
    try:
        loaded = archive.import_rootfs(node.image_store(), path,
                                       config_changes=job.payload["config"],
                                       comment=job.payload.get("message") or "",
                                       max_layer_size=settings.MAX_LAYER_SIZE)
    finally:
        spool.discard(path)
    check_quota(job.team, job.node, [(loaded.image_id, loaded.diff_ids)])
    tag = job.payload.get("tag")
    images.register_image(config=loaded.config, image_id=loaded.image_id,
                          layers=loaded.diff_ids, size=loaded.size, node=job.node,
                          team=job.team, tags=[tag] if tag else [], acting_user=job.actor,
                          source=_source(job))
    return {"id": f"sha256:{loaded.image_id}"}


def _id_shift(container: Container) -> int:
    """The node uid of the container's root under userns-remap (0: not remapped)."""
    maps = userns.runtime_fields(container)["uid_map"]
    return next((outside for inside, outside, _count in maps if inside == 0), 0)


def _upper_dir(container: Container, stack: contextlib.ExitStack) -> str:
    """The container's overlay upper dir; an empty one when it never ran (nothing changed)."""
    upper = os.path.join(str(settings.STATE_ROOT), "containers", container.id, "upper")
    if os.path.isdir(upper):
        return upper
    return stack.enter_context(tempfile.TemporaryDirectory(dir=spool.spool_dir()))


def commit_container(job: Job) -> dict:
    container = Container.objects.select_related("image").get(pk=job.payload["container_id"])
    rt = node.runtime()
    with contextlib.ExitStack() as stack:
        upper = _upper_dir(container, stack)
        if job.payload.get("pause") and container.id in rt.list_ids() and \
                rt.state(container.id).status == "running":
            rt.pause(container.id)  # a consistent snapshot of its files, as docker commit
            stack.callback(rt.unpause, container.id)
        loaded = archive.commit(node.image_store(), container.image_id, upper,
                                config_changes=job.payload["config"],
                                comment=job.payload.get("comment") or "",
                                author=job.payload.get("author") or "",
                                created_by=job.payload.get("created_by") or "",
                                id_shift=_id_shift(container))
    check_quota(container.team, container.node, [(loaded.image_id, loaded.diff_ids)])
    tag = job.payload.get("tag")
    images.register_image(config=loaded.config, image_id=loaded.image_id,
                          layers=loaded.diff_ids, size=loaded.size, node=container.node,
                          team=container.team, tags=[tag] if tag else [],
                          parent=container.image_id, acting_user=job.actor,
                          source=_source(job))
    return {"id": f"sha256:{loaded.image_id}"}


def export_container(job: Job) -> dict:
    container = Container.objects.select_related("image").get(pk=job.payload["container_id"])
    store = node.image_store()
    layer_dirs = [store.layer_dir(diff_id) for diff_id in container.image.layers]
    with contextlib.ExitStack() as stack:
        upper = _upper_dir(container, stack)
        return _write_spool_file(job.payload["path"], lambda out: archive.export_rootfs(
            layer_dirs, upper, out, id_shift=_id_shift(container)))


def remove_images(job: Job) -> dict:
    """The files of deleted images: their configs, and their layers that no image still
    recorded on this node uses (containers hold their images' rows, so their layers too)."""
    gone = [i for i in job.payload["image_ids"] if not Image.objects.filter(pk=i).exists()]
    return {"freed": node.image_store().delete(gone, keep_diff_ids=_layers_in_use(job.node))}


IMAGE_HANDLERS: dict = {
    "image.pull": pull_image,
    "image.push": push_image,
    "image.load": load_images,
    "image.save": save_images,
    "image.import": import_image,
    "image.commit": commit_container,
    "image.remove": remove_images,
    "container.export": export_container,
    "registry.login": login_registry,
}
