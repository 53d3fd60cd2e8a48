"""Every change to an image goes through here: permission, audit, and the node's job.

Long work (pull, push, load, save, import, commit, export, the files of removed images, a
registry login's check) runs in jobs whose handlers are in workers/image_tasks.py. Every
function takes the acting user first; `source` is the interface ("panel", "api",
"command") for the audit row. `auth` is Docker's X-Registry-Auth JSON ({"username",
"password", "serveraddress"} or {"identitytoken"}); it travels to the worker sealed
(panel/images/credentials.py), never in clear in a Job row, an audit row or a log.
"""

import os
import re
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Q

from panel.audit import services as audit
from panel.errors import Conflict, DockyardError, InvalidParameter, NotFound
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.nodes.services import local_node
from panel.teams.services import (
    check_permission,
    deny,
    has_permission,
    hidden,
    primary_team,
    teams_of,
)

from . import changes as config_changes
from . import credentials, references, spool
from .models import Image, ImageTag

_HEX_PREFIX = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")
LOGIN_TIMEOUT = 60.0  # seconds a login waits for the registry's answer (through the node)
_RUNNING_STATES = ("running", "paused", "restarting")


class Unauthorized(DockyardError):
    """The registry refused the credentials (Docker answers 401)."""

    status = 401


def visible_images(user):
    if user is None or user.is_superuser:
        return Image.objects.all()
    # Images without a team (the node's base images) are shared by everyone who sees a team
    # (not by an auditor only: it sees the audit log and nothing else).
    teams = teams_of(user)
    if not teams.exists():
        return Image.objects.none()
    return Image.objects.filter(
        Q(team__isnull=True) | Q(team__in=teams) | Q(shared_with__in=teams)).distinct()


def _lookup(user, ref: str) -> tuple[Image, references.Reference | None]:
    """The image and, when it was found by a tag or a digest, that reference."""
    found = _find(visible_images(user), ref)
    if found is None:
        elsewhere = _find(Image.objects.all(), ref) if user is not None else None
        raise hidden(user, f"No such image: {ref}", obj_type="image", ref=ref,
                     elsewhere=Image.objects.filter(pk=elsewhere[0].pk if elsewhere else None))
    return found


def _find(images, ref: str) -> tuple[Image, references.Reference | None] | None:
    try:
        parsed = references.parse(ref)
    except InvalidParameter:
        parsed = None
    if parsed and parsed.digest:
        name = str(parsed)
        for image in images.exclude(repo_digests=[]):
            if name in image.repo_digests:
                return image, parsed
    elif parsed:
        tag = (
            ImageTag.objects.filter(repository=parsed.repository, tag=parsed.tag, image__in=images)
            .select_related("image")
            .first()
        )
        if tag:
            return tag.image, parsed
    if _HEX_PREFIX.match(ref):
        hex_id = ref.removeprefix("sha256:")
        matches = list(images.filter(id__startswith=hex_id)[:2])
        if len(matches) == 1:
            return matches[0], None
    return None


def resolve(user, ref: str) -> Image:
    """An image by tag, digest (``name@sha256:...``, one of its RepoDigests), full id, or
    unique id prefix (Docker's lookup order)."""
    return _lookup(user, ref)[0]


@transaction.atomic
def register_image(*, config: dict, image_id: str, layers: list[str], size: int, node, team=None,
                   tags: list[str] = (), repo_digests: list[str] = (), parent: str = "",
                   acting_user=None, source: str = "system") -> Image:
    """Record an image that the node's store holds, and point the given tags at it. An image
    that is already known keeps its team (its id is its content: the same for everyone)."""
    created = config.get("created")
    created_at = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else datetime.now(UTC)
    image, made = Image.objects.get_or_create(
        id=image_id,
        defaults={"config": config, "layers": layers, "size": size, "node": node, "team": team,
                  "created": created_at, "parent": parent},
    )
    if not made and parent and not image.parent:
        image.parent = parent
        image.save(update_fields=["parent"])
    if not made and team is not None and image.team_id not in (None, team.id):
        image.shared_with.add(team)
    for ref in tags:
        _point_tag(image, references.parse_tag(ref), acting_user, source, team=team)
    add_repo_digests(image, repo_digests)
    return image


