"""``{% limits_of c as limits %}``: a container's cgroup limits, for its page's Limits card."""

from django import template

from panel.containers import resources

register = template.Library()


@register.simple_tag
def limits_of(container) -> list[tuple[str, str]]:
    """(label, value) of each limit set (HostConfig, as `docker inspect` shows it)."""
    return resources.describe(container.host_config)
