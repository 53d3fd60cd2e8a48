"""/networks...: thin views over panel.networks.services in Docker's JSON shapes, and the
network parts of a container's inspect and ps entries (NetworkSettings, Ports)."""


from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse

from panel.containers import services as containers
from panel.networks import services
from panel.networks.models import Network

from .common import (
    BadRequest,
    endpoint,
    finish_jobs,
    json_body,
    name_matches,
    query_filters,
    rfc3339,
)

LIST_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
PRUNE_FILTERS = {"label", "label!", "until"}
_RUNNING = ("running", "paused", "restarting")


def network_json(network: Network, *, with_containers: bool = True) -> dict:
    data = {
        "Name": network.name,
        "Id": network.id,
        "Created": rfc3339(network.created),
        "Scope": network.scope,
        "Driver": network.driver,
        "EnableIPv6": False,
        "IPAM": network.ipam or {"Driver": "default", "Options": None, "Config": []},
        "Internal": network.internal,
        "Attachable": network.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {},
        "Options": network.options or {},
        "Labels": network.labels or {},
    }
    if with_containers:
        for ep in services.containers_of(network):
            if ep.container.state in _RUNNING:
                data["Containers"][ep.container_id] = {
                    "Name": ep.container.name, "EndpointID": ep.id, "MacAddress": ep.mac,
                    "IPv4Address": f"{ep.ip}/{_prefixlen(network)}", "IPv6Address": ""}
    return data


def _prefixlen(network: Network) -> int:
    return int(network.subnet.split("/")[1]) if network.subnet else 0


def _list(request):
    filters = query_filters(request, known=LIST_FILTERS)
    for kind in filters.get("type", []):
        if kind not in ("custom", "builtin"):
            raise BadRequest(f"invalid filter: 'type'='{kind}'")
    found = []
    for network in services.visible_networks(request.user).order_by("name"):
        if filters.get("name") and not any(name_matches(v, network.name) for v in filters["name"]):
            continue
        if filters.get("id") and not any(network.id.startswith(v) for v in filters["id"]):
            continue
        if filters.get("driver") and network.driver not in filters["driver"]:
            continue
        if filters.get("scope") and network.scope not in filters["scope"]:
            continue
        if filters.get("type") and ("builtin" if network.is_default else "custom") \
                not in filters["type"]:
            continue
        if not services.matches_labels_of(network.labels or {}, filters):
            continue
        if filters.get("dangling"):
            dangling = filters["dangling"][0].lower() in ("1", "true")
            if dangling != (not network.is_default and not network.endpoints.exists()):
                continue
        found.append(network_json(network, with_containers=False))
    return JsonResponse(found, safe=False)


async def _create(request):
    body = json_body(request)
    network = await sync_to_async(services.create)(
        acting_user=request.user, name=body.get("Name"), driver=body.get("Driver") or "bridge",
        labels=body.get("Labels"), options=body.get("Options"), ipam=body.get("IPAM"),
        internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
        scope=body.get("Scope") or "", enable_ipv6=bool(body.get("EnableIPv6")),
        source="api")
    await finish_jobs([network.job.id])
    return JsonResponse({"Id": network.id, "Warning": ""}, status=201)


def _inspect(request, ref):
    return JsonResponse(network_json(services.resolve(request.user, ref)))


async def _remove(request, ref):
    network = await sync_to_async(services.resolve)(request.user, ref)
    job = await sync_to_async(services.remove)(acting_user=request.user, network=network)
    await finish_jobs([job.id])
    return HttpResponse(status=204)


def _connect_args(request, ref):
    body = json_body(request)
    network = services.resolve(request.user, ref)
    container = containers.resolve(request.user, str(body.get("Container") or ""))
    return body, network, container