def add_repo_digests(image: Image, repo_digests: list[str]) -> None:
    """RepoDigests that a pull or a push saw; a digest names one manifest, so one image."""
    new_digests = [d for d in repo_digests if d not in image.repo_digests]
    if not new_digests:
        return
    for other in Image.objects.exclude(pk=image.pk).exclude(repo_digests=[]):
        if set(other.repo_digests) & set(new_digests):
            other.repo_digests = [d for d in other.repo_digests if d not in new_digests]
            other.save(update_fields=["repo_digests"])
    image.repo_digests = [*image.repo_digests, *new_digests]
    image.save(update_fields=["repo_digests"])


def _point_tag(image: Image, parsed: references.Reference, actor, source: str, *, team) -> None:
    if ImageTag.objects.filter(repository=parsed.repository, tag=parsed.tag, image=image).exists():
        return
    ImageTag.objects.update_or_create(repository=parsed.repository, tag=parsed.tag,
                                      defaults={"image": image})
    audit.record("image.tag", actor=actor, team=team, obj_type="image", obj_id=image.id,
                 obj_repr=str(parsed), after={"tag": str(parsed)}, source=source)


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


# ---------------------------------------------------------------------------- helpers

def _check(user, image: Image, permission: str) -> None:
    """The image's team decides; the shared base images (no team) are the site admins' to
    change, everyone's to use."""
    if image.team is not None:
        _team_acting_on(user, image, permission)
    elif permission != "view" and user is not None and not user.is_superuser:
        raise deny(user, None, permission, f"Only site admins may change the shared image {image}.")


def _team_acting_on(user, image: Image, permission: str):
    """The team through which the user may act on a team's image: its owner, or a team it
    is shared with; PermissionDenied (in the owner's words) when none."""
    for team in (image.team, *image.shared_with.all()):
        if has_permission(user, team, permission):
            return team
    check_permission(user, image.team, permission)


def _acting_team(user, team=None):
    return team or primary_team(user)


def _enqueue(kind: str, *, user, team, target_id: str = "", target_repr: str = "",
             payload: dict, job_id=None) -> Job:
    return jobs.enqueue(kind, target_type="image", target_id=target_id[:64],
                        target_repr=target_repr[:200], actor=user, team=team, node=local_node(),
                        payload=payload, job_id=job_id)


def _sealed_auth(auth: dict | None, team, registry: str) -> str:
    """The credentials for a registry, sealed for the job: the request's, else the team's."""
    if auth and any(auth.get(k) for k in ("username", "password", "identitytoken")):
        return credentials.seal({"username": auth.get("username") or "",
                                 "password": auth.get("password") or "",
                                 "identity_token": auth.get("identitytoken") or ""})
    stored = credentials.for_registry(team, registry) if team is not None else None
    if stored is None:
        return ""
    return credentials.seal({"username": stored[0], "password": stored[1]})


def _tag_ref(repository: str, tag: str) -> references.Reference | None:
    if not repository:
        return None
    return references.parse_tag(f"{repository}:{tag}" if tag else repository)


def _layer_size(diff_id: str) -> int:
    from workers import node
    from workers.runtime.images import ImageError

    try:
        return node.image_store().layer_size(diff_id)
    except (ImageError, OSError):  # not on this node's disk (yet)
        return 0


# ---------------------------------------------------------------------------- pull, push

def pull(user, ref: str, *, team=None, auth: dict | None = None, platform: str = "",
         source: str = "panel", job_id=None) -> Job:
    """Job `image.pull`. Progress: Docker's JSON progress messages on the job's group
    (publish.job_progress). Result: {"id", "tags", "digest", "status"} where status is
    Docker's last line ("Status: Downloaded newer image for x" / "Image is up to date")."""
    parsed = references.parse(ref)
    team = _acting_team(user, team)
    check_permission(user, team, "operate")
    with transaction.atomic():
        audit.record("image.pull", actor=user, team=team, obj_type="image", obj_id="",
                     obj_repr=str(parsed), after={"ref": str(parsed), "platform": platform},
                     source=source)
        return _enqueue("image.pull", user=user, team=team, target_repr=str(parsed),
                        job_id=job_id,
                        payload={"ref": str(parsed), "platform": platform, "source": source,
                                 "auth": _sealed_auth(auth, team, parsed.registry)})


