"""Every change to a container goes through here: permission, validation, audit, job."""

import re
import secrets

from django.db import IntegrityError, transaction
from django.db.models import Q

from panel.audit import services as audit
from panel.errors import Conflict, InvalidParameter, NotModified
from panel.events import publish
from panel.images import services as images
from panel.jobs import services as jobs
from panel.nodes.services import local_node
from panel.teams.services import check_permission, hidden, primary_team, teams_of

from . import history, mounts, names, networking, policy, quotas, sharing, userns
from . import resources as limits  # cgroup limits: completed at create, docker update
from .models import Container
from .specs import validate_request

_HEX_PREFIX = re.compile(r"^[0-9a-f]{1,64}$")


def visible_containers(user):
    if user is None or user.is_superuser:
        return Container.objects.all()
    return Container.objects.filter(team__in=teams_of(user))


def resolve(user, ref: str) -> Container:
    """A container by full id, exact name, or unique id prefix, as Docker looks them up;
    another team's container is as missing as one that does not exist."""
    containers = visible_containers(user)
    ref = ref.removeprefix("/")
    found = containers.filter(Q(id=ref) | Q(name=ref)).first()
    if found:
        return found
    by_prefix = Q(id__startswith=ref) if _HEX_PREFIX.match(ref) else Q()
    if by_prefix:
        matches = list(containers.filter(by_prefix)[:2])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
    raise hidden(user, f"No such container: {ref}", obj_type="container", ref=ref,
                 elsewhere=Container.objects.filter(Q(id=ref) | Q(name=ref) | by_prefix))


def _summary(container: Container) -> dict:
    return {"name": container.name, "image": container.image_ref, "state": container.state}


def _enqueue(kind: str, container: Container, actor, payload: dict | None = None):
    return jobs.enqueue(
        kind,
        target_type="container",
        target_id=container.id,
        target_repr=container.name,
        actor=actor,
        team=container.team,
        node=container.node,
        payload=payload,
    )


def create(*, acting_user, config: dict, host_config: dict | None = None, name: str | None = None,
           team=None, source: str = "api", networking_config: dict | None = None,
           build_step: bool = False) -> Container:
    """Record a new container in state created; the worker prepares its root at start.
    ``networking_config``: the request's NetworkingConfig (--ip, --network-alias).
    ``build_step``: a build's RUN container, outside the team's quotas (quotas.py)."""
    team = team or primary_team(acting_user)
    check_permission(acting_user, team, "operate")
    host_config = host_config or {}
    request = validate_request(config, host_config)
    limits.adapt(host_config)  # MemorySwap = 2 x Memory, as dockerd
    policy.check_security(acting_user, team, host_config)  # --privileged, --device, caps...
    userns.check_policy(acting_user, team, host_config)  # --userns host on a remapping node
    policy.check_low_ports(acting_user, team, host_config)  # -p 80:80
    joins = sharing.resolve_joins(acting_user, host_config)  # --pid/--ipc container:<x>
    net_plan = networking.resolve(acting_user, config, host_config, networking_config)
    policy.check_host_namespaces(acting_user, team, host_config,  # --pid/--ipc/--uts host
                                 host_network=net_plan["host"])  # --network host
    joins.update({"net": net_plan["join"]} if net_plan["join"] else {})  # --network container:
    image = images.resolve(acting_user, request.image_ref)
    mount_list = mounts.resolve(acting_user=acting_user, team=team, config=config,
                                host_config=host_config, image=image)  # -v, --mount, ...
    name = names.validate(name) if name else None
    try:
        with transaction.atomic():
            if not build_step:
                quotas.check_create(acting_user, team, host_config)  # locks the team's row
            container = Container.objects.create(
                id=secrets.token_hex(32),
                name=name or _free_generated_name(),
                team=team,
                node=image.node if image.node_id else local_node(),
                image=image,
                image_ref=request.image_ref,
                entrypoint=request.entrypoint,
                cmd=request.cmd,
                env=request.env,
                working_dir=request.working_dir,
                user=request.user,
                labels=request.labels,
                spec={"Config": config, "HostConfig": host_config,
                      **({"Joins": joins} if joins else {}),
                      **({"Mounts": mount_list} if mount_list else {})},
                created_by=acting_user,
            )
            mounts.make_volumes(acting_user=acting_user, container=container, source=source)
            networking.make_endpoints(container, net_plan)  # its address (IPAM)
            audit.record("container.create", actor=acting_user, team=team, obj_type="container",
                         obj_id=container.id, obj_repr=container.name, after=_summary(container),
                         params={"Config": config, "HostConfig": host_config,
                                 **({"NetworkingConfig": networking_config}
                                    if networking_config else {})},
                         source=source)
            history.record(container, "create", actor=acting_user)
            publish.container_state(container)
    except IntegrityError:
        existing = Container.objects.filter(name=name).values_list("id", flat=True).first()
        raise Conflict(
            f'Conflict. The container name "/{name}" is already in use by container "{existing}". '
            "You have to remove (or rename) that container to be able to reuse that name."
        ) from None
    return container


