"""Every change to a network goes through here: permission, validation, audit, job; and the
IPAM (addresses of endpoints, host ports of published ports).

The node's part (``workers.runtime.network.NetworkManager``) runs in the worker: jobs
``network.create`` (payload ``{"network": <NetworkConfig as dict>}``: the bridge and its
rules), ``network.remove`` (same payload; the row is gone already), ``network.connect`` and
``network.disconnect`` (target the container; payload ``{"endpoint": <Endpoint as dict>}``,
sent only when the container runs: a stopped one gets its plumbing at its next start).

Addresses: an ``Endpoint`` row per (container, bridge network), made at create/connect and
deleted at disconnect/removal. ``Endpoint(network, ip)`` is unique in the database, so two
workers or API processes that pick the same free address at once cannot both keep it: the
loser retries with the next one. Host ports: ``PublishedPort`` rows, chosen at each start
(``allocate_ports``) and deleted when the container stops for good (``release_ports``).
"""

import dataclasses
import ipaddress
import re
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from panel.audit import services as audit
from panel.containers.policy import Forbidden
from panel.errors import Conflict, InvalidParameter, NotFound, string_map
from panel.jobs import services as jobs
from panel.nodes.models import Node
from panel.nodes.services import local_node
from panel.teams.services import (
    check_permission,
    deny,
    has_permission,
    hidden,
    primary_team,
    teams_of,
)

from .models import Endpoint, Network, PublishedPort

DEFAULT_NETWORKS = {"bridge": "bridge", "host": "host", "none": "null"}  # name -> driver
ICC = "com.docker.network.bridge.enable_icc"
MTU = "com.docker.network.driver.mtu"
AUTO_POOL = ipaddress.IPv4Network("10.213.0.0/16")  # /24s for networks created without --subnet
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{1,64}$")
_ADDRESS_TRIES = 64


# ---------------------------------------------------------------- lookups


def ensure_defaults(node=None) -> None:
    """The networks every node has: "bridge" (``<prefix>0`` on DOCKYARD_BRIDGE_SUBNET),
    "host" and "none". Idempotent; also follows a changed DOCKYARD_BRIDGE_SUBNET while no
    container is on the bridge."""
    node = node or local_node()
    for name, driver in DEFAULT_NETWORKS.items():
        row = Network.objects.filter(name=name).first()
        if row is None:
            try:
                with transaction.atomic():
                    Network.objects.create(id=secrets.token_hex(32), name=name, node=node,
                                           driver=driver, **_default_fields(name))
            except IntegrityError:  # another process made it at the same moment
                pass
        elif name == "bridge" and row.subnet != settings.BRIDGE_SUBNET \
                and not row.endpoints.exists():
            for field, value in _default_fields(name).items():
                setattr(row, field, value)
            row.save()


def _default_fields(name: str) -> dict:
    if name != "bridge":
        return {"ipam": {"Driver": "default", "Options": None, "Config": []}}
    subnet = ipaddress.IPv4Network(settings.BRIDGE_SUBNET)
    gateway = str(subnet.network_address + 1)
    return {
        "subnet": str(subnet), "gateway": gateway,
        "ipam": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": str(subnet), "Gateway": gateway}]},
        "options": {"com.docker.network.bridge.default_bridge": "true",
                    ICC: "true",
                    "com.docker.network.bridge.enable_ip_masquerade": "true",
                    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                    "com.docker.network.bridge.name": f"{settings.RESOURCE_PREFIX}0",
                    MTU: "1500"},
    }


def visible_networks(user):
    """The networks the user sees: the node's default ones and their teams' networks."""
    ensure_defaults()
    if user is None or user.is_superuser:
        return Network.objects.all()
    teams = teams_of(user)
    if not teams.exists():  # an auditor only sees the audit log
        return Network.objects.none()
    return Network.objects.filter(Q(team__isnull=True) | Q(team__in=teams))


def resolve(user, ref: str) -> Network:
    """A network by full id, exact name, or unique id prefix (Docker's order)."""
    networks = visible_networks(user)
    found = networks.filter(Q(id=ref) | Q(name=ref)).first()
    if found:
        return found
    by_prefix = Q(id__startswith=ref) if _HEX_PREFIX.match(ref or "") else Q()
    if by_prefix:
        matches = list(networks.filter(by_prefix)[:2])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found "
                                   "based on ID prefix)")
    raise hidden(user, f"network {ref} not found", obj_type="network", ref=ref,
                 elsewhere=Network.objects.filter(Q(id=ref) | Q(name=ref) | by_prefix))