def push(user, ref: str, *, auth: dict | None = None, source: str = "panel", job_id=None) -> Job:
    """Job `image.push`. Result: {"tag", "digest", "size"}."""
    parsed = references.parse_tag(ref)
    try:
        image = resolve(user, str(parsed))
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {parsed.repository}") \
            from None
    team = _team_acting_on(user, image, "operate") if image.team else _acting_team(user)
    check_permission(user, team, "operate")
    with transaction.atomic():
        audit.record("image.push", actor=user, team=team, obj_type="image", obj_id=image.id,
                     obj_repr=str(parsed), after={"ref": str(parsed)}, source=source)
        return _enqueue("image.push", user=user, team=team, target_id=image.id,
                        target_repr=str(parsed), job_id=job_id,
                        payload={"ref": str(parsed), "image_id": image.id,
                                 "auth": _sealed_auth(auth, team, parsed.registry)})


# ---------------------------------------------------------------------------- tag, rmi, prune

def tag(user, ref: str, repository: str, tag: str = "latest", *, source: str = "panel") -> Image:
    """docker tag: points repository:tag at the image (moving it from another image)."""
    image = resolve(user, ref)
    target = _tag_ref(repository, tag or "latest")
    team = _team_acting_on(user, image, "operate") if image.team else _acting_team(user)
    check_permission(user, team, "operate")
    with transaction.atomic():
        current = ImageTag.objects.filter(repository=target.repository, tag=target.tag) \
            .select_related("image").first()
        if current and not visible_images(user).filter(pk=current.image_id).exists():
            raise Conflict(f"the tag {target} is used by another team")
        _point_tag(image, target, user, source, team=team)
    return image


class _DeleteConflict(Conflict):
    def __init__(self, image: Image, message: str, *, hard: bool, used: bool = False):
        forced = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {image.short_id} ({forced}) - {message}")
        self.used = used


def _refs(image: Image) -> list[tuple[str, references.Reference]]:
    """The image's references: ("tag", ...) and ("digest", ...)."""
    tags = [("tag", references.Reference(t.repository, t.tag)) for t in image.tags.all()]
    digests = [("digest", references.parse(d)) for d in image.repo_digests]
    return tags + digests


def _single_reference(image: Image) -> bool:
    """Docker's isSingleReference: at most one tag, and every reference in one repository."""
    refs = _refs(image)
    if len(refs) <= 1:
        return len(refs) == 1
    if sum(1 for kind, _ in refs if kind == "tag") > 1:
        return False
    return len({ref.repository for _, ref in refs}) == 1


def _users(image: Image):
    from panel.containers.models import Container

    return Container.objects.filter(image=image).order_by("created")


def _conflict(image: Image, *, soft: bool, references_count: bool = True):
    """Docker's checkImageDeleteConflict: hard (children, a running container) always, soft
    (references, a stopped container) when asked."""
    if Image.objects.filter(parent=image.id).exists():
        return _DeleteConflict(image, "image has dependent child images", hard=True)
    running = _users(image).filter(state__in=_RUNNING_STATES).first()
    if running:
        return _DeleteConflict(image, f"image is being used by running container "
                                      f"{running.short_id}", hard=True, used=True)
    if soft and references_count and _refs(image):
        return _DeleteConflict(image, "image is referenced in multiple repositories", hard=False)
    stopped = _users(image).first() if soft else None
    if stopped:
        return _DeleteConflict(image, f"image is being used by stopped container "
                                      f"{stopped.short_id}", hard=False, used=True)
    return None