def _free_generated_name() -> str:
    for _ in range(20):
        candidate = names.generate()
        if not Container.objects.filter(name=candidate).exists():
            return candidate
    return f"{names.generate()}_{secrets.token_hex(2)}"


@transaction.atomic
def start(*, acting_user, container: Container, source: str = "api"):
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.state in (Container.State.RUNNING, Container.State.RESTARTING):
        raise NotModified("container already started")
    if container.state == Container.State.PAUSED:
        raise Conflict("cannot start a paused container, try unpause instead")
    if container.state in (Container.State.REMOVING, Container.State.DEAD):
        raise Conflict(f"cannot start container {container.name}: it is {container.state}")
    audit.record("container.start", actor=acting_user, team=container.team, obj_type="container",
                 obj_id=container.id, obj_repr=container.name, source=source)
    return _enqueue("container.start", container, acting_user)


@transaction.atomic
def stop(*, acting_user, container: Container, timeout: int | None = None, source: str = "api"):
    check_permission(acting_user, container.team, "operate")
    if not container.is_running:
        raise NotModified("container already stopped")
    audit.record("container.stop", actor=acting_user, team=container.team, obj_type="container",
                 obj_id=container.id, obj_repr=container.name, after={"timeout": timeout},
                 source=source)
    return _enqueue("container.stop", container, acting_user, {"timeout": timeout})


@transaction.atomic
def kill(*, acting_user, container: Container, signal: str = "SIGKILL", source: str = "api"):
    check_permission(acting_user, container.team, "operate")
    from .specs import parse_signal

    signum = parse_signal(signal)
    if not container.is_running:
        raise Conflict(f"Cannot kill container: {container.id}: Container {container.id} is not running")
    audit.record("container.kill", actor=acting_user, team=container.team, obj_type="container",
                 obj_id=container.id, obj_repr=container.name, after={"signal": signum},
                 source=source)
    history.record(container, "kill", actor=acting_user, attributes={"signal": signum})
    return _enqueue("container.kill", container, acting_user, {"signal": signum})


@transaction.atomic
def pause(*, acting_user, container: Container, source: str = "api"):
    """`docker pause`: freeze every process of the container (its cgroup)."""
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.state == Container.State.PAUSED:
        raise Conflict(f"Container {container.id} is already paused")
    if container.state == Container.State.RESTARTING:
        raise Conflict(f"Container {container.id} is restarting, wait until the container is "
                       "running")
    if container.state != Container.State.RUNNING:
        raise Conflict(f"Container {container.id} is not running")
    audit.record("container.pause", actor=acting_user, team=container.team,
                 obj_type="container", obj_id=container.id, obj_repr=container.name,
                 source=source)
    return _enqueue("container.pause", container, acting_user)


@transaction.atomic
def unpause(*, acting_user, container: Container, source: str = "api"):
    """`docker unpause`: thaw a paused container."""
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.state != Container.State.PAUSED:
        raise Conflict(f"Container {container.id} is not paused")
    audit.record("container.unpause", actor=acting_user, team=container.team,
                 obj_type="container", obj_id=container.id, obj_repr=container.name,
                 source=source)
    return _enqueue("container.unpause", container, acting_user)


