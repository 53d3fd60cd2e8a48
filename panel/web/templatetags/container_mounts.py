"""``{% mounts_of c as mounts %}``: a container's mounts, for its page's Mounts card."""

from django import template

from panel.containers import mounts

register = template.Library()


@register.simple_tag
def mounts_of(container) -> list[dict]:
    """Docker's inspect "Mounts" entries (Type, Name, Source, Destination, RW, Propagation),
    then the ``--tmpfs`` mounts, which inspect leaves out (they are in HostConfig.Tmpfs) but
    the page shows with the others; their Mode is the mount options."""
    tmpfs = [{"Type": "tmpfs", "Source": "", "Destination": path, "Mode": options,
              "RW": "ro" not in options.split(","), "Propagation": ""}
             for path, options in (container.host_config.get("Tmpfs") or {}).items()]
    return mounts.describe(container) + tmpfs
