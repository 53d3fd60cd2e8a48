"""From a Docker create request to a validated container record, and on to a runtime spec."""

import signal as signals
from dataclasses import dataclass

from panel.errors import InvalidParameter
from panel.networks import dns as names

from . import mounts, networking, resources, security, sharing, userns

RESTART_POLICIES = {"", "no", "always", "on-failure", "unless-stopped"}


@dataclass
class CreateRequest:
    image_ref: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    user: str
    labels: dict


def _str_list(value, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{field} must be a list of strings")
    return value


def validate_request(config: dict, host_config: dict) -> CreateRequest:
    if not isinstance(config, dict) or not isinstance(host_config, dict):
        raise InvalidParameter("the request body must be a JSON object")
    image_ref = config.get("Image")
    if not image_ref or not isinstance(image_ref, str):
        raise InvalidParameter("Config.Image is required")
    env = _str_list(config.get("Env"), "Env") or []
    for item in env:
        if not item.split("=", 1)[0]:
            raise InvalidParameter(f"invalid environment variable: {item}")
    labels = config.get("Labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidParameter("Labels must be an object of strings")
    working_dir = config.get("WorkingDir") or ""
    if working_dir and not working_dir.startswith("/"):
        raise InvalidParameter(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )
    policy = restart_policy(host_config)[0]
    if policy in ("always", "unless-stopped", "on-failure") and host_config.get("AutoRemove"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    sharing.validate(config, host_config)  # --pid/--uts/--ipc/--init/--group-add
    mounts.validate(config, host_config)  # -v, --mount, --tmpfs, --volumes-from
    networking.validate(config, host_config)  # --network, -p, -P, --link
    names.validate(host_config)  # --dns, --dns-search, --dns-option, --add-host
    resources.validate(config, host_config)  # cgroup limits
    security.validate(config, host_config)  # caps, seccomp, devices, userns...
    userns.validate(config, host_config)  # --userns, and what a user namespace rules out
    return CreateRequest(
        image_ref=image_ref,
        entrypoint=_str_list(config.get("Entrypoint"), "Entrypoint"),
        cmd=_str_list(config.get("Cmd"), "Cmd"),
        env=env,
        working_dir=working_dir,
        user=config.get("User") or "",
        labels=labels,
    )


def restart_policy(host_config: dict) -> tuple[str, int]:
    """HostConfig.RestartPolicy -> (name, maximum retry count), checked with Docker's words."""
    from workers.runtime.spec import SpecError, validate_restart

    raw = host_config.get("RestartPolicy") or {}
    if not isinstance(raw, dict):
        raise InvalidParameter("RestartPolicy must be an object")
    name = raw.get("Name") or ""
    count = raw.get("MaximumRetryCount") or 0
    if not isinstance(name, str) or name not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{name}'")
    try:
        validate_restart(name or "no", count)
    except SpecError as exc:
        raise InvalidParameter(str(exc)) from None
    return name or "no", count


def parse_signal(value) -> int:
    """A signal by number, by name, or by name without SIG, as `docker kill -s` accepts."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < signals.NSIG:
            return number
    else:
        name = text if text.startswith("SIG") else f"SIG{text}"
        try:
            return int(signals.Signals[name])
        except KeyError:
            pass
    raise InvalidParameter(f"Invalid signal: {value}")


def runtime_spec(container, layer_dirs: list[str]):
    """The runtime's ContainerSpec for a container row, with the image's config applied."""
    from workers.runtime.spec import ContainerSpec, combine_command, merge_env

    image_config = container.image.run_config
    config = container.spec.get("Config") or {}
    hostname = config.get("Hostname") or container.id[:12]
    extras = sharing.runtime_fields(container)  # namespaces, init, group_add
    hostname = extras.pop("hostname", hostname)
    stop_timeout = config.get("StopTimeout")
    return ContainerSpec(
        id=container.id,
        name=container.name,
        layers=layer_dirs,
        args=combine_command(
            image_config.get("Entrypoint"), image_config.get("Cmd"), container.entrypoint, container.cmd
        ),
        env=merge_env([*names.link_env(container), *(image_config.get("Env") or [])],
                      container.env, hostname=hostname, tty=bool(config.get("Tty"))),
        working_dir=container.working_dir or image_config.get("WorkingDir") or "/",
        user=container.user or image_config.get("User") or "",
        hostname=hostname,
        tty=bool(config.get("Tty")),
        open_stdin=bool(config.get("OpenStdin")),
        stop_signal=config.get("StopSignal") or image_config.get("StopSignal") or "SIGTERM",
        stop_timeout=10 if stop_timeout is None else int(stop_timeout),
        labels={**(image_config.get("Labels") or {}), **container.labels},
        **extras,
        **_restart_fields(container),
        **mounts.runtime_fields(container),
        **networking.runtime_fields(container),
        **names.runtime_fields(container),  # --dns..., --add-host, /etc/hosts, --link
        **resources.runtime_fields(container),
        **security.runtime_fields(container),
        **userns.runtime_fields(container),
    )


def _restart_fields(container) -> dict:
    from django.conf import settings

    name, count = restart_policy(container.host_config)
    return {"restart_policy": name, "restart_max_retries": count,
            "restart_backoff_base": settings.RESTART_BACKOFF_BASE,
            "restart_backoff_cap": settings.RESTART_BACKOFF_CAP}
