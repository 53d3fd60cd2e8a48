"""Names as Docker resolves them, computed from the database.

- ``view(container)``: what the embedded resolver (workers/runtime/network/dns.py) answers
  in a container on user networks: the names, short ids and --network-alias aliases of the
  running containers on the same user networks (also as "<name>.<network>"), and its own
  --link aliases there.
- ``validate(host_config)``, ``runtime_fields(container)``: --dns, --dns-search,
  --dns-option, --add-host, and ContainerSpec's addresses, links (/etc/hosts entries) and
  embedded_dns. Docker's rule: the default bridge has no name resolution but --link.
- ``link_env(container)``: the environment variables of --link on the default bridge.
- ``refresh()``: bring the worker's resolver in line with the database (worker only).
"""

import ipaddress
import logging
import threading

from panel.containers.models import Container
from panel.errors import Conflict, InvalidParameter

from .models import Endpoint, Network
from .services import endpoints_of, is_default_bridge

log = logging.getLogger(__name__)
LIVE_STATES = (Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING)
HOST_GATEWAY = "host-gateway"  # --add-host name:host-gateway
_refresh_lock = threading.Lock()


def _is_user_network(endpoint: Endpoint) -> bool:
    return endpoint.network.driver == "bridge" and not is_default_bridge(endpoint.network)


def _live(endpoint: Endpoint, starting: str) -> bool:
    return endpoint.container_id == starting or endpoint.container.state in LIVE_STATES


def _link_target(links_endpoint: Endpoint, link: str, starting: str = ""):
    """"name:alias" -> (alias, the running target's endpoint on the same network); the
    endpoint is None when the target is gone or does not run."""
    name, _, alias = link.partition(":")
    target = Endpoint.objects.filter(network=links_endpoint.network,
                                     container__name=name.lstrip("/")).select_related(
        "container").first()
    return alias or name, (target if target is not None and _live(target, starting) else None)


def view(container, starting: str = "") -> dict[str, list[str]]:
    """name -> IPv4 addresses, for the running containers that share a user network with
    ``container`` (``starting``: the id of one that counts as running already)."""
    names: dict[str, list[str]] = {}
    aliases: dict[str, list[str]] = {}
    for own in endpoints_of(container):
        if not _is_user_network(own):
            continue
        peers = Endpoint.objects.filter(network=own.network).select_related("container")
        for peer in peers:
            if peer.container_id == container.id or _live(peer, starting):
                for name in (peer.container.name, peer.container_id[:12], *peer.aliases):
                    # also "<name>.<network>": that network's address only
                    for key in (name, f"{name}.{own.network.name}"):
                        ips = names.setdefault(key.lower(), [])
                        if peer.ip not in ips:
                            ips.append(peer.ip)
        for link in own.links:
            alias, target = _link_target(own, link, starting)
            if target is not None:  # a link alias is the container's own: it wins
                aliases.setdefault(alias.lower(), []).append(target.ip)
    return {**names, **aliases}


def validate(host_config: dict) -> None:
    """--dns, --dns-search, --dns-option and --add-host in a create request."""
    for key in ("Dns", "DnsSearch", "DnsOptions", "ExtraHosts"):
        value = host_config.get(key) or []
        if not isinstance(value, list) or not all(
                isinstance(v, str) and v and not any(c in v for c in " \t\r\n") for v in value):
            raise InvalidParameter(f"{key} must be a list of strings without blanks")
    for addr in host_config.get("Dns") or []:
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise InvalidParameter(f"{addr} is not an ip address") from None
    for entry in host_config.get("ExtraHosts") or []:
        host, sep, addr = entry.partition(":")
        if not sep or not host:
            raise InvalidParameter(f"bad format for add-host: \"{entry}\"")
        try:
            if addr != HOST_GATEWAY:
                ipaddress.ip_address(addr)
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: \"{addr}\"") from None


def runtime_fields(container) -> dict:
    """ContainerSpec.dns, dns_search, dns_options, extra_hosts, addresses, links and
    embedded_dns. With --network container:<x>, x's names (its files, as Docker shares
    them). A --link to a container that does not run refuses the start, as Docker does."""
    joined = (container.spec.get("Joins") or {}).get("net")
    if joined and str(container.host_config.get("NetworkMode", "")).startswith("container:"):
        other = Container.objects.filter(pk=joined).first()
        if other is not None:
            return runtime_fields(other)
    host_config = container.host_config
    fields = {"dns": list(host_config.get("Dns") or []),
              "dns_search": list(host_config.get("DnsSearch") or []),
              "dns_options": list(host_config.get("DnsOptions") or []),
              "extra_hosts": [_host_gateway(container, e)
                              for e in host_config.get("ExtraHosts") or []]}
    endpoints = endpoints_of(container)
    links = []
    for endpoint in endpoints:
        if not is_default_bridge(endpoint.network):
            continue
        for link in endpoint.links:
            alias, target = _link_target(endpoint, link)
            if target is None:
                name = link.partition(":")[0].lstrip("/")
                child = Container.objects.filter(name=name).first()
                if child is not None and child.state in LIVE_STATES:
                    raise Conflict(f"Cannot link to /{name}, as it does not belong to the "
                                   "default network")
                raise Conflict(f"Cannot link to a non running container: /{name} AS "
                               f"/{container.name}/{alias}")
            child = target.container
            names = [alias, (child.spec.get("Config") or {}).get("Hostname") or child.id[:12]]
            if alias != child.name:
                names.append(child.name)
            links.append({"ip": target.ip, "names": names})
    return {**fields, "addresses": [e.ip for e in endpoints], "links": links,
            "embedded_dns": any(_is_user_network(e) for e in endpoints)}


