"""/_ping, /version, /info."""

import os
import platform
import socket
import sys

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from panel.containers import services as containers
from panel.containers import userns
from panel.images import services as images
from panel.images.services import visible_images
from panel.volumes import services as volumes

from .common import API_VERSION, DOCKER_HEADERS, MIN_API_VERSION, SERVER_VERSION, endpoint
from .shapes import container_summary
from .volumes import volume_json

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


def arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def _ping(request):
    response = HttpResponse(b"" if request.method == "HEAD" else b"OK",
                            content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-store, must-revalidate"
    response["Pragma"] = "no-cache"
    for name, value in DOCKER_HEADERS.items():
        response[name] = value
    return response


def _version(request):
    kernel = platform.release()
    details = {
        "ApiVersion": API_VERSION,
        "Arch": arch(),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "dockyard",
        "GoVersion": f"python{platform.python_version()}",
        "KernelVersion": kernel,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    }
    return JsonResponse({
        "Platform": {"Name": "Dockyard Engine"},
        "Components": [{"Name": "Engine", "Version": SERVER_VERSION, "Details": details}],
        "Version": SERVER_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "dockyard",
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    })


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _info(request):
    counts = dict(containers.visible_containers(request.user).values_list("state")
                  .annotate(n=Count("id")).values_list("state", "n"))
    running = counts.get("running", 0) + counts.get("restarting", 0)
    paused = counts.get("paused", 0)
    total = sum(counts.values())
    hostname = socket.gethostname()
    return JsonResponse({
        "ID": f"dockyard-{settings.NODE_NAME}",
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": total - running - paused,
        "Images": visible_images(request.user).count(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True,
        "SwapLimit": True,
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": bool(settings.DEBUG),
        "NFd": 0,
        "OomKillDisable": False,
        "NGoroutines": 0,
        "SystemTime": timezone.now().isoformat(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [],
                           "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": []},
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": str(settings.STATE_ROOT),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": SERVER_VERSION,
        "Runtimes": {"dockyard": {"path": sys.executable}},
        "DefaultRuntime": "dockyard",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"]
        + (["name=userns"] if userns.remap() else []),
        "Warnings": [],
    })


def _volume_usage(volume) -> dict:
    size = volumes.size_of(volume)
    return {**volume_json(volume), "UsageData": {
        "Size": -1 if size is None else size, "RefCount": len(volumes.users_of(volume))}}


def _disk_usage(request):
    """`docker system df`: the images part comes from the images service."""
    usage = images.disk_usage(request.user)
    return JsonResponse({
        "LayersSize": usage["LayersSize"],
        "Images": usage["Images"],
        "Containers": [container_summary(c, size=True)
                       for c in containers.visible_containers(request.user)],
        "Volumes": [_volume_usage(v) for v in volumes.visible_volumes(request.user)],
        "BuildCache": [],
    })


ping = endpoint(GET=_ping)
version = endpoint(GET=_version)
info = endpoint(GET=_info)
disk_usage = endpoint(GET=_disk_usage)