def endpoints_of(container) -> list[Endpoint]:
    """The container's endpoints (bridge networks), eth0 first."""
    return sorted(Endpoint.objects.filter(container=container).select_related("network"),
                  key=lambda e: int(e.ifname[3:] or 0))


def containers_of(network: Network) -> list[Endpoint]:
    """The endpoints on a network with their containers (``endpoint.container``), by IP."""
    return sorted(Endpoint.objects.filter(network=network).select_related("container"),
                  key=lambda e: ipaddress.IPv4Address(e.ip))


def ports_of(container) -> list[PublishedPort]:
    """The host ports a running container holds."""
    return list(PublishedPort.objects.filter(container=container))


def is_default_bridge(network: Network) -> bool:
    return network.team_id is None and network.name == "bridge"


def bridge_name(network: Network) -> str:
    from workers.runtime.network.types import bridge_name as name_of

    return name_of(settings.RESOURCE_PREFIX, network.id, default=is_default_bridge(network))


def network_config(network: Network):
    """The runtime's NetworkConfig of a bridge network."""
    from workers.runtime.network.types import NetworkConfig

    return NetworkConfig(
        id=network.id, name=network.name, bridge=bridge_name(network), subnet=network.subnet,
        gateway=network.gateway, internal=network.internal,
        icc=(network.options or {}).get(ICC, "true").lower() not in ("false", "0"),
        allow=allowed_pairs(network), mtu=int((network.options or {}).get(MTU) or 1500))


def allowed_pairs(network: Network) -> list[dict]:
    """The allow list with container names replaced by their addresses on this network, as
    the firewall takes it; a pair whose container has no address here yet is left out (its
    start re-applies the network's rules)."""
    addresses = dict(Endpoint.objects.filter(network=network)
                     .values_list("container__name", "ip"))
    pairs = []
    for rule in network.allow or []:
        src, dst = (addresses.get(rule[end], rule[end]) for end in ("src", "dst"))
        if all(_is_ipv4(ip) for ip in (src, dst)):
            pairs.append({**rule, "src": src, "dst": dst})
    return pairs


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def runtime_endpoint(endpoint: Endpoint):
    """The runtime's Endpoint for a row (eth0 gets the default route)."""
    from workers.runtime.network.types import Endpoint as RuntimeEndpoint

    net = network_config(endpoint.network)
    return RuntimeEndpoint(network=net, endpoint_id=endpoint.id, ifname=endpoint.ifname,
                           ip=endpoint.ip, prefixlen=net.prefixlen, mac=endpoint.mac,
                           default_route=endpoint.ifname == "eth0")


def bridge_networks(node) -> list[Network]:
    return list(Network.objects.filter(node=node, driver="bridge").exclude(subnet=""))


# ---------------------------------------------------------------- networks


def _summary(network: Network) -> dict:
    return {"name": network.name, "driver": network.driver, "subnet": network.subnet,
            "ip_range": network.ip_range, "gateway": network.gateway,
            "internal": network.internal, "labels": network.labels,
            "options": network.options}


def _enqueue(kind: str, network: Network, actor, payload: dict):
    return jobs.enqueue(kind, target_type="network", target_id=network.id,
                        target_repr=network.name, actor=actor, team=network.team,
                        node=network.node, payload=payload)