@transaction.atomic
def restart(*, acting_user, container: Container, timeout: int | None = None,
            source: str = "api"):
    """`docker restart`: stop (if it runs, with the stop timeout) and start again, in one
    job; a stopped container is just started."""
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.state in (Container.State.REMOVING, Container.State.DEAD):
        raise Conflict(f"cannot restart container {container.name}: it is {container.state}")
    audit.record("container.restart", actor=acting_user, team=container.team,
                 obj_type="container", obj_id=container.id, obj_repr=container.name,
                 after={"timeout": timeout}, source=source)
    return _enqueue("container.restart", container, acting_user, {"timeout": timeout})


@transaction.atomic
def remove(*, acting_user, container: Container, force: bool = False, volumes: bool = False,
           source: str = "api"):
    """`docker rm [-f] [-v]`: ``volumes`` also removes its anonymous volumes (as --rm does)."""
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.is_running and not force:
        raise Conflict(
            f"You cannot remove a running container {container.id}. "
            "Stop the container before attempting removal or force remove"
        )
    if container.state == Container.State.REMOVING and not force:
        raise Conflict(f"removal of container {container.id} is already in progress")
    before = _summary(container)
    container.state = Container.State.REMOVING
    container.save(update_fields=["state"])
    audit.record("container.remove", actor=acting_user, team=container.team, obj_type="container",
                 obj_id=container.id, obj_repr=container.name, before=before,
                 after={"force": force, "volumes": volumes}, source=source)
    publish.container_state(container)
    return _enqueue("container.remove", container, acting_user,
                    {"force": force, **({"volumes": True} if volumes else {})})


def _name_conflict(name: str, existing_id) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{existing_id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def rename(*, acting_user, container: Container, new_name: str, source: str = "api") -> Container:
    """`docker rename`: a new unique name; the runtime learns it at the next start."""
    check_permission(acting_user, container.team, "operate")
    if not new_name or not new_name.strip("/"):
        raise InvalidParameter("Neither old nor new names may be empty")
    new_name = names.validate(new_name)
    try:
        with transaction.atomic():
            row = Container.objects.select_for_update().get(pk=container.pk)
            old_name = row.name
            if new_name == old_name:
                raise InvalidParameter(
                    "Renaming a container with the same name as its current name")
            taken = Container.objects.filter(name=new_name).values_list("id", flat=True).first()
            if taken:
                raise _name_conflict(new_name, taken)
            row.name = new_name
            row.save(update_fields=["name"])
            audit.record("container.rename", actor=acting_user, team=row.team,
                         obj_type="container", obj_id=row.id, obj_repr=new_name,
                         before={"name": old_name}, after={"name": new_name}, source=source)
            history.record(row, "rename", actor=acting_user,
                           attributes={"oldName": f"/{old_name}"})
            publish.container_state(row)
    except IntegrityError:  # a concurrent create or rename took it
        taken = Container.objects.filter(name=new_name).values_list("id", flat=True).first()
        raise _name_conflict(new_name, taken) from None
    return row


@transaction.atomic
def update(*, acting_user, container: Container, resources: dict, source: str = "api"):
    """`docker update`: new cgroup limits (and restart policy), merged by dockerd's rules.
    Job `container.update` gives them to a running container's cgroup at once and stores
    them on the row; a stopped container gets them at its next start."""
    check_permission(acting_user, container.team, "operate")
    container = Container.objects.select_for_update().get(pk=container.pk)
    if container.state in (Container.State.REMOVING, Container.State.DEAD):
        raise Conflict(f"Cannot update container {container.id}: container is marked for "
                       "removal and cannot be \"update\"")
    new = limits.merge_update(container.host_config, resources)
    quotas.check_update(acting_user, container, new)  # -m/--cpus that grow
    diff = limits.changed(container.host_config, new)
    audit.record("container.update", actor=acting_user, team=container.team,
                 obj_type="container", obj_id=container.id, obj_repr=container.name,
                 before={k: old for k, (old, _new) in diff.items()},
                 after={k: value for k, (_old, value) in diff.items()}, source=source)
    return _enqueue("container.update", container, acting_user,
                    {"host_config": {k: new.get(k) for k in (*limits.FIELDS, "RestartPolicy")
                                     if k in new}})
