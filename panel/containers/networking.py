"""A container's networking: HostConfig.NetworkMode, PortBindings, PublishAllPorts, Links,
Config.ExposedPorts and NetworkingConfig.EndpointsConfig of a create request.

``validate`` checks the request's shape (no database); ``resolve`` (at create) names the
network, the static address, aliases and links, or the container whose namespace is
shared (``container:<x>``, stored as ``Container.spec["Joins"]["net"]``); ``make_endpoints``
(in create's transaction) gives the container its address (panel/networks' IPAM). On the
node: ``plumb`` before each start (bridge, netns, veths, host ports), ``unplumb`` when it
stops for good and at removal; ``runtime_fields`` gives ``ContainerSpec.netns``.
"""

import logging
import re

from panel.errors import Conflict, InvalidParameter, NotFound

log = logging.getLogger(__name__)

_PORT_KEY = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
_HOST_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def mode_of(host_config: dict) -> str:
    """The network mode with Docker's "default" spelled "bridge"."""
    mode = host_config.get("NetworkMode") or ""
    return "bridge" if mode in ("", "default") else mode


def parse_port(key: str) -> tuple[int, str]:
    """"80/tcp" or "80" -> (80, "tcp")."""
    match = _PORT_KEY.match(str(key))
    if not match or not 0 < int(match.group(1)) < 65536:
        raise InvalidParameter(f'invalid port specification: "{key}"')
    if match.group(2) == "sctp":
        raise InvalidParameter(f"sctp ports are not supported by this node: {key}")
    return int(match.group(1)), match.group(2) or "tcp"


def _host_port(value) -> tuple[int, int]:
    """HostPort "" / "8080" / "8000-8010" -> (first, last); (0, 0) = a random port."""
    if value in (None, ""):
        return 0, 0
    match = _HOST_PORT.match(str(value))
    if not match:
        raise InvalidParameter(f'invalid port specification: "{value}"')
    first, last = int(match.group(1)), int(match.group(2) or match.group(1))
    if not 0 < first <= last < 65536:
        raise InvalidParameter(f'invalid port range: "{value}"')
    return first, last


def _bindings(host_config: dict) -> dict:
    bindings = host_config.get("PortBindings") or {}
    if not isinstance(bindings, dict):
        raise InvalidParameter("PortBindings must be an object")
    return bindings


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields and Docker's conflicting options (no database access)."""
    mode = host_config.get("NetworkMode") or ""
    if not isinstance(mode, str):
        raise InvalidParameter("NetworkMode must be a string")
    if mode.startswith("container:") and not mode.split(":", 1)[1]:
        raise InvalidParameter(f"invalid network mode: {mode}")
    bindings = _bindings(host_config)
    for key, entries in bindings.items():
        parse_port(key)
        if entries is not None and not isinstance(entries, list):
            raise InvalidParameter(f"PortBindings[{key}] must be a list")
        for entry in entries or []:
            if not isinstance(entry, dict):
                raise InvalidParameter(f"PortBindings[{key}] must be a list of objects")
            _host_port(entry.get("HostPort"))
            _host_ip(entry.get("HostIp"))
    for key in config.get("ExposedPorts") or {}:
        parse_port(key)
    links = host_config.get("Links") or []
    if not isinstance(links, list) or not all(isinstance(x, str) and x for x in links):
        raise InvalidParameter("Links must be a list of strings")
    if mode.startswith("container:"):
        if bindings or host_config.get("PublishAllPorts") or config.get("ExposedPorts"):
            raise InvalidParameter("conflicting options: port publishing and the container "
                                   "type network mode")
        if config.get("Hostname"):
            raise InvalidParameter("conflicting options: hostname and the network mode")
        if host_config.get("Dns"):
            raise InvalidParameter("conflicting options: dns and the network mode")
        if host_config.get("ExtraHosts"):
            raise InvalidParameter("conflicting options: custom host-to-IP mapping and the "
                                   "network mode")
        if links:
            raise InvalidParameter("conflicting options: container type network can't be "
                                   "used with links. This would result in undefined behavior")
    if mode == "host" and links:
        raise InvalidParameter("conflicting options: host type networking can't be used with "
                               "links. This would result in undefined behavior")