def _host_gateway(container, entry: str) -> str:
    """--add-host name:host-gateway: the default bridge's gateway (the host, as Docker)."""
    host, _, addr = entry.partition(":")
    if addr != HOST_GATEWAY:
        return entry
    bridge = Network.objects.filter(node=container.node, team=None, name="bridge").first()
    if bridge is None or not bridge.gateway:
        raise Conflict("no default bridge network for host-gateway")
    return f"{host}:{bridge.gateway}"


def link_env(container) -> list[str]:
    """Docker's --link variables on the default bridge, for ``--link web:web`` to a
    container exposing 80/tcp: WEB_PORT=tcp://<ip>:80, WEB_PORT_80_TCP(_ADDR, _PORT,
    _PROTO), WEB_NAME=/<container>/web, WEB_ENV_<each variable of web but HOME, PATH>."""
    from panel.containers.networking import exposed_ports, parse_port
    from workers.runtime.spec import merge_env

    env = []
    for endpoint in endpoints_of(container):
        if not is_default_bridge(endpoint.network):
            continue
        for link in endpoint.links:
            alias, target = _link_target(endpoint, link)
            if target is None:
                continue
            prefix = alias.upper().replace("-", "_")
            ip = target.ip
            ports = [parse_port(key) for key in exposed_ports(target.container)]
            if ports:
                env.append(f"{prefix}_PORT={ports[0][1]}://{ip}:{ports[0][0]}")
            env += _port_env(prefix, ip, ports)
            env.append(f"{prefix}_NAME=/{container.name}/{alias}")
            image_env = target.container.image.run_config.get("Env")
            for entry in merge_env(image_env, target.container.env):
                key, _, value = entry.partition("=")
                if key not in ("HOME", "PATH"):
                    env.append(f"{prefix}_ENV_{key}={value}")
    return env


def _port_env(prefix: str, ip: str, ports: list[tuple[int, str]]) -> list[str]:
    """The _PORT_<n>_<PROTO> variables; a run of consecutive ports also gets _START/_END
    ones (Docker's links.go)."""
    env, i = [], 0
    while i < len(ports):
        j = i
        while j + 1 < len(ports) and ports[j + 1][0] == ports[j][0] + 1:
            j += 1
        (first, proto), (last, last_proto) = ports[i], ports[j]
        head = f"{prefix}_PORT_{first}_{proto.upper()}"
        if j > i:
            env += [f"{head}_START={proto}://{ip}:{first}", f"{head}_ADDR={ip}",
                    f"{head}_PROTO={proto}", f"{head}_PORT_START={first}",
                    f"{prefix}_PORT_{first}_{last_proto.upper()}_END={last_proto}://{ip}:{last}",
                    f"{prefix}_PORT_{first}_{last_proto.upper()}_PORT_END={last}"]
        for port, p in ports[i:j + 1]:
            name = f"{prefix}_PORT_{port}_{p.upper()}"
            env += [f"{name}={p}://{ip}:{port}", f"{name}_ADDR={ip}", f"{name}_PORT={port}",
                    f"{name}_PROTO={p}"]
        i = j + 1
    return env


def served(node, starting: str = "") -> dict[str, tuple[dict, list[str] | None]]:
    """container id -> (view, forwarders) for each running container of ``node`` on a user
    network; forwarders are its --dns servers (None: the host's)."""
    ids = set(Endpoint.objects.filter(container__node=node, network__driver="bridge")
              .exclude(network__team=None, network__name="bridge")
              .values_list("container_id", flat=True))
    out = {}
    for container in Container.objects.filter(pk__in=ids):
        if container.id == starting or container.state in LIVE_STATES:
            out[container.id] = (view(container, starting),
                                 list(container.host_config.get("Dns") or []) or None)
    return out


def refresh(starting: str = "") -> None:
    """Attach the embedded resolver to every running container on a user network (and to
    ``starting``, before its process runs), give each its current view, detach the others.
    A no-op outside the worker (no resolver runs there). Like Docker, a container whose
    resolver cannot start still runs: the failure is logged."""
    from panel.nodes.services import local_node
    from workers import node

    resolver = node.resolver()
    if resolver is None:
        return
    with _refresh_lock:
        try:
            wanted = served(local_node(), starting)
        except Exception:  # noqa: BLE001 - called on commit: never break the caller
            log.exception("embedded DNS: cannot compute the views")
            return
        for cid in set(resolver.attached()) - set(wanted):
            resolver.detach(cid)
        for cid, (names, forwarders) in wanted.items():
            try:
                resolver.attach(cid, node.network().netns_path(cid), names, forwarders)
            except OSError as exc:  # its netns is gone (being removed): nothing to serve
                log.warning("embedded DNS: cannot serve %s: %s", cid, exc)
                resolver.detach(cid)