async def _connect(request, ref):
    from panel.containers.networking import endpoint_settings, resolve_links

    def connect():
        body, network, container = _connect_args(request, ref)
        ip, aliases, links = endpoint_settings(body.get("EndpointConfig") or {})
        return services.connect(acting_user=request.user, network=network,
                                container=container, ip=ip, aliases=aliases,
                                links=resolve_links(request.user, links))

    job = await sync_to_async(connect)()
    if job is not None:
        await finish_jobs([job.id])
    return HttpResponse(status=200)


async def _disconnect(request, ref):
    def disconnect():
        body, network, container = _connect_args(request, ref)
        return services.disconnect(acting_user=request.user, network=network,
                                   container=container, force=bool(body.get("Force")))

    job = await sync_to_async(disconnect)()
    if job is not None:
        await finish_jobs([job.id])
    return HttpResponse(status=200)


async def _prune(request):
    filters = query_filters(request, known=PRUNE_FILTERS)
    removed, made = await sync_to_async(services.prune)(acting_user=request.user,
                                                         filters=filters)
    await finish_jobs([job.id for job in made])
    return JsonResponse({"NetworksDeleted": removed or None})


network_list = endpoint(GET=_list)
network_create = endpoint(POST=_create)
network_detail = endpoint(GET=_inspect, DELETE=_remove)
network_connect = endpoint(POST=_connect)
network_disconnect = endpoint(POST=_disconnect)
network_prune = endpoint(POST=_prune)


# ---------------------------------------------------------------- containers' network parts


def _endpoint_json(network: Network, ep, running: bool) -> dict:
    shown = running and ep is not None
    user_network = not services.is_default_bridge(network) and network.driver == "bridge"
    aliases = None
    if ep is not None and user_network:
        aliases = [*ep.aliases, ep.container_id[:12]]
    return {
        "IPAMConfig": {"IPv4Address": ep.ip} if ep is not None and ep.static else None,
        "Links": (ep.links or None) if ep is not None else None,
        "Aliases": aliases,
        "NetworkID": network.id,
        "EndpointID": ep.id if shown else "",
        "Gateway": network.gateway if shown else "",
        "IPAddress": ep.ip if shown else "",
        "IPPrefixLen": _prefixlen(network) if shown else 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": ep.mac if shown else "",
        "DriverOpts": None,
    }


def networks_of(container) -> dict:
    """NetworkSettings.Networks: {name: EndpointSettings}."""
    from panel.containers.networking import mode_of

    running = container.state in _RUNNING
    mode = mode_of(container.host_config)
    if mode.startswith("container:"):
        return {}
    endpoints = services.endpoints_of(container)
    if endpoints:
        return {ep.network.name: _endpoint_json(ep.network, ep, running) for ep in endpoints}
    network = Network.objects.filter(name=mode, team__isnull=True).first()
    return {network.name: _endpoint_json(network, None, running)} if network else {}


def network_settings(container) -> dict:
    """Inspect's NetworkSettings; the top-level address fields are the default bridge's
    (empty on other networks), as Docker shows them."""
    from panel.containers.networking import node_network

    running = container.state in _RUNNING
    networks = networks_of(container)
    bridge = networks.get("bridge") or {}
    return {
        "Bridge": "",
        "SandboxID": container.id if running and networks else "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": services.docker_ports(container) if running else {},
        "SandboxKey": node_network().netns_path(container.id) if running and networks else "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.get("EndpointID", ""),
        "Gateway": bridge.get("Gateway", ""),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.get("IPAddress", ""),
        "IPPrefixLen": bridge.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "MacAddress": bridge.get("MacAddress", ""),
        "Networks": networks,
    }


def summary_ports(container) -> list[dict]:
    """ps's Ports: published ports with their host side, exposed ones without."""
    from panel.containers.networking import exposed_ports, parse_port

    if container.state not in _RUNNING:
        return []
    published = services.ports_of(container)
    shown = [{"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
              "PublicPort": p.host_port, "Type": p.proto} for p in published]
    bound = {(p.container_port, p.proto) for p in published}
    for key in exposed_ports(container):
        port, proto = parse_port(key)
        if (port, proto) not in bound:
            shown.append({"PrivatePort": port, "Type": proto})
    return shown