class _Removal:
    """One rmi or prune: Docker's response records and the images whose files go."""

    def __init__(self, user, source: str):
        self.user, self.source = user, source
        self.records: list[dict] = []
        self.deleted: dict[str, list[str]] = {}  # id: layers of the images deleted
        self.team = None  # the first deleted image's, for the files job

    def untag(self, image: Image, kind: str, ref: references.Reference) -> None:
        if kind == "tag":
            ImageTag.objects.filter(image=image, repository=ref.repository, tag=ref.tag).delete()
        else:
            image.repo_digests = [d for d in image.repo_digests if d != str(ref)]
            image.save(update_fields=["repo_digests"])
        self.records.append({"Untagged": str(ref)})
        audit.record("image.untag", actor=self.user, team=image.team, obj_type="image",
                     obj_id=image.id, obj_repr=str(ref), before={"ref": str(ref)},
                     source=self.source)

    def untag_ref(self, image: Image, ref: references.Reference) -> None:
        """Untag one reference; a tag's repository digests go with the repository's last tag."""
        self.untag(image, "digest" if ref.digest else "tag", ref)
        if ref.digest or image.tags.filter(repository=ref.repository).exists():
            return
        for kind, other in _refs(image):
            if kind == "digest" and other.repository == ref.repository:
                self.untag(image, kind, other)

    def delete(self, image: Image, *, force: bool, prune: bool, quiet: bool) -> None:
        """Docker's imageDeleteHelper: the image, then its parents that nothing else holds."""
        conflict = _conflict(image, soft=not force)
        if conflict:
            dangling = not _refs(image) and not Image.objects.filter(parent=image.id).exists()
            if quiet and (not dangling or conflict.used):
                return
            raise conflict
        for kind, ref in _refs(image):
            self.untag(image, kind, ref)
        if _users(image).exists():
            # Forced past a stopped container: its image stays (untagged) for it to run.
            return
        parent = Image.objects.filter(pk=image.parent).first() if image.parent else None
        audit.record("image.remove", actor=self.user, team=image.team, obj_type="image",
                     obj_id=image.id, obj_repr=image.short_id,
                     before={"layers": image.layers, "size": image.size}, source=self.source)
        self.deleted[image.id] = image.layers
        self.team = self.team or image.team
        self.records.append({"Deleted": image.docker_id})
        image.delete()
        if prune and parent is not None:
            self.delete(parent, force=False, prune=True, quiet=True)

    def remove(self, image: Image, ref: references.Reference | None, *, force: bool,
               prune: bool, typed: str) -> None:
        """Docker's ImageDelete for one image, looked up by ``ref`` (None: by id)."""
        if ref is not None:
            user_of = _users(image).first()
            if not force and _single_reference(image) and user_of:
                raise Conflict(f'conflict: unable to remove repository reference "{typed}" '
                               f"(must force) - container {user_of.short_id} is using its "
                               f"referenced image {image.short_id}")
            self.untag_ref(image, ref)
            if _refs(image):
                return
            self.delete(image, force=force, prune=prune, quiet=True)
            return
        if _single_reference(image):
            conflict = _conflict(image, soft=not force, references_count=False)
            if conflict:
                raise conflict
            for kind, other in _refs(image):
                self.untag(image, kind, other)
        self.delete(image, force=force, prune=prune, quiet=False)

    def enqueue_files_job(self) -> Job | None:
        """The node deletes the files of the deleted images (their layers that no remaining
        image, and so no container, uses: the handler computes that when it runs)."""
        if not self.deleted:
            return None
        ids = list(self.deleted)
        return _enqueue("image.remove", user=self.user, team=self.team or _acting_team(self.user),
                        target_id=ids[0], target_repr=", ".join(i[:12] for i in ids),
                        payload={"image_ids": ids})


