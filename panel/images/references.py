"""Image references as Docker spells them: [registry/]repository[:tag][@digest]."""

import re
from dataclasses import dataclass

from panel.errors import InvalidParameter

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Reference:
    repository: str  # familiar form: "busybox", "dia_ch3/dockerfile", "localhost:5000/x"
    tag: str  # "" for a digest reference without a tag
    digest: str = ""  # "sha256:<hex>"

    def __str__(self):
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    @property
    def registry(self) -> str:
        """The registry's host[:port], Docker's: a first component with a dot or a port, or
        localhost; else Docker Hub."""
        host, slash, _ = self.repository.partition("/")
        return host if slash and _is_host(host) else DEFAULT_REGISTRY


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse(ref: str) -> Reference:
    """A tag reference (``latest`` when none is given) or a digest reference
    (``name@sha256:...``, whose tag is empty unless spelled too)."""
    named, at, digest = ref.partition("@")
    if at and not _DIGEST.match(digest):
        raise InvalidParameter(f"invalid reference format: {ref}")
    name, sep, tag = named.rpartition(":")
    if not sep or "/" in tag:  # "host:5000/repo" has its colon before a slash
        name, sep, tag = named, "", "" if at else "latest"
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    host, slash, rest = name.partition("/")
    path = rest if slash and _is_host(host) else name
    if not _REPO.match(path) or (tag and not _TAG.match(tag)) or (sep and not tag):
        raise InvalidParameter(f"invalid reference format: {ref}")
    return Reference(name, tag, digest)


def parse_tag(ref: str) -> Reference:
    """A reference that names a tag (docker tag's target, an archive's repo tags)."""
    parsed = parse(ref)
    if parsed.digest:
        raise InvalidParameter(f"refusing to create a tag with a digest reference: {ref}")
    return parsed
