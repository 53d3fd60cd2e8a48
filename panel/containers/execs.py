"""`docker exec`: exec instances (create, start, resize, exit) and the way to the shim.

An exec instance is created (validated, permission "operate", audited) and later started
once. The process itself is started by the container's shim (workers/runtime/shimexec.py)
at `start`, directly from the caller's process (the API server's hijacked connection or
the panel's terminal), like an attach: an exec is interactive, so no Job and no worker hop.
Its pid and exit code are recorded here; a detached exec's exit code arrives from the
shim's event (`exec <id> exit_code <n>` on the node's event stream, see the bridge).

As with panel/containers/console.py, `exec_dir` is the one place that reaches a node's
shims: the API server and the panel run on the node itself today.
"""

import os
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from panel.audit import services as audit
from panel.errors import Conflict, InvalidParameter
from panel.teams.services import check_permission, hidden

from . import policy
from .models import Container, ExecInstance

MAX_TTY_SIZE = 10_000
BOOL_FIELDS = ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "Privileged")


class ExecNotRunning(Conflict):
    pass


def exec_dir(container_id: str) -> str:
    """The container's directory on this node (its shim's socket is there)."""
    return os.path.join(str(settings.STATE_ROOT), "containers", container_id)


def check_runnable(container: Container) -> None:
    """Docker's refusals for exec into a container that does not run."""
    if container.state == Container.State.PAUSED:
        raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
    if container.state == Container.State.RESTARTING:
        raise Conflict(f"Container {container.id} is restarting, wait until the container is "
                       "running")
    if container.state != Container.State.RUNNING:
        raise ExecNotRunning(f"Container {container.id} is not running")