def remove(user, ref: str, *, force: bool = False, prune_parents: bool = True,
           source: str = "panel") -> list[dict]:
    """docker rmi: Docker's [{"Untagged": "x:y"}, {"Deleted": "sha256:..."}]; the node's
    files go in a job `image.remove`."""
    image, parsed = _lookup(user, ref)
    _check(user, image, "operate")
    removal = _Removal(user, source)
    with transaction.atomic():
        image = Image.objects.select_for_update().get(pk=image.pk)
        acting = _team_acting_on(user, image, "operate") if image.team else None
        if acting is not None and acting != image.team:
            # A team the image is shared with lets go of it; the owner's image stays whole.
            if parsed is not None:
                removal.untag_ref(image, parsed)
            image.shared_with.remove(acting)
            return removal.records
        removal.remove(image, parsed, force=force, prune=prune_parents, typed=ref)
        removal.enqueue_files_job()
    return removal.records


def _until(value: str) -> datetime:
    """Docker's `until`: a Unix time, an RFC 3339 time, or a duration before now (10m, 24h)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if match:
        seconds = float(match[1]) * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                                     "h": 3600}[match[2]]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"invalid filter 'until={value}'") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _labels_match(labels: dict, filters: dict) -> bool:
    def matches(term):
        key, sep, value = term.partition("=")
        return key in labels and (not sep or labels[key] == value)

    return all(matches(t) for t in filters.get("label", [])) and \
        not any(matches(t) for t in filters.get("label!", []))


def _may_prune(user, image: Image) -> bool:
    if image.team is None:
        return user is None or user.is_superuser
    return any(has_permission(user, team, "operate")
               for team in (image.team, *image.shared_with.all()))


def prune(user, *, all_images: bool = False, filters: dict | None = None,
          source: str = "panel") -> dict:
    """docker image prune [-a]: {"ImagesDeleted": [...], "SpaceReclaimed": n}. Dangling
    images only (no tag, no child) unless -a: then every image that no container uses."""
    filters = filters or {}
    unknown = set(filters) - {"until", "label", "label!", "dangling"}
    if unknown:
        raise InvalidParameter(f"invalid filter '{sorted(unknown)[0]}'")
    if filters.get("dangling"):
        all_images = filters["dangling"][-1].lower() not in ("1", "true")
    until = [_until(v) for v in filters.get("until", [])]
    removal = _Removal(user, source)
    with transaction.atomic():
        candidates = visible_images(user).order_by("created")
        if not all_images:
            candidates = candidates.filter(tags__isnull=True)
        for image in candidates:
            image = Image.objects.filter(pk=image.pk).first()  # gone with a child: parents go
            if image is None or _users(image).exists():
                continue
            refs = _refs(image)
            has_children = Image.objects.filter(parent=image.id).exists()
            if has_children and not (all_images and refs):  # intermediate images stay
                continue
            if any(image.created > moment for moment in until):
                continue
            if not _labels_match(image.labels, filters) or not _may_prune(user, image):
                continue
            try:
                if not refs:
                    removal.remove(image, None, force=False, prune=True, typed=image.id)
                # Dangling-only: the refs are digests; -a: tags too, each untagged in turn.
                while Image.objects.filter(pk=image.pk).exists() and (refs := _refs(image)):
                    removal.remove(image, refs[0][1], force=False, prune=True,
                                   typed=str(refs[0][1]))
            except Conflict:  # Docker skips the images it cannot delete
                continue
        kept = {d for layers in Image.objects.filter(node=local_node())
                .values_list("layers", flat=True) for d in layers}
        freed = {d for layers in removal.deleted.values() for d in layers} - kept
        removal.enqueue_files_job()
    return {"ImagesDeleted": removal.records or None,
            "SpaceReclaimed": sum(_layer_size(d) for d in freed)}


# ---------------------------------------------------------------------------- archives

def load(user, path: str, *, team=None, source: str = "panel", job_id=None) -> Job:
    """Job `image.load` of a spooled archive (the job removes the file). Result:
    {"images": [{"id", "tags"}]}; progress as "Loading layer" messages."""
    path = spool.check_spooled(path)
    team = _acting_team(user, team)
    check_permission(user, team, "operate")
    with transaction.atomic():
        audit.record("image.load", actor=user, team=team, obj_type="image", obj_id="",
                     obj_repr=os.path.basename(path), source=source)
        return _enqueue("image.load", user=user, team=team, target_repr="docker load",
                        job_id=job_id, payload={"path": path, "source": source})


def _save_items(user, ref: str) -> list[dict]:
    """What `docker save ref` writes: a tag; every tag of a repository named alone; an id."""
    name_only = "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]
    if name_only:
        try:
            repository = references.parse(ref).repository
        except InvalidParameter:
            repository = None
        tags = ImageTag.objects.filter(repository=repository, image__in=visible_images(user))
        if repository and tags.exists():
            return [{"image_id": t.image_id, "repo_tags": [f"{t.repository}:{t.tag}"]}
                    for t in tags]
    image, parsed = _lookup(user, ref)
    tags = [str(parsed)] if parsed is not None and not parsed.digest else []
    return [{"image_id": image.id, "repo_tags": tags}]


def save(user, refs: list[str], *, source: str = "panel") -> Job:
    """Job `image.save`. Result: {"path": a spool file the caller streams and removes}."""
    if not refs:
        raise InvalidParameter("no image names given")
    items: dict[str, list[str]] = {}
    for ref in refs:
        for item in _save_items(user, ref):
            tags = items.setdefault(item["image_id"], [])
            tags.extend(t for t in item["repo_tags"] if t not in tags)
    team = _acting_team(user)
    check_permission(user, team, "operate")  # the node's work, as an export is
    with transaction.atomic():
        audit.record("image.save", actor=user, team=team, obj_type="image",
                     obj_id=next(iter(items)), obj_repr=" ".join(refs),
                     after={"images": list(items)}, source=source)
        return _enqueue("image.save", user=user, team=team, target_id=next(iter(items)),
                        target_repr=" ".join(refs),
                        payload={"images": [{"image_id": i, "repo_tags": t}
                                            for i, t in items.items()],
                                 "path": spool.spool_path(".tar")})


def import_image(user, path: str, *, repository: str = "", tag: str = "",
                 changes: list[str] = (), message: str = "", team=None,
                 source: str = "panel", job_id=None) -> Job:
    """Job `image.import` of a spooled rootfs tarball. Result: {"id"}."""
    path = spool.check_spooled(path)
    target = _tag_ref(repository, tag)
    run_config = config_changes.apply_changes({}, list(changes))  # a bad change is a 400 now
    team = _acting_team(user, team)
    check_permission(user, team, "operate")
    with transaction.atomic():
        audit.record("image.import", actor=user, team=team, obj_type="image", obj_id="",
                     obj_repr=str(target or "<none>"),
                     after={"tag": str(target or ""), "changes": list(changes),
                            "message": message}, source=source)
        return _enqueue("image.import", user=user, team=team, target_repr=str(target or ""),
                        job_id=job_id,
                        payload={"path": path, "tag": str(target or ""), "config": run_config,
                                 "message": message or "Imported from -", "source": source})


def commit(user, container_ref: str, *, repository: str = "", tag: str = "",
           comment: str = "", author: str = "", changes: list[str] = (),
           config: dict | None = None, pause: bool = True, source: str = "panel") -> Job:
    """Job `image.commit`: the container's upper dir as a new layer on its image. The new
    config is Docker's: ``config`` (else the container's), the changes, then what is unset
    filled from the container's. Result: {"id"}."""
    from panel.containers import services as containers
    from panel.dockerapi.shapes import container_config

    container = containers.resolve(user, container_ref)
    check_permission(user, container.team, "operate")
    target = _tag_ref(repository, tag)
    if config is not None and not isinstance(config, dict):
        raise InvalidParameter("the commit's config must be a JSON object")
    current = container_config(container)
    run_config = config_changes.apply_changes(config or current, list(changes))
    run_config = config_changes.merge(run_config, current)
    with transaction.atomic():
        audit.record("image.commit", actor=user, team=container.team, obj_type="container",
                     obj_id=container.id, obj_repr=container.name,
                     after={"tag": str(target or ""), "changes": list(changes),
                            "comment": comment, "author": author}, source=source)
        return _enqueue("image.commit", user=user, team=container.team,
                        target_id=container.id, target_repr=container.name,
                        payload={"container_id": container.id, "tag": str(target or ""),
                                 "config": run_config, "comment": comment, "author": author,
                                 "created_by": " ".join(current.get("Cmd") or []),
                                 "pause": pause, "source": source})


