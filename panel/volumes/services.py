"""Every change to a volume goes through here: permission, validation, audit, job.

The node's part (``workers.runtime.volumes.VolumeStore``) runs in the worker: jobs
``volume.create`` (make the directory) and ``volume.remove`` (unmount what the driver
mounted, delete the directory; payload ``{"name"}``). The row goes at once, so a removed
volume is gone from ``volume ls`` when the call returns; the API waits for the job.
Containers name their volumes in ``Container.spec["Mounts"]`` (panel/containers/mounts.py).
"""

import os
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction

from panel.audit import services as audit
from panel.containers import policy
from panel.containers.models import Container
from panel.errors import Conflict, InvalidParameter, NotFound, string_map
from panel.jobs import services as jobs
from panel.nodes.services import local_node
from panel.teams.services import (
    check_permission,
    default_team,
    has_permission,
    hidden,
    primary_team,
    teams_of,
)
from workers.runtime.volumes import VolumeError, VolumeStore, validate_name, validate_options

from .models import Volume

DRIVERS = ("local",)


def visible_volumes(user):
    if user is None or user.is_superuser:
        return Volume.objects.all()
    return Volume.objects.filter(team__in=teams_of(user))


def resolve(user, name: str) -> Volume:
    volume = visible_volumes(user).filter(name=name).first()
    if volume is None:
        raise hidden(user, f"get {name}: no such volume", obj_type="volume", ref=name,
                     elsewhere=Volume.objects.filter(name=name))
    return volume


def store() -> VolumeStore:
    """This node's volume store (single-node build: the panel reads the node's state root)."""
    return VolumeStore(str(settings.STATE_ROOT))


def mountpoint(volume: Volume) -> str:
    return os.path.join(str(settings.STATE_ROOT), "volumes", volume.name, "_data")


def size_of(volume: Volume) -> int | None:
    """Bytes of the files in the volume; None when the node cannot tell (not made yet)."""
    try:
        return store().size(volume.name) if os.path.isdir(mountpoint(volume)) else None
    except OSError:
        return None


def users_of(volume: Volume) -> list[Container]:
    """The containers (any state) whose mounts name the volume."""
    return [c for c in Container.objects.filter(node=volume.node_id).order_by("created")
            if any(m.get("Name") == volume.name for m in (c.spec.get("Mounts") or []))]


def _summary(volume: Volume) -> dict:
    return {"name": volume.name, "driver": volume.driver, "labels": volume.labels,
            "options": volume.options, "anonymous": volume.anonymous}


def _enqueue(kind: str, volume: Volume, actor, payload: dict):
    return jobs.enqueue(kind, target_type="volume", target_id=volume.name[:64],
                        target_repr=volume.name, actor=actor, team=volume.team,
                        node=volume.node, payload=payload)


def create(*, acting_user, name=None, driver="local", labels=None, options=None, team=None,
           source="api", anonymous=False) -> Volume:
    """`docker volume create`. An existing volume of that name and driver that the user
    sees is returned as it is (Docker's answer too). ``volume.job``: the node's job, for
    callers that wait for it (None when the volume already existed). ``anonymous``: a
    container's anonymous volume whose name the caller chose."""
    team = team or (primary_team(acting_user) if acting_user is not None else default_team())
    check_permission(acting_user, team, "operate")
    driver = driver or "local"
    if driver not in DRIVERS:
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
    labels = string_map(labels, "Labels")
    options = string_map(options, "DriverOpts")
    anonymous = anonymous or not name
    name = name or secrets.token_hex(32)
    try:
        validate_name(name)
        validate_options(options)
    except VolumeError as exc:
        raise InvalidParameter(str(exc)) from None
    if options.get("type") == "none":
        policy.check_host_binds(acting_user, team, [os.path.normpath(options["device"])])
    with transaction.atomic():
        existing = Volume.objects.select_for_update().filter(name=name).first()
        if existing is not None:
            if existing.driver != driver or not visible_volumes(acting_user).filter(
                    pk=existing.pk).exists():
                raise Conflict(f"create {name}: a volume with the name {name} already exists "
                               f"with driver {existing.driver!r}")
            existing.job = None
            return existing
        try:
            with transaction.atomic():
                volume = Volume.objects.create(name=name, team=team, node=local_node(),
                                               driver=driver, labels=labels, options=options,
                                               anonymous=anonymous)
        except IntegrityError:  # made at the same moment by another request
            raise Conflict(f"create {name}: a volume with the name {name} already exists") \
                from None
        audit.record("volume.create", actor=acting_user, team=team, obj_type="volume",
                     obj_id=name[:64], obj_repr=name, after=_summary(volume), source=source)
        volume.job = _enqueue("volume.create", volume, acting_user,
                              {"name": name, "options": options})
    return volume


