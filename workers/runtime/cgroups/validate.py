"""Validation of cgroup configs (apart from the types, as in runc's libcontainer)."""

from __future__ import annotations

import re

from .config import CgroupConfig, Resources

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class CgroupConfigError(ValueError):
    """An invalid cgroup configuration."""


def validate_name(what: str, value) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise CgroupConfigError(f"invalid cgroup {what} {value!r}: want [A-Za-z0-9_.-], "
                                "starting with a letter or digit")
    return value


def validate_resources(resources: Resources) -> Resources:
    if not isinstance(resources, Resources):
        raise CgroupConfigError("resources must be a Resources")
    for key, value in resources.items().items():  # each limit checks its own field
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise CgroupConfigError(f"invalid value for {key}: {value!r}")
    return resources


def validate(config: CgroupConfig) -> CgroupConfig:
    if not isinstance(config, CgroupConfig):
        raise CgroupConfigError("not a CgroupConfig")
    validate_name("parent", config.parent)
    validate_name("name", config.name)
    validate_resources(config.resources)
    return config
