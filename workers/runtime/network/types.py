"""The data the network layer works on (pure data, no syscalls).

The panel builds these from its database (panel/networks) and hands them to
``NetworkManager`` (workers/runtime/network/__init__.py); the worker never stores them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IFNAME_MAX = 15  # IFNAMSIZ - 1


class NetworkError(RuntimeError):
    """A network operation failed (the message is meant for the user)."""


class PortInUse(NetworkError):
    """A published host port is taken: Docker's "port is already allocated"."""


def bridge_name(prefix: str, network_id: str, default: bool = False) -> str:
    """The bridge's ifname: ``<prefix>0`` for the default network, else
    ``(<prefix> + "b" + <network id>)[:15]``."""
    return f"{prefix}0" if default else (prefix + "b" + network_id)[:IFNAME_MAX]


def veth_name(prefix: str, endpoint_id: str) -> str:
    """The host side of an endpoint's veth pair: ``(<prefix> + "v" + <endpoint id>)[:15]``."""
    return (prefix + "v" + endpoint_id)[:IFNAME_MAX]


def docker_mac(ip: str) -> str:
    """Docker's MAC for an IPv4 address: 02:42 followed by the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


@dataclass
class NetworkConfig:
    """One bridge network on this node."""

    id: str  # 64 hex
    name: str
    bridge: str  # the bridge's ifname (bridge_name)
    subnet: str  # "10.0.42.0/24"
    gateway: str  # "10.0.42.1": the bridge's own address
    internal: bool = False  # no masquerade, no way out, no published ports
    icc: bool = True  # com.docker.network.bridge.enable_icc
    # with icc False: the allowed pairs {"src": ip, "dst": ip, "proto": "tcp"|"udp"|None,
    # "port": int|None}
    allow: list[dict] = field(default_factory=list)
    mtu: int = 1500

    @property
    def prefixlen(self) -> int:
        return ipaddress.IPv4Network(self.subnet, strict=False).prefixlen


@dataclass
class Endpoint:
    """One container on one network."""

    network: NetworkConfig
    endpoint_id: str  # hex, unique; names the host veth (veth_name)
    ifname: str  # "eth0", "eth1"... inside the container
    ip: str  # "10.0.42.130"
    prefixlen: int
    mac: str  # "02:42:0a:00:2a:82" (docker_mac)
    default_route: bool  # the first endpoint gets the default route via its gateway


@dataclass
class PortBinding:
    """-p [ip:]host:container[/proto] with the host port already chosen."""

    container_port: int
    proto: str  # "tcp" | "udp"
    host_ip: str  # "" = every host address (0.0.0.0)
    host_port: int  # random ports are chosen by the panel
    container_ip: str  # the endpoint address that receives it
