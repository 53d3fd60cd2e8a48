"""Containers and images in the JSON shapes of Docker Engine API v1.41."""

import os
from pathlib import Path

from django.conf import settings

from panel.containers import mounts
from panel.containers.models import Container
from panel.containers.status import status_text
from workers.runtime import security as runtime_security
from workers.runtime.spec import SpecError, combine_command

from . import networks
from .common import rfc3339, unix

RUNNING_STATES = (Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING)

# Docker's HostConfig as `docker inspect` shows it when nothing was asked for.
_HOST_CONFIG_DEFAULTS = {
    "Binds": None,
    "ContainerIDFile": "",
    "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "ConsoleSize": [0, 0],
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "private",
    "Dns": [],
    "DnsOptions": [],
    "DnsSearch": [],
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": 67108864,
    "Runtime": "runc",
    "Isolation": "",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "BlkioWeight": 0,
    "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [],
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Devices": [],
    "DeviceCgroupRules": None,
    "DeviceRequests": None,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "MemorySwappiness": None,
    "OomKillDisable": False,
    "PidsLimit": None,
    "Ulimits": None,
    "CpuCount": 0,
    "CpuPercent": 0,
    "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
    "MaskedPaths": list(runtime_security.MASKED_PATHS),  # none for --privileged
    "ReadonlyPaths": list(runtime_security.READONLY_PATHS),
}


def container_dir(container_id: str) -> Path:
    return Path(settings.STATE_ROOT) / "containers" / container_id


def log_path(container_id: str) -> Path:
    return container_dir(container_id) / "container.log"


def request_config(container) -> dict:
    return container.spec.get("Config") or {}


def is_tty(container) -> bool:
    return bool(request_config(container).get("Tty"))


def argv(container) -> list[str]:
    image_config = container.image.run_config
    try:
        return combine_command(image_config.get("Entrypoint"), image_config.get("Cmd"),
                               container.entrypoint, container.cmd)
    except SpecError:
        return []


def merged_env(image_env, env) -> list[str]:
    merged: dict[str, str] = {}
    for entry in [*(image_env or []), *(env or [])]:
        key, sep, value = entry.partition("=")
        if sep:
            merged[key] = value
        else:
            merged.pop(key, None)
    return [f"{key}={value}" for key, value in merged.items()]


def merged_labels(container) -> dict:
    return {**(container.image.run_config.get("Labels") or {}), **(container.labels or {})}


def _size_rw(container_id: str) -> int:
    from .top import size_rw  # computed by the node's runtime

    return size_rw(container_id)


