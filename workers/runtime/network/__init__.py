"""Container networking on one node: bridges, veth pairs, netns files, published ports.

``NetworkManager`` is the one entry point used by workers/tasks.py and the node; it puts
together links.py (pyroute2), netns.py (the per-container netns file) and firewall.py
(nftables, Dockyard's own table only). Every method is idempotent.
"""

from __future__ import annotations

import errno
import os
import re
import socket

from . import firewall, links, netns
from .types import (  # noqa: F401  (re-exported)
    Endpoint,
    NetworkConfig,
    NetworkError,
    PortBinding,
    PortInUse,
    bridge_name,
    docker_mac,
    veth_name,
)

_CID_RE = re.compile(r"^[0-9a-f]{64}$")


def check_ports(ports: list[PortBinding]) -> None:
    """Refuse host ports that another program holds (a bind test on each) or that the
    list names twice, with Docker's words."""
    seen = set()
    for p in ports:
        host = p.host_ip or "0.0.0.0"
        key = (host, p.host_port, p.proto)
        if key in seen:
            raise PortInUse(f"Bind for {host}:{p.host_port} failed: port is already allocated")
        seen.add(key)
        kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:  # a TIME_WAIT left-over is no owner
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, p.host_port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise PortInUse(f"Bind for {host}:{p.host_port} failed: "
                                    "port is already allocated") from None
                raise NetworkError(f"Error starting userland proxy: listen {p.proto}4 "
                                   f"{host}:{p.host_port}: bind: "
                                   f"{os.strerror(e.errno).lower()}") from None


class NetworkManager:
    """Networking for the containers of one node.

    ``state_root`` is the runtime's state root (netns files live in <state root>/netns);
    ``prefix`` is DOCKYARD_PREFIX: every link made starts with it, the nft table and the
    rules' comments carry it (firewall.py).
    """

    def __init__(self, state_root: str, prefix: str) -> None:
        self.state_root = state_root
        self.prefix = prefix

    def ensure_network(self, net: NetworkConfig) -> None:
        """The bridge exists, has the gateway address, MTU and is up; the network's
        firewall rules are in place."""
        with links.node() as ipr:
            self._ensure_network(ipr, net)

    def _ensure_network(self, ipr, net: NetworkConfig) -> None:
        links.ensure_bridge(ipr, net.bridge, net.gateway, net.prefixlen, net.mtu)
        firewall.network_rules(net, self.prefix, ipr)

    def remove_network(self, net: NetworkConfig) -> None:
        """Remove the bridge and the network's rules (idempotent)."""
        firewall.remove_network_rules(net, self.prefix)
        with links.node() as ipr:
            links.delete(ipr, net.bridge)

    def netns_path(self, cid: str) -> str:
        """The container's netns file: <state root>/netns/<cid>."""
        if not _CID_RE.match(cid):
            raise NetworkError(f"invalid container id {cid!r}")
        return os.path.join(netns.netns_dir(self.state_root), cid)

    def setup_container(self, cid: str, endpoints: list[Endpoint],
                        ports: list[PortBinding]) -> str:
        """Make the container's netns (lo up), one veth per endpoint with its address,
        MAC, MTU and routes, then publish its ports (none to an internal network).
        Returns the netns path (for ContainerSpec.netns). Idempotent. Raises
        PortInUse("Bind for 0.0.0.0:8080 failed: port is already allocated") before
        making anything when a host port is taken; on any other failure the container's
        network is torn down: nothing half-made stays."""
        path = self.netns_path(cid)
        check_ports(ports)
        internal = {ep.ip for ep in endpoints if ep.network.internal}
        published = [p for p in ports if p.container_ip not in internal]
        try:
            netns.create(path)
            with links.node() as ipr:
                for net in {ep.network.id: ep.network for ep in endpoints}.values():
                    self._ensure_network(ipr, net)
                for ep in endpoints:
                    links.ensure_endpoint(ipr, path, veth_name(self.prefix, ep.endpoint_id), ep)
            if published:  # none: it has none to replace either (every stop removes them)
                firewall.publish(cid, published, self.prefix)
        except BaseException:
            self.teardown_container(cid)
            raise
        return path

    def connect(self, cid: str, endpoint: Endpoint) -> None:
        """Attach a (running) container's netns to one more network."""
        path = self.netns_path(cid)
        if not netns.is_netns(path):
            raise NetworkError(f"container {cid} has no network namespace")
        host_ifname = veth_name(self.prefix, endpoint.endpoint_id)
        with links.node() as ipr:
            self._ensure_network(ipr, endpoint.network)
            try:
                links.ensure_endpoint(ipr, path, host_ifname, endpoint)
            except BaseException:
                links.delete(ipr, host_ifname)
                raise

    def disconnect(self, cid: str, endpoint: Endpoint) -> None:
        """Remove one endpoint's veth pair (idempotent)."""
        self.netns_path(cid)  # checks the id
        with links.node() as ipr:
            links.delete(ipr, veth_name(self.prefix, endpoint.endpoint_id))

    def release_ports(self, cid: str) -> None:
        """The container stopped: its published ports are freed (idempotent)."""
        self.netns_path(cid)
        firewall.unpublish(cid, self.prefix)

    def teardown_container(self, cid: str) -> None:
        """Remove the container's published ports, veths and netns file (idempotent)."""
        path = self.netns_path(cid)
        firewall.unpublish(cid, self.prefix)
        self._remove_netns(path)

    def _remove_netns(self, path: str) -> None:
        if netns.is_netns(path):
            links.delete_veths_inside(path)  # their node ends go now, not when it is freed
        netns.remove(path)

    def _ours(self, ifname: str) -> bool:
        """A bridge or host veth named by this prefix (types.bridge_name, veth_name)."""
        p = self.prefix
        return ifname == p + "0" or ifname.startswith((p + "b", p + "v"))

    def reconcile(self, networks: list[NetworkConfig],
                  live: dict[str, list[Endpoint]]) -> list[str]:
        """Remove every <prefix> link, netns file and nft rule that belongs to neither
        ``networks`` nor the containers in ``live`` (cid -> endpoints: every container
        that keeps a network set-up, i.e. created by setup_container and not removed),
        then ensure the listed networks. Returns what was removed, e.g. "link dyv1a2b",
        "netns <cid>", "nft rules dy:<id>"."""
        removed = []
        for cid in netns.listing(self.state_root):
            if cid not in live:
                self._remove_netns(os.path.join(netns.netns_dir(self.state_root), cid))
                removed.append(f"netns {cid}")
        keep = {net.bridge for net in networks} | {
            veth_name(self.prefix, ep.endpoint_id) for eps in live.values() for ep in eps}
        with links.node() as ipr:
            for name in links.names(ipr):
                if self._ours(name) and name not in keep and links.delete(ipr, name):
                    removed.append(f"link {name}")
            removed += firewall.remove_strays(self.prefix, [net.id for net in networks], live)
            for net in networks:
                self._ensure_network(ipr, net)
        return removed