def _ipv4_net(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid {what} {text}") from None
    if str(net.network_address) != text.split("/")[0]:
        raise InvalidParameter(f"invalid {what} {text} : it should be {net}")
    return net


def _overlaps(subnet: ipaddress.IPv4Network, node) -> bool:
    return any(subnet.overlaps(ipaddress.IPv4Network(n.subnet)) for n in bridge_networks(node))


def _ipam_config(ipam, node) -> tuple[ipaddress.IPv4Network, str, str]:
    """(subnet, ip_range, gateway) from Docker's IPAM object; a free /24 of AUTO_POOL when
    no subnet is given."""
    ipam = ipam or {}
    if not isinstance(ipam, dict):
        raise InvalidParameter("IPAM must be an object")
    if (ipam.get("Driver") or "default") != "default":
        raise NotFound(f'plugin "{ipam["Driver"]}" not found')
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidParameter("IPAM.Config must be a list of objects")
    configs = [c for c in configs if ":" not in (c.get("Subnet") or "")]  # IPv4 only
    if len(configs) > 1:
        raise InvalidParameter("this node supports one IPv4 subnet per network")
    config = configs[0] if configs else {}
    if not config.get("Subnet"):
        if config.get("IPRange") or config.get("Gateway"):
            raise InvalidParameter("ip-range and gateway need a subnet")
        pool = list(AUTO_POOL.subnets(new_prefix=24))
        start = secrets.randbelow(len(pool))  # nodes side by side rarely pick the same one
        for subnet in pool[start:] + pool[:start]:
            if not _overlaps(subnet, node):
                return subnet, "", str(subnet.network_address + 1)
        raise Forbidden("could not find an available, non-overlapping IPv4 address pool "
                        "among the defaults to assign to the network")
    subnet = _ipv4_net(config["Subnet"], "subnet")
    if subnet.prefixlen > 30:
        raise InvalidParameter(f"subnet {subnet} is too small")
    ip_range = ""
    if config.get("IPRange"):
        rng = _ipv4_net(config["IPRange"], "ip-range")
        if not rng.subnet_of(subnet):
            raise InvalidParameter(f"no matching subnet for range {rng}")
        ip_range = str(rng)
    gateway = config.get("Gateway") or str(subnet.network_address + 1)
    try:
        gateway_ip = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise InvalidParameter(f"invalid gateway address {gateway}") from None
    if gateway_ip not in subnet or gateway_ip in (subnet.network_address,
                                                  subnet.broadcast_address):
        raise InvalidParameter(f"no matching subnet for gateway {gateway}")
    return subnet, ip_range, gateway


def create(*, acting_user, name: str, driver: str = "bridge", labels=None, options=None,
           ipam=None, internal: bool = False, attachable: bool = False, scope: str = "",
           enable_ipv6: bool = False, team=None, source: str = "api") -> Network:
    """`docker network create` (the seed's flags: --driver bridge, --label, --attachable,
    --scope local, --subnet, --ip-range, --gateway, --internal, -o). ``network.job``: the
    node's job that builds the bridge. Errors with Docker's words: the name taken (409),
    "Pool overlaps with other one on this address space" (403)."""
    team = team or primary_team(acting_user)
    check_permission(acting_user, team, "operate")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameter(f'invalid name: "{name}": names must match '
                               "[a-zA-Z0-9][a-zA-Z0-9_.-]*")
    driver = driver or "bridge"
    if driver in ("host", "null"):
        raise Forbidden(f'only one instance of "{driver}" network is allowed')
    if driver != "bridge":
        raise NotFound(f'plugin "{driver}" not found')
    if scope not in ("", "local"):
        raise InvalidParameter(f'scope "{scope}" is not supported by the bridge driver')
    if enable_ipv6:
        raise InvalidParameter("IPv6 networks are not supported by this node")
    labels = string_map(labels, "Labels")
    options = string_map(options, "Options")
    if options.get(ICC, "true").lower() not in ("true", "false", "1", "0"):
        raise InvalidParameter(f"invalid value for {ICC}: {options[ICC]}")
    node = local_node()
    ensure_defaults(node)
    with transaction.atomic():
        if Network.objects.filter(name=name).exists():
            raise Conflict(f"network with name {name} already exists")
        subnet, ip_range, gateway = _ipam_config(ipam, node)
        # Overlaps are checked under the node row's lock: two creates cannot both pass.
        Node.objects.select_for_update().get(pk=node.pk)
        if _overlaps(subnet, node):
            raise Forbidden("Pool overlaps with other one on this address space")
        ipam_config = {"Subnet": str(subnet), "Gateway": gateway,
                       **({"IPRange": ip_range} if ip_range else {})}
        try:
            with transaction.atomic():
                network = Network.objects.create(
                    id=secrets.token_hex(32), name=name, team=team, node=node, driver=driver,
                    scope="local", labels=labels, internal=bool(internal),
                    attachable=bool(attachable), subnet=str(subnet), ip_range=ip_range,
                    gateway=gateway, options=options,
                    ipam={"Driver": "default", "Options": {}, "Config": [ipam_config]})
        except IntegrityError:
            raise Conflict(f"network with name {name} already exists") from None
        audit.record("network.create", actor=acting_user, team=team, obj_type="network",
                     obj_id=network.id, obj_repr=name, after=_summary(network), source=source)
        network.job = _enqueue("network.create", network, acting_user,
                               {"network": dataclasses.asdict(network_config(network))})
    return network


def _check_removable(network: Network) -> None:
    if network.endpoints.exists():
        raise Forbidden(f"error while removing network: network {network.name} id "
                        f"{network.id} has active endpoints")


def _check_permission(user, network: Network, permission: str) -> None:
    """The network's team's permission; the default networks belong to the site admins."""
    if network.team is not None:
        check_permission(user, network.team, permission)
    elif user is not None and not user.is_superuser:
        raise deny(user, None, permission,
                   f"Only a site admin may change the network {network.name}.")


def remove(*, acting_user, network: Network, source: str = "api"):
    """`docker network rm`: refused while a container is on it (403, Docker's words) and for
    the default networks. Returns the node's job (the bridge and its rules go)."""
    if network.is_default:
        raise Forbidden(f"{network.name} is a pre-defined network and cannot be removed")
    _check_permission(acting_user, network, "operate")
    with transaction.atomic():
        network = Network.objects.select_for_update().get(pk=network.pk)
        _check_removable(network)
        return _delete(network, acting_user, source)


def _delete(network: Network, actor, source: str):
    audit.record("network.remove", actor=actor, team=network.team, obj_type="network",
                 obj_id=network.id, obj_repr=network.name, before=_summary(network),
                 source=source)
    job = _enqueue("network.remove", network, actor,
                   {"network": dataclasses.asdict(network_config(network))})
    network.delete()
    return job


def matches_labels_of(labels: dict, filters: dict) -> bool:
    from panel.volumes.services import matches_labels_of as volume_labels_match

    return volume_labels_match(labels, filters)


def prune(*, acting_user, filters=None, source: str = "api") -> tuple[list[str], list]:
    """`docker network prune`: the user's unused networks (not the default ones), filtered
    by ``label``/``label!``. -> (removed names, the node's jobs)."""
    filters = filters or {}
    removed, made = [], []
    for network in visible_networks(acting_user).filter(team__isnull=False).order_by("name"):
        if not matches_labels_of(network.labels or {}, filters):
            continue
        if not has_permission(acting_user, network.team, "operate"):
            continue
        with transaction.atomic():
            row = Network.objects.select_for_update().filter(pk=network.pk).first()
            if row is None or row.endpoints.exists():
                continue
            made.append(_delete(row, acting_user, source))
        removed.append(network.name)
    return removed, made


def set_policy(*, acting_user, network: Network, icc: bool, allow: list[dict],
               source: str = "web"):
    """Dockyard's addition: with icc off only the listed pairs talk. ``allow``: dicts
    {"src": ip or container name, "dst": ..., "proto": "tcp"|"udp"|None, "port": int|None}.
    Re-applies the network's rules on the node (job ``network.create`` is idempotent)."""
    _check_permission(acting_user, network, "manage")
    if network.driver != "bridge":
        raise InvalidParameter(f"network {network.name} has no policy: driver {network.driver}")
    clean = []
    for rule in allow or []:
        if not isinstance(rule, dict) or not rule.get("src") or not rule.get("dst"):
            raise InvalidParameter("each allowed pair needs src and dst")
        proto = rule.get("proto") or None
        if proto not in (None, "tcp", "udp"):
            raise InvalidParameter(f"invalid protocol {proto}")
        port = rule.get("port")
        if port not in (None, "") and not (str(port).isdigit() and 0 < int(port) < 65536):
            raise InvalidParameter(f"invalid port {port}")
        clean.append({"src": str(rule["src"]), "dst": str(rule["dst"]), "proto": proto,
                      "port": int(port) if port not in (None, "") else None})
    with transaction.atomic():
        row = Network.objects.select_for_update().get(pk=network.pk)
        before = {"icc": row.options.get(ICC, "true"), "allow": row.allow}
        row.options = {**row.options, ICC: "true" if icc else "false"}
        row.allow = clean
        row.save(update_fields=["options", "allow"])
        audit.record("network.policy", actor=acting_user, team=row.team, obj_type="network",
                     obj_id=row.id, obj_repr=row.name, before=before,
                     after={"icc": row.options[ICC], "allow": clean}, source=source)
        return _enqueue("network.create", row, acting_user,
                        {"network": dataclasses.asdict(network_config(row))})


# ---------------------------------------------------------------- IPAM


def _candidates(network: Network):
    subnet = ipaddress.IPv4Network(network.subnet)
    pool = ipaddress.IPv4Network(network.ip_range) if network.ip_range else subnet
    reserved = {subnet.network_address, subnet.broadcast_address,
                ipaddress.IPv4Address(network.gateway)}
    return (ip for ip in pool if ip not in reserved)


def check_static_ip(network: Network, ip: str) -> str:
    """A --ip address: in the subnet, not the gateway, network or broadcast address."""
    if network.driver != "bridge" or is_default_bridge(network):
        raise InvalidParameter("user specified IP address is supported on user defined "
                               "networks only")
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IPv4 address: {ip}") from None
    subnet = ipaddress.IPv4Network(network.subnet)
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address,
                                            ipaddress.IPv4Address(network.gateway)):
        raise InvalidParameter(f"no configured subnet or ip-range contain the IP address {ip}")
    return str(address)