def _host_ip(value) -> str:
    import ipaddress

    if value in (None, "", "0.0.0.0"):
        return ""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise InvalidParameter(f"invalid IP address: {value}") from None


def _endpoint_config(networking_config: dict | None, mode: str, network) -> dict:
    """The EndpointSettings for the container's network (the CLI keys it by --network as
    given, "default" without one)."""
    endpoints = (networking_config or {}).get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
    if len(endpoints) > 1:
        raise InvalidParameter("Container cannot be connected to network endpoints: "
                               + ", ".join(endpoints))
    for key, value in endpoints.items():
        names = {mode, *((network.name, network.id) if network is not None else ())}
        if key not in names and not (network is not None and network.id.startswith(key)):
            raise InvalidParameter(f"network {key} is not the container's network mode")
        return value or {}
    return {}


def endpoint_settings(endpoint_config: dict) -> tuple[str, list[str], list[str]]:
    """(static IPv4 address, aliases, links) of an EndpointSettings object."""
    if not isinstance(endpoint_config, dict):
        raise InvalidParameter("EndpointConfig must be an object")
    ipam = endpoint_config.get("IPAMConfig") or {}
    aliases = endpoint_config.get("Aliases") or []
    links = endpoint_config.get("Links") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidParameter("Aliases must be a list of strings")
    if not isinstance(links, list) or not all(isinstance(a, str) for a in links):
        raise InvalidParameter("Links must be a list of strings")
    return (ipam.get("IPv4Address") or "") if isinstance(ipam, dict) else "", aliases, links


def resolve_links(user, links: list[str]) -> list[str]:
    """--link name[:alias] -> "container name:alias" (the container must exist)."""
    from . import services

    resolved = []
    for link in links:
        name, _, alias = link.partition(":")
        try:
            target = services.resolve(user, name)
        except NotFound:
            raise InvalidParameter(f"could not get container for {name}") from None
        resolved.append(f"{target.name}:{alias or target.name}")
    return resolved


def resolve(acting_user, config: dict, host_config: dict,
            networking_config: dict | None) -> dict:
    """At create: {"network": Network|None, "ip", "aliases", "links", "join": container id|None,
    "host": whether it is the node's network (--network host, team policy)}."""
    from panel.networks import services as networks

    from . import services

    mode = mode_of(host_config)
    raw_mode = host_config.get("NetworkMode") or "default"
    plan = {"network": None, "ip": "", "aliases": [], "links": [], "join": None, "host": False}
    if mode.startswith("container:"):
        try:
            other = services.resolve(acting_user, mode.split(":", 1)[1])
        except NotFound as exc:
            raise InvalidParameter(exc.message) from None
        plan["join"] = other.id
        if _endpoint_config(networking_config, raw_mode, None).get("IPAMConfig"):
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
        return plan
    try:
        network = networks.resolve(acting_user, mode)
    except NotFound as exc:
        raise InvalidParameter(exc.message) from None
    if network.driver in ("host", "null"):
        if _endpoint_config(networking_config, raw_mode, network).get("IPAMConfig"):
            raise InvalidParameter("user specified IP address is supported on user defined "
                                   "networks only")
        plan["host"] = network.driver == "host"
        return plan
    ip, aliases, links = endpoint_settings(_endpoint_config(networking_config, raw_mode,
                                                            network))
    if aliases and networks.is_default_bridge(network):
        raise InvalidParameter("network-scoped alias is supported only for containers in "
                               "user defined networks")
    if ip:
        networks.check_static_ip(network, ip)
    plan.update(network=network, ip=ip, aliases=aliases,
                links=resolve_links(acting_user, [*links, *(host_config.get("Links") or [])]))
    return plan


def make_endpoints(container, plan: dict) -> None:
    """In create's transaction: the container's address on its network (IPAM)."""
    from panel.networks import services as networks

    if plan["network"] is not None:
        networks.allocate(plan["network"], container, ip=plan["ip"], aliases=plan["aliases"],
                          links=plan["links"])


# ---------------------------------------------------------------- ports


def exposed_ports(container) -> list[str]:
    """"80/tcp" keys of the image's EXPOSE, Config.ExposedPorts and the published ports."""
    image_config = container.image.run_config if container.image_id else {}
    keys = {*(image_config.get("ExposedPorts") or {}),
            *((container.spec.get("Config") or {}).get("ExposedPorts") or {}),
            *_bindings(container.host_config)}
    ports = {parse_port(k) for k in keys}
    return [f"{port}/{proto}" for port, proto in sorted(ports)]


