"""HostConfig CapAdd/CapDrop, Privileged, SecurityOpt, ReadonlyRootfs, Sysctls, Devices, ShmSize, UsernsMode (the Resources and security issue): validation of a create request and the runtime spec's fields."""


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields (no database access); raise InvalidParameter."""


def runtime_fields(container) -> dict:
    """The ContainerSpec fields for what the container was created with."""
    return {}