def allocate(network: Network, container, *, ip: str = "", aliases=None, links=None,
             ifname: str = "") -> Endpoint:
    """An endpoint for the container with the first free address of the ip-range (or
    subnet), or the static ``ip`` (Conflict when taken). Safe against concurrent callers in
    other threads, processes or workers: the database refuses a second row for one address
    and the loser moves on."""
    from workers.runtime.network.types import docker_mac

    if ip:
        ip = check_static_ip(network, ip)
    ifname = ifname or _next_ifname(container)
    for _ in range(_ADDRESS_TRIES):
        used = _used_addresses(network)
        if ip:
            if ip in used:
                raise Conflict(f"Address already in use: {ip}")
            chosen = ip
        else:
            chosen = next((str(a) for a in _candidates(network) if str(a) not in used), None)
            if chosen is None:
                raise Conflict(f"no available IPv4 addresses on this network's address "
                               f"pools: {network.name} ({network.id})")
        try:
            with transaction.atomic():
                return Endpoint.objects.create(
                    id=secrets.token_hex(32), network=network, container=container, ip=chosen,
                    mac=docker_mac(chosen), ifname=ifname, static=bool(ip),
                    aliases=list(aliases or []), links=list(links or []))
        except IntegrityError:
            if Endpoint.objects.filter(network=network, container=container).exists():
                raise Forbidden(f"endpoint with name {container.name} already exists in "
                                f"network {network.name}") from None
            if ip:
                raise Conflict(f"Address already in use: {ip}") from None
    raise Conflict(f"could not allocate an address on network {network.name}: too busy")


