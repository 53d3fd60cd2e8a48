"""``{% network_of c as net %}``: a container's networks and published ports, for its page's
Network card, and the links of published ports (also used by the container list's rows)."""

from django import template
from django.http.request import split_domain_port

from panel.networks import services as networks

register = template.Library()


def request_host(request) -> str:
    """The host name the browser used to reach the panel (published ports are on it too)."""
    host, _ = split_domain_port(request.get_host())
    return host or "localhost"


def port_link(host_ip: str, host_port: int, host: str) -> str:
    """http://<address>:<port>/ of a published port; ``host`` stands for every address."""
    address = host if host_ip in ("", "0.0.0.0") else host_ip
    if ":" in address:  # an IPv6 address
        address = f"[{address}]"
    return f"http://{address}:{host_port}/"


def published(container, host: str) -> list[dict]:
    """The container's published ports as `docker port` shows them, with a link each."""
    return [{"container_port": f"{p.container_port}/{p.proto}",
             "host": f"{p.host_ip or '0.0.0.0'}:{p.host_port}",
             "url": port_link(p.host_ip, p.host_port, host)}
            for p in networks.ports_of(container)]


@register.simple_tag(takes_context=True)
def network_of(context, container) -> dict:
    """{mode, joined (the container whose network it shares), endpoints, ports, asked}."""
    mode = container.host_config.get("NetworkMode") or "bridge"
    joined = mode.partition(":")[2] if mode.startswith("container:") else ""
    return {
        "mode": "bridge" if mode == "default" else mode,
        "joined": joined,
        "endpoints": [{"endpoint": e, "network": e.network,
                       "prefixlen": e.network.subnet.partition("/")[2]}
                      for e in networks.endpoints_of(container)],
        "ports": published(container, request_host(context["request"])),
        # what was asked for, shown while the container holds no port (it is not running)
        "asked": container.host_config.get("PortBindings") or {},
    }