def export_container(user, container_ref: str, *, source: str = "panel") -> Job:
    """Job `container.export`. Result: {"path": a spool file the caller streams and removes}."""
    from panel.containers import services as containers

    container = containers.resolve(user, container_ref)
    check_permission(user, container.team, "operate")
    with transaction.atomic():
        audit.record("container.export", actor=user, team=container.team,
                     obj_type="container", obj_id=container.id, obj_repr=container.name,
                     source=source)
        return jobs.enqueue("container.export", target_type="container",
                            target_id=container.id, target_repr=container.name, actor=user,
                            team=container.team, node=container.node,
                            payload={"container_id": container.id,
                                     "path": spool.spool_path(".tar")})


# ---------------------------------------------------------------------------- reading

def history(user, ref: str) -> list[dict]:
    """docker history in the API's shape, newest first: one row per history entry, the
    image's id (and tags) on its own entries, its parents' on theirs, else <missing>."""
    image = resolve(user, ref)
    _check(user, image, "view")
    rows, diff_ids = [], iter(image.layers)
    for entry in image.config.get("history") or []:
        empty = entry.get("empty_layer", False)
        created = entry.get("created")
        rows.insert(0, {
            "Id": "<missing>",
            "Created": int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
            if created else 0,
            "CreatedBy": entry.get("created_by", ""),
            "Tags": None,
            "Size": 0 if empty else _layer_size(next(diff_ids, "")),
            "Comment": entry.get("comment", ""),
        })
    current = image
    for row in rows:
        if current is None:
            break
        row["Id"] = current.docker_id
        row["Tags"] = [str(t) for t in current.tags.all()] or None
        # Docker walks the parent chain one history entry per image (as builds made them).
        current = Image.objects.filter(pk=current.parent).first() if current.parent else None
    return rows