def _used_addresses(network: Network) -> set[str]:
    return set(Endpoint.objects.filter(network=network).values_list("ip", flat=True))


def _next_ifname(container) -> str:
    taken = set(Endpoint.objects.filter(container=container).values_list("ifname", flat=True))
    return next(f"eth{n}" for n in range(len(taken) + 1) if f"eth{n}" not in taken)


# ---------------------------------------------------------------- connect / disconnect


def _check_connectable(container, network: Network) -> None:
    mode = container.host_config.get("NetworkMode") or ""
    if network.driver == "host" or mode == "host":
        raise Forbidden("container cannot be disconnected from host network or connected to "
                        "host network")
    if network.driver == "null" or mode == "none":
        raise Forbidden("container cannot be connected to multiple networks with one of the "
                        "networks in private (none) mode")
    if mode.startswith("container:"):
        raise Forbidden("conflicting options: container type network can't be used with "
                        "multiple networks")


def connect(*, acting_user, network: Network, container, ip: str = "", aliases=None,
            links=None, source: str = "api"):
    """`docker network connect [--ip] [--alias]`: a new endpoint (eth1...); a running
    container gets it at once (job ``network.connect``, returned), a stopped one at its
    next start (None)."""
    check_permission(acting_user, container.team, "operate")
    _check_connectable(container, network)
    with transaction.atomic():
        endpoint = allocate(network, container, ip=ip, aliases=aliases, links=links)
        audit.record("network.connect", actor=acting_user, team=container.team,
                     obj_type="network", obj_id=network.id, obj_repr=network.name,
                     after={"container": container.id, "ip": endpoint.ip}, source=source)
        if not container.is_running:
            return None
        return _container_job("network.connect", container, acting_user, endpoint)


