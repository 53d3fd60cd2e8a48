"""What the OCI image spec and Docker's schema 2 name: media types, annotations, platforms.

Shared by the registry client (manifest lists) and the archives (OCI layouts, nested indexes).
"""

from __future__ import annotations

import platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

Platform = tuple[str, str, str]  # (os, architecture, variant)

_MACHINES = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"),
             "arm64": ("arm64", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
             "i686": ("386", ""), "i386": ("386", ""), "ppc64le": ("ppc64le", ""),
             "s390x": ("s390x", ""), "riscv64": ("riscv64", "")}


def host_platform() -> Platform:
    """This node's platform in OCI's words."""
    machine = platform.machine().lower()
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return "linux", arch, variant


def parse_platform(text: str) -> Platform:
    """"linux/arm64/v8" -> ("linux", "arm64", "v8"); an empty text is this node's."""
    if not text:
        return host_platform()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def format_platform(plat: Platform) -> str:
    return "/".join(p for p in plat if p)


def platform_matches(desc: dict, plat: Platform, *, strict_variant: bool = False) -> bool:
    """Whether an index entry is for `plat` (an entry that states no platform matches)."""
    stated = desc.get("platform")
    if not isinstance(stated, dict):
        return True
    if (stated.get("os"), stated.get("architecture")) != plat[:2]:
        return False
    return not strict_variant or not plat[2] or stated.get("variant", plat[2]) == plat[2]


def by_preference(entries: list[dict], plat: Platform) -> list[dict]:
    """An index's entries for `plat`, best first: the exact variant, then the architecture,
    then entries that state no platform."""
    stating = [e for e in entries if isinstance(e.get("platform"), dict)]
    exact = [e for e in stating if platform_matches(e, plat, strict_variant=True)]
    loose = [e for e in stating if e not in exact and platform_matches(e, plat)]
    return exact + loose + [e for e in entries if e not in stating]