def disk_usage(user) -> dict:
    """The images part of `docker system df`: {"LayersSize": n, "Images": [summaries with
    SharedSize and Containers]}."""
    from panel.dockerapi.shapes import image_summary

    images = list(visible_images(user).prefetch_related("tags"))
    users = {image.id: _users(image).count() for image in images}
    holders: dict[str, int] = {}
    for image in images:
        for diff_id in set(image.layers):
            holders[diff_id] = holders.get(diff_id, 0) + 1
    sizes = {diff_id: _layer_size(diff_id) for diff_id in holders}
    summaries = []
    for image in images:
        summary = image_summary(image)
        summary["SharedSize"] = sum(sizes[d] for d in set(image.layers) if holders[d] > 1)
        summary["Containers"] = users[image.id]
        summaries.append(summary)
    return {"LayersSize": sum(sizes.values()), "Images": summaries}


# ---------------------------------------------------------------------------- login

def login(user, *, registry: str, username: str, password: str, team=None,
          source: str = "panel") -> None:
    """Checks the credentials with the registry (job `registry.login`, waited for), then
    stores them for the team, encrypted. A refusal is Unauthorized (401) with the registry's
    words. Not to be called inside a transaction (the job is sent on commit)."""
    team = _acting_team(user, team)
    check_permission(user, team, "manage")
    registry = credentials.normalize_registry(registry)
    job = _enqueue("registry.login", user=user, team=team, target_repr=registry,
                   payload={"registry": registry,
                            "auth": credentials.seal({"username": username,
                                                      "password": password})})
    job = async_to_sync(jobs.wait_for)(job.id, LOGIN_TIMEOUT)
    if job.state == Job.State.FAILED:
        status = (job.result or {}).get("status")
        if status == 401:
            raise Unauthorized(job.error)
        error = DockyardError(job.error or f"login to {registry} failed")
        error.status = status if isinstance(status, int) else 500
        raise error
    if not job.is_terminal:
        raise DockyardError(f"timed out waiting for the login to {registry}")
    credentials.store(team, registry, username, password, acting_user=user, source=source)