def disconnect(*, acting_user, network: Network, container, force: bool = False,
               source: str = "api"):
    """`docker network disconnect`: the endpoint (and its address) goes; a running
    container loses the interface at once (job ``network.disconnect``, returned)."""
    check_permission(acting_user, container.team, "operate")
    with transaction.atomic():
        endpoint = Endpoint.objects.select_related("network").filter(
            network=network, container=container).first()
        if endpoint is None:
            if network.driver == "host" or (container.host_config.get("NetworkMode") == "host"):
                raise Forbidden("container cannot be disconnected from host network or "
                                "connected to host network")
            raise Forbidden(f"container {container.id} is not connected to network "
                            f"{network.name}")
        audit.record("network.disconnect", actor=acting_user, team=container.team,
                     obj_type="network", obj_id=network.id, obj_repr=network.name,
                     before={"container": container.id, "ip": endpoint.ip},
                     after={"force": force}, source=source)
        job = (_container_job("network.disconnect", container, acting_user, endpoint)
               if container.is_running else None)
        endpoint.delete()
        return job


def _container_job(kind: str, container, actor, endpoint: Endpoint):
    return jobs.enqueue(kind, target_type="container", target_id=container.id,
                        target_repr=container.name, actor=actor, team=container.team,
                        node=container.node,
                        payload={"endpoint": dataclasses.asdict(runtime_endpoint(endpoint))})


def endpoint_from_payload(data: dict):
    """A job payload's endpoint back as the runtime's Endpoint."""
    from workers.runtime.network.types import Endpoint as RuntimeEndpoint
    from workers.runtime.network.types import NetworkConfig

    return RuntimeEndpoint(**{**data, "network": NetworkConfig(**data["network"])})


# ---------------------------------------------------------------- published ports


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _free_on_host(host_ip: str, proto: str, port: int) -> bool:
    import socket

    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def _taken(node, host_ip: str, proto: str, port: int) -> bool:
    rows = PublishedPort.objects.filter(node=node, proto=proto, host_port=port)
    if host_ip:
        rows = rows.filter(host_ip__in=(host_ip, ""))
    return rows.exists()


def allocate_ports(container, wanted: list[dict], container_ip: str) -> list:
    """Host ports for the container's bindings (``wanted``: {"container_port", "proto",
    "host_ip", "host_port", "host_port_end"}; host_port 0 = a random free port of the
    ephemeral range, a range = its first free port). Records them and returns the
    runtime's PortBindings. A taken port: Conflict with Docker's words ("Bind for
    0.0.0.0:8080 failed: port is already allocated")."""
    from workers.runtime.network.types import PortBinding

    release_ports(container)
    node = container.node
    bindings = []
    try:
        for want in wanted:
            port = _allocate_port(node, container, want)
            bindings.append(PortBinding(container_port=want["container_port"],
                                        proto=want["proto"], host_ip=want["host_ip"],
                                        host_port=port, container_ip=container_ip))
    except Exception:
        release_ports(container)
        raise
    return bindings


def _allocate_port(node, container, want: dict) -> int:
    host_ip, proto = want["host_ip"], want["proto"]
    if want["host_port"]:
        first, last = want["host_port"], want.get("host_port_end") or want["host_port"]
        candidates = list(range(first, last + 1))
    else:
        low, high = _ephemeral_range()
        start = secrets.randbelow(high - low + 1)
        candidates = [low + (start + i) % (high - low + 1) for i in range(high - low + 1)]
    for port in candidates:
        if _taken(node, host_ip, proto, port) or not _free_on_host(host_ip, proto, port):
            continue
        try:
            with transaction.atomic():
                PublishedPort.objects.create(container=container, node=node,
                                             container_port=want["container_port"],
                                             proto=proto, host_ip=host_ip, host_port=port)
            return port
        except IntegrityError:
            continue
    if want["host_port"] and want["host_port"] == (want.get("host_port_end") or
                                                   want["host_port"]):
        raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{want['host_port']} failed: port is "
                       "already allocated")
    raise Conflict("all ports are allocated")


def release_ports(container) -> None:
    """The container stopped for good (or its start failed): its host ports are free."""
    PublishedPort.objects.filter(container=container).delete()


def docker_ports(container) -> dict:
    """NetworkSettings.Ports of a container: {"80/tcp": [{"HostIp", "HostPort"}] or None}
    (exposed but unpublished ports map to None, as Docker shows them)."""
    from panel.containers.networking import exposed_ports

    ports = {key: None for key in exposed_ports(container)}
    for row in ports_of(container):
        shown = ports.get(f"{row.container_port}/{row.proto}") or []
        shown.append({"HostIp": row.host_ip or "0.0.0.0", "HostPort": str(row.host_port)})
        ports[f"{row.container_port}/{row.proto}"] = shown
    return ports