def explicit_host_ports(host_config: dict) -> list[tuple[str, int, int]]:
    """(port key, first, last) of each binding that names its host port(s) (-p 80:80,
    -p 8000-8010:80); the random ones (-p 80, -P) are left out (team policy's low ports)."""
    out = []
    for key, entries in _bindings(host_config).items():
        for entry in entries or []:
            first, last = _host_port((entry or {}).get("HostPort"))
            if first:
                out.append((key, first, last))
    return out


def wanted_ports(container) -> list[dict]:
    """The host ports to bind at start: PortBindings, and with PublishAllPorts (-P) a random
    one for each exposed port that has none."""
    mode = mode_of(container.host_config)
    if mode in ("host", "none") or mode.startswith("container:"):
        return []
    bindings = _bindings(container.host_config)
    wanted = []
    for key, entries in bindings.items():
        port, proto = parse_port(key)
        for entry in entries or [{}]:
            first, last = _host_port(entry.get("HostPort"))
            wanted.append({"container_port": port, "proto": proto,
                           "host_ip": _host_ip(entry.get("HostIp")),
                           "host_port": first, "host_port_end": last})
    if container.host_config.get("PublishAllPorts"):
        bound = {parse_port(k) for k in bindings}
        for key in exposed_ports(container):
            port, proto = parse_port(key)
            if (port, proto) not in bound:
                wanted.append({"container_port": port, "proto": proto, "host_ip": "",
                               "host_port": 0, "host_port_end": 0})
    return wanted


# ---------------------------------------------------------------- on the node


def node_network():
    """This node's NetworkManager (single-node build, like processes.node_runtime)."""
    from workers import node

    return node.network()


def runtime_fields(container) -> dict:
    """ContainerSpec.netns: "host", "" (none: a private netns with lo only), or the netns
    file to join (the container's own, or the one of ``container:<x>``)."""
    mode = mode_of(container.host_config)
    if mode == "host":
        return {"netns": "host"}
    if mode == "none":
        return {"netns": ""}
    if mode.startswith("container:"):
        return {"netns": node_network().netns_path((container.spec.get("Joins") or {})
                                                   .get("net", ""))}
    from panel.networks import services as networks

    network = networks.resolve(None, mode) if mode != "bridge" else None
    if network is not None and network.driver in ("host", "null"):
        return {"netns": "host" if network.driver == "host" else ""}
    return {"netns": node_network().netns_path(container.id)}


def plumb(container) -> None:
    """Before a start: the networks' bridges, the container's netns with its veths and
    addresses, and its host ports. A taken port: Conflict with Docker's words; nothing
    stays half-made."""
    from panel.networks import services as networks
    from workers.runtime.network.types import PortInUse

    mode = mode_of(container.host_config)
    if mode.startswith("container:"):
        joined = (container.spec.get("Joins") or {}).get("net", "")
        from .models import Container

        other = Container.objects.filter(pk=joined).first()
        if other is None or not other.is_running:
            raise Conflict(f"cannot join network of a non running container: {joined}")
        return
    endpoints = networks.endpoints_of(container)
    if not endpoints:
        return  # host, none
    manager = node_network()
    first = endpoints[0]
    wanted = [] if first.network.internal else wanted_ports(container)
    try:
        bindings = networks.allocate_ports(container, wanted, first.ip)
        manager.setup_container(container.id, [networks.runtime_endpoint(e) for e in endpoints],
                                bindings)
    except (PortInUse, Conflict) as exc:
        networks.release_ports(container)
        raise Conflict(f"driver failed programming external connectivity on endpoint "
                       f"{container.name} ({first.id}): {exc}") from None
    except BaseException:
        networks.release_ports(container)
        raise


def unplumb(container) -> None:
    """The container stopped for good or is removed: its host ports are free and its
    veths and netns are gone (its addresses stay until it leaves the network)."""
    from panel.networks import services as networks

    networks.release_ports(container)
    try:
        node_network().teardown_container(container.id)
    except Exception:  # noqa: BLE001 - a stop is recorded even if the node cannot clean up
        log.exception("could not tear down the network of container %s", container.id)
