"""Image references as Docker spells them: [registry/]repository[:tag][@digest]."""

import re
from dataclasses import dataclass

from panel.errors import InvalidParameter

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Reference:
    repository: str  # familiar form: "busybox", "dia_ch3/dockerfile", "localhost:5000/x"
    tag: str

    def __str__(self):
        return f"{self.repository}:{self.tag}"


def parse(ref: str) -> Reference:
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:  # "host:5000/repo" has its colon before a slash
        name, tag = ref, "latest"
    if "@" in name:
        raise InvalidParameter(f"invalid reference format: digest references are not supported here: {ref}")
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    host, slash, rest = name.partition("/")
    path = rest if slash and ("." in host or ":" in host or host == "localhost") else name
    if not _REPO.match(path) or not _TAG.match(tag):
        raise InvalidParameter(f"invalid reference format: {ref}")
    return Reference(name, tag)