def normalize(config: dict) -> dict:
    """The ExecConfig of `POST /containers/{id}/exec`, checked; bad input raises
    InvalidParameter (400) and creates nothing."""
    if not isinstance(config, dict):
        raise InvalidParameter("malformed request body: expected a JSON object")
    cmd = config.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise InvalidParameter("No exec command specified")
    if not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
        raise InvalidParameter("Cmd must be a list of strings")
    if any("\0" in a for a in cmd):
        raise InvalidParameter("Cmd must not contain NUL bytes")
    env = config.get("Env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) and e for e in env):
        raise InvalidParameter("Env must be a list of KEY=value strings")
    for e in env:
        if e.startswith("=") or "\0" in e:
            raise InvalidParameter(f"invalid environment variable: {e}")
    user = config.get("User") or ""
    workdir = config.get("WorkingDir") or ""
    detach_keys = config.get("DetachKeys") or ""
    for name, value in (("User", user), ("WorkingDir", workdir), ("DetachKeys", detach_keys)):
        if not isinstance(value, str) or "\0" in value or "\n" in value:
            raise InvalidParameter(f"{name} must be a string")
    if workdir and not workdir.startswith("/"):
        raise InvalidParameter(f"the working directory '{workdir}' is invalid, it needs to be "
                               "an absolute path")
    out = {"Cmd": cmd, "Env": env, "User": user, "WorkingDir": workdir,
           "DetachKeys": detach_keys}
    for name in BOOL_FIELDS:
        value = config.get(name, False)
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise InvalidParameter(f"{name} must be a boolean")
        out[name] = value
    if detach_keys:
        detach_key_bytes(detach_keys)
    return out


_CTRL = {f"ctrl-{chr(c)}": c - 96 for c in range(ord("a"), ord("z") + 1)}
_CTRL.update({"ctrl-@": 0, "ctrl-[": 27, "ctrl-\\": 28, "ctrl-]": 29, "ctrl-^": 30,
              "ctrl-_": 31})


def detach_key_bytes(spec: str) -> bytes:
    """Docker's detach-keys syntax: comma-separated characters or ctrl-<key>."""
    out = bytearray()
    for key in (spec or "ctrl-p,ctrl-q").split(","):
        if len(key) == 1:
            out += key.encode("latin-1", "replace")
        elif key in _CTRL:
            out.append(_CTRL[key])
        else:
            raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


def create(*, acting_user, container: Container, config: dict, source: str = "api"
           ) -> ExecInstance:
    check_permission(acting_user, container.team, "operate")
    config = normalize(config)
    if config["Privileged"]:
        policy.check_privileged_exec(acting_user, container.team, container)
    with transaction.atomic():
        container = Container.objects.select_for_update().get(pk=container.pk)
        check_runnable(container)
        instance = ExecInstance.objects.create(id=secrets.token_hex(32), container=container,
                                               config=config, created_by=acting_user)
        audit.record("container.exec", actor=acting_user, team=container.team,
                     obj_type="container", obj_id=container.id, obj_repr=container.name,
                     after={"exec": instance.id, "cmd": config["Cmd"], "user": config["User"],
                            "tty": config["Tty"]}, source=source)
    return instance


def visible(user, exec_id: str) -> ExecInstance:
    from .services import visible_containers

    instance = (ExecInstance.objects.select_related("container", "container__team")
                .filter(pk=exec_id, container__in=visible_containers(user)).first())
    if instance is None:
        raise hidden(user, f"No such exec instance: {exec_id}", obj_type="exec", ref=exec_id,
                     elsewhere=ExecInstance.objects.filter(pk=exec_id),
                     team_field="container__team")
    return instance


def begin(*, acting_user, instance: ExecInstance, detach: bool, rows: int = 0, cols: int = 0
          ) -> dict:
    """Claim the exec instance for its one start; returns the shim's exec spec
    (see workers.runtime.execs.exec_spec)."""
    from workers.runtime.execs import exec_spec

    check_permission(acting_user, instance.container.team, "operate")
    with transaction.atomic():
        instance = ExecInstance.objects.select_for_update().select_related("container").get(
            pk=instance.pk)
        if instance.running:
            raise Conflict(f"Error: Exec command {instance.id} is already running")
        if instance.started_at is not None:
            raise Conflict(f"Error: Exec command {instance.id} has already run")
        check_runnable(instance.container)
        instance.started_at = timezone.now()
        instance.save(update_fields=["started_at"])
    c = instance.config
    size = c.get("ConsoleSize") or [0, 0]
    return exec_spec(instance.id, c["Cmd"], env=c.get("Env"), user=c.get("User", ""),
                     cwd=c.get("WorkingDir", ""), tty=c.get("Tty", False),
                     stdin=c.get("AttachStdin", False) and not detach, detach=detach,
                     rows=rows or size[0], cols=cols or size[1],
                     privileged=c.get("Privileged", False))


def started(exec_id: str, pid: int) -> None:
    # A quick process may already be recorded as finished (the shim's event won the race):
    # it keeps its pid, as Docker's inspect shows, but is not made running again.
    instance = ExecInstance.objects.filter(pk=exec_id)
    instance.update(pid=pid)
    instance.filter(exit_code__isnull=True).update(running=True)


def finished(exec_id: str, exit_code: int, error: str = "") -> None:
    """Record the exit (idempotent: the stream and the shim's event may both report it)."""
    ExecInstance.objects.filter(pk=exec_id, exit_code__isnull=True).update(
        running=False, exit_code=exit_code, error=error[:4000], finished_at=timezone.now())


def check_size(rows, cols) -> tuple[int, int]:
    try:
        rows, cols = int(rows), int(cols)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid TTY size: {rows!r}x{cols!r}") from None
    if not (0 <= rows <= MAX_TTY_SIZE and 0 <= cols <= MAX_TTY_SIZE):
        raise InvalidParameter(f"invalid TTY size: {rows}x{cols}")
    return rows, cols


def remember_size(*, acting_user, instance: ExecInstance, rows: int, cols: int) -> None:
    """A resize before the start: the size the PTY gets when it is made."""
    check_permission(acting_user, instance.container.team, "operate")
    config = dict(instance.config)
    config["ConsoleSize"] = [rows, cols]
    ExecInstance.objects.filter(pk=instance.pk, started_at__isnull=True).update(config=config)