def remove(*, acting_user, volume: Volume, force=False, source="api"):
    """`docker volume rm [-f]`: Conflict (409) while a container uses it, with or without
    force, as Docker does. Returns the node's job."""
    check_permission(acting_user, volume.team, "operate")
    with transaction.atomic():
        volume = Volume.objects.select_for_update().get(pk=volume.pk)
        users = users_of(volume)
        if users:
            raise Conflict(f"remove {volume.name}: volume is in use - "
                           f"[{', '.join(c.id for c in users)}]")
        return _delete(volume, acting_user, source, force)


def _delete(volume: Volume, actor, source: str, force: bool = False):
    audit.record("volume.remove", actor=actor, team=volume.team, obj_type="volume",
                 obj_id=volume.name[:64], obj_repr=volume.name, before=_summary(volume),
                 after={"force": force}, source=source)
    job = _enqueue("volume.remove", volume, actor, {"name": volume.name})
    volume.delete()
    return job


def _labels_match(labels: dict, terms: list[str]) -> bool:
    for term in terms:
        key, sep, value = term.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def matches_labels_of(labels: dict, filters: dict) -> bool:
    """Docker's ``label`` (all must match) and ``label!`` (none may) filters."""
    if not _labels_match(labels, filters.get("label", [])):
        return False
    return not any(_labels_match(labels, [term]) for term in filters.get("label!", []))


def prune(*, acting_user, filters=None, source="api"):
    """`docker volume prune`: the unused volumes the user may remove; anonymous ones only
    unless the filter ``all=true`` (Docker 23+). -> (removed names, reclaimed bytes)."""
    removed, reclaimed, _jobs = prune_with_jobs(acting_user=acting_user, filters=filters,
                                                source=source)
    return removed, reclaimed


def prune_with_jobs(*, acting_user, filters=None, source="api"):
    """``prune`` that also returns the node's jobs (the API waits for them)."""
    filters = filters or {}
    everything = any(v.lower() in ("1", "true") for v in filters.get("all", []))
    candidates = visible_volumes(acting_user).select_related("team", "node").order_by("name")
    if not everything:
        candidates = candidates.filter(anonymous=True)
    removed, reclaimed, made = [], 0, []
    for volume in candidates:
        if not matches_labels_of(volume.labels or {}, filters):
            continue
        if not has_permission(acting_user, volume.team, "operate"):
            continue
        with transaction.atomic():
            row = Volume.objects.select_for_update().filter(pk=volume.pk).first()
            if row is None or users_of(row):
                continue
            size = size_of(row) or 0
            made.append(_delete(row, acting_user, source))
        removed.append(volume.name)
        reclaimed += size
    return removed, reclaimed, made


def ensure_for_container(*, acting_user, team, name: str, anonymous=False, labels=None,
                         options=None, source: str = "api") -> Volume:
    """The volume a container mounts, made when missing (Docker creates it at the
    container's create). A volume of a team the user cannot see is not theirs to mount."""
    volume = Volume.objects.filter(name=name).first()
    if volume is None:
        return create(acting_user=acting_user, name=name, team=team, labels=labels,
                      options=options, anonymous=anonymous, source=source)
    if not visible_volumes(acting_user).filter(pk=volume.pk).exists():
        raise Conflict(f"volume name {name} is taken by another team")
    return volume


def release_anonymous(container: Container, actor=None, source: str = "system") -> list[str]:
    """After ``docker rm -v`` (or ``--rm``): drop the rows of the container's anonymous
    volumes that no other container uses; returns their names (the caller, on the node,
    removes their data)."""
    names = [m["Name"] for m in (container.spec.get("Mounts") or [])
             if m.get("Type") == "volume" and m.get("Anonymous")]
    released = []
    for name in names:
        with transaction.atomic():
            volume = Volume.objects.select_for_update().filter(name=name).first()
            if volume is None or [c for c in users_of(volume) if c.pk != container.pk]:
                continue
            audit.record("volume.remove", actor=actor, team=volume.team, obj_type="volume",
                         obj_id=name[:64], obj_repr=name, before=_summary(volume),
                         after={"container": container.id}, source=source)
            volume.delete()
        released.append(name)
    return released