def dir_size(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _network_mode(container) -> str:
    return container.host_config.get("NetworkMode") or "default"


def container_summary(container, *, size: bool = False, now=None) -> dict:
    args = argv(container)
    summary = {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": container.image_ref,
        "ImageID": container.image.docker_id,
        "Command": " ".join(args),
        "Created": unix(container.created),
        "Ports": networks.summary_ports(container),
        "Labels": merged_labels(container),
        "State": container.state,
        "Status": status_text(container, now),
        "HostConfig": {"NetworkMode": _network_mode(container)},
        "NetworkSettings": {"Networks": networks.networks_of(container)},
        "Mounts": mounts.describe(container),
    }
    if size:
        rw = _size_rw(container.id)
        summary["SizeRw"] = rw
        summary["SizeRootFs"] = rw + (container.image.size or 0)
    return summary


def container_config(container) -> dict:
    """The container's Config merged with its image's, as `docker inspect` shows it."""
    requested = request_config(container)
    image_config = container.image.run_config
    if container.cmd is not None:
        cmd = container.cmd
    elif container.entrypoint and container.entrypoint != [""]:
        cmd = None
    else:
        cmd = image_config.get("Cmd")
    entrypoint = container.entrypoint if container.entrypoint is not None else \
        image_config.get("Entrypoint")
    config = {
        "Hostname": requested.get("Hostname") or container.id[:12],
        "Domainname": requested.get("Domainname") or "",
        "User": container.user or image_config.get("User") or "",
        "AttachStdin": bool(requested.get("AttachStdin")),
        "AttachStdout": bool(requested.get("AttachStdout")),
        "AttachStderr": bool(requested.get("AttachStderr")),
        "Tty": bool(requested.get("Tty")),
        "OpenStdin": bool(requested.get("OpenStdin")),
        "StdinOnce": bool(requested.get("StdinOnce")),
        "Env": merged_env(image_config.get("Env"), container.env),
        "Cmd": cmd,
        "Image": container.image_ref,
        "Volumes": requested.get("Volumes") or image_config.get("Volumes"),
        "WorkingDir": container.working_dir or image_config.get("WorkingDir") or "",
        "Entrypoint": entrypoint,
        "OnBuild": image_config.get("OnBuild"),
        "Labels": merged_labels(container),
    }
    exposed = {**(image_config.get("ExposedPorts") or {}), **(requested.get("ExposedPorts") or {})}
    if exposed:
        config["ExposedPorts"] = exposed
    stop_signal = requested.get("StopSignal") or image_config.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if requested.get("StopTimeout") is not None:
        config["StopTimeout"] = requested["StopTimeout"]
    return config


def host_config(container) -> dict:
    stored = dict(container.host_config)
    merged = {**_HOST_CONFIG_DEFAULTS, **{k: v for k, v in stored.items() if v is not None}}
    policy = dict(stored.get("RestartPolicy") or {})
    merged["RestartPolicy"] = {
        "Name": policy.get("Name") or "no",
        "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
    }
    merged["NetworkMode"] = _network_mode(container)
    merged["LogConfig"] = {"Type": "json-file", "Config": {}}
    if stored.get("Privileged"):
        merged["MaskedPaths"] = merged["ReadonlyPaths"] = None
    return merged


def container_state(container) -> dict:
    state = container.state
    return {
        "Status": state,
        "Running": state in RUNNING_STATES,
        "Paused": state == Container.State.PAUSED,
        "Restarting": state == Container.State.RESTARTING,
        "OOMKilled": container.oom_killed,
        "Dead": state == Container.State.DEAD,
        "Pid": container.pid if state in RUNNING_STATES else 0,
        "ExitCode": container.exit_code or 0,
        "Error": container.error or "",
        "StartedAt": rfc3339(container.started_at),
        "FinishedAt": rfc3339(container.finished_at),
    }


def container_inspect(container, *, size: bool = False) -> dict:
    args = argv(container)
    cdir = container_dir(container.id)
    data = {
        "Id": container.id,
        "Created": rfc3339(container.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": container_state(container),
        "Image": container.image.docker_id,
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(log_path(container.id)),
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(container),
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "MergedDir": str(cdir / "rootfs"),
                "UpperDir": str(cdir / "upper"),
                "WorkDir": str(cdir / "work"),
            },
        },
        "Mounts": mounts.describe(container),
        "Config": container_config(container),
        "NetworkSettings": networks.network_settings(container),
    }
    if size:
        rw = _size_rw(container.id)
        data["SizeRw"] = rw
        data["SizeRootFs"] = rw + (container.image.size or 0)
    return data


def repo_tags(image) -> list[str]:
    return [f"{tag.repository}:{tag.tag}" for tag in image.tags.all()]


def repo_digests(image) -> list[str]:
    return list(image.repo_digests or [])


def image_summary(image) -> dict:
    tags = repo_tags(image)
    digests = repo_digests(image)
    return {
        "Id": image.docker_id,
        "ParentId": f"sha256:{image.parent}" if image.parent else "",
        # Docker's placeholders for an image with neither tags nor digests.
        "RepoTags": tags or ([] if digests else ["<none>:<none>"]),
        "RepoDigests": digests or ([] if tags else ["<none>@<none>"]),
        "Created": unix(image.created),
        "Size": image.size,
        "VirtualSize": image.size,
        "SharedSize": -1,
        "Labels": image.run_config.get("Labels") or {},
        "Containers": -1,
    }


def image_inspect(image) -> dict:
    config = image.config or {}
    run_config = image.run_config
    full_config = {
        "Hostname": "",
        "Domainname": "",
        "User": run_config.get("User") or "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": run_config.get("Env"),
        "Cmd": run_config.get("Cmd"),
        "Image": "",
        "Volumes": run_config.get("Volumes"),
        "WorkingDir": run_config.get("WorkingDir") or "",
        "Entrypoint": run_config.get("Entrypoint"),
        "OnBuild": run_config.get("OnBuild"),
        "Labels": run_config.get("Labels"),
    }
    for key in ("ExposedPorts", "StopSignal"):
        if run_config.get(key):
            full_config[key] = run_config[key]
    return {
        "Id": image.docker_id,
        "RepoTags": repo_tags(image),
        "RepoDigests": repo_digests(image),
        "Parent": f"sha256:{image.parent}" if image.parent else "",
        "Comment": config.get("comment") or "",
        "Created": rfc3339(image.created),
        "Container": config.get("container") or "",
        "ContainerConfig": {**full_config, "Cmd": None, "Entrypoint": None, "Env": None},
        "DockerVersion": config.get("docker_version") or "",
        "Author": config.get("author") or "",
        "Config": full_config,
        "Architecture": config.get("architecture") or "amd64",
        "Variant": config.get("variant") or "",
        "Os": config.get("os") or "linux",
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }
