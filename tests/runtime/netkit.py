"""Helpers for the network plumbing tests: a private prefix ("dt" + 6 hex) and subnets
that overlap nothing on the host, so the links, netns files and nft table a test makes
are its own; the ``lab`` fixture removes them and checks that nothing is left."""

from __future__ import annotations

import ipaddress
import random
import secrets
import socket
import subprocess
from dataclasses import dataclass

import pytest

from workers.runtime.network import Endpoint, NetworkConfig, NetworkManager, firewall, links
from workers.runtime.network import netns as netnsmod
from workers.runtime.network.types import bridge_name, docker_mac


def _host_networks() -> list[ipaddress.IPv4Network]:
    with links.node() as ipr:
        found = [ipaddress.IPv4Network(f"{a.get('address')}/{a['prefixlen']}", strict=False)
                 for a in ipr.addr("dump") if a["family"] == socket.AF_INET]
        for r in ipr.route("dump", family=socket.AF_INET):
            dst = r.get("dst")
            if dst:
                found.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
    return found


def free_subnet() -> ipaddress.IPv4Network:
    taken = _host_networks()
    while True:
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net


@dataclass
class Lab:
    prefix: str
    mgr: NetworkManager
    state_root: str

    def network(self, name: str = "n", internal: bool = False) -> NetworkConfig:
        subnet = free_subnet()
        nid = secrets.token_hex(32)
        return NetworkConfig(id=nid, name=f"{self.prefix}-{name}", internal=internal,
                             bridge=bridge_name(self.prefix, nid), subnet=str(subnet),
                             gateway=str(subnet.network_address + 1))

    def endpoint(self, net: NetworkConfig, host: int, ifname: str = "eth0",
                 default_route: bool = True) -> Endpoint:
        subnet = ipaddress.IPv4Network(net.subnet)
        ip = str(subnet.network_address + host)
        return Endpoint(network=net, endpoint_id=secrets.token_hex(32), ifname=ifname, ip=ip,
                        prefixlen=subnet.prefixlen, mac=docker_mac(ip),
                        default_route=default_route)

    def links(self) -> list[str]:
        with links.node() as ipr:
            return [n for n in links.names(ipr) if n.startswith(self.prefix)]

    def netns_files(self) -> list[str]:
        return netnsmod.listing(self.state_root)


@pytest.fixture
def lab(state_root):
    prefix = "dt" + secrets.token_hex(3)
    the_lab = Lab(prefix, NetworkManager(state_root, prefix), state_root)
    yield the_lab
    try:
        the_lab.mgr.reconcile([], {})
    finally:
        firewall.drop_table(prefix)
        for name in the_lab.links():  # only if reconcile failed: nothing may stay
            with links.node() as ipr:
                links.delete(ipr, name)
    assert the_lab.links() == []
    assert the_lab.netns_files() == []


def in_netns(path: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run a host command inside the netns file (nsenter from util-linux; tests only)."""
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True,
                          timeout=timeout)
