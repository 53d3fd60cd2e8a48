"""Links, addresses and routes through netlink (pyroute2), on the node and in a netns.

A bridge per network with the gateway address; per endpoint a veth pair whose host end
is a port of the bridge and whose other end is created directly inside the container's
netns under its final name (eth0, eth1...) with the endpoint's MAC and MTU, so no
temporary name ever shows on the node. Every function is idempotent.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns
from .types import Endpoint, NetworkError, docker_mac

IFF_UP = 0x1


@contextlib.contextmanager
def node() -> Iterator[IPRoute]:
    """A netlink handle in the worker's own (the node's) netns."""
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def inside(path: str) -> Iterator[IPRoute]:
    """A netlink handle bound inside the netns file at ``path`` (the socket is made by a
    thread that joined it; requests then act there from any thread)."""
    sock = netns.socket_in(path, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)  # NETLINK_ROUTE
    ipr = IPRoute(fileno=sock.detach())
    try:
        yield ipr
    finally:
        ipr.close()


def index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def node_index(ifname: str) -> int | None:
    """A link's ifindex in the calling thread's netns (the one ``node()`` handles act in),
    by ioctl: no netlink message to build and parse."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def names(ipr: IPRoute) -> list[str]:
    return [link.get("ifname") for link in ipr.link("dump")]


def delete(ipr: IPRoute, ifname: str) -> bool:
    """Delete a link (a veth: both ends). False when it was not there."""
    try:
        ipr.link("del", ifname=ifname)
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def _ensure_address(ipr: IPRoute, idx: int, ip: str, prefixlen: int) -> None:
    """``ip/prefixlen`` is the link's only IPv4 address."""
    current = [(a.get("address"), a["prefixlen"])
               for a in ipr.addr("dump", index=idx, family=socket.AF_INET)]
    if current == [(ip, prefixlen)]:
        return
    for address, plen in current:
        ipr.addr("del", index=idx, address=address, prefixlen=plen)
    broadcast = ipaddress.IPv4Network(f"{ip}/{prefixlen}", strict=False).broadcast_address
    ipr.addr("add", index=idx, address=ip, prefixlen=prefixlen, broadcast=str(broadcast))


def ensure_bridge(ipr: IPRoute, name: str, gateway: str, prefixlen: int, mtu: int) -> None:
    """The bridge ``name`` exists with ``gateway/prefixlen``, ``mtu`` and is up."""
    idx = node_index(name)
    if idx is None:
        try:
            # a MAC of its own: else the bridge takes its lowest port's, changing as
            # containers come and go (stale ARP entries in the containers)
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu, address=docker_mac(gateway))
        except NetlinkError as e:
            if e.code != errno.EEXIST:  # another worker was quicker
                raise NetworkError(f"cannot create bridge {name}: {e}") from e
        idx = node_index(name)
    link = ipr.link("get", index=idx)[0]
    if _kind(link) != "bridge":
        raise NetworkError(f"{name} exists and is not a bridge")
    if link.get("mtu") != mtu:
        ipr.link("set", index=idx, mtu=mtu)
    _ensure_address(ipr, idx, gateway, prefixlen)
    if not link["flags"] & IFF_UP:
        ipr.link("set", index=idx, state="up")


def ensure_endpoint(ipr: IPRoute, path: str, host_ifname: str, ep: Endpoint) -> None:
    """The endpoint's veth pair exists: ``host_ifname`` a port of the network's bridge,
    up; ``ep.ifname`` in the netns at ``path`` with its MAC, MTU, address, up, and the
    default route via the gateway when ``ep.default_route``."""
    net = ep.network
    bridge = node_index(net.bridge)
    if bridge is None:
        raise NetworkError(f"bridge {net.bridge} of network {net.name} does not exist")
    with inside(path) as nsr:
        host, peer = node_index(host_ifname), index(nsr, ep.ifname)
        if host is None or peer is None or _peer_index(ipr, host) != peer:
            # half-made, or ep.ifname is another pair's end: start over
            if host is not None:
                delete(ipr, host_ifname)
            if peer is not None:
                delete(nsr, ep.ifname)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link("add", ifname=host_ifname, kind="veth", mtu=net.mtu,
                         peer={"ifname": ep.ifname, "net_ns_fd": fd, "address": ep.mac,
                               "mtu": net.mtu})
            except NetlinkError as e:
                raise NetworkError(f"cannot create veth {host_ifname}: {e}") from e
            finally:
                os.close(fd)
            host, peer = node_index(host_ifname), index(nsr, ep.ifname)
        ipr.link("set", index=host, master=bridge, mtu=net.mtu, state="up")
        # hairpin: with br_netfilter on, a container reaching its own published port through
        # a host address gets the DNATed packet back through the port it came in on
        with open(f"/sys/class/net/{host_ifname}/brport/hairpin_mode", "w") as f:
            f.write("1")
        nsr.link("set", index=peer, address=ep.mac, mtu=net.mtu, state="up")
        _ensure_address(nsr, peer, ep.ip, ep.prefixlen)
        if ep.default_route:
            # proto boot, as `ip route add` and Docker write it
            nsr.route("replace", dst="0.0.0.0/0", gateway=net.gateway, oif=peer, proto=3)


def delete_veths_inside(path: str) -> list[str]:
    """Delete every veth pair with an end in the netns (the node's ends go with them, at
    once rather than when the netns is finally freed). Returns their inside names."""
    with inside(path) as nsr:
        gone = [link.get("ifname") for link in nsr.link("dump") if _kind(link) == "veth"]
        for name in gone:
            delete(nsr, name)
    return gone


def _peer_index(ipr: IPRoute, idx: int) -> int | None:
    """A veth's peer ifindex (in the peer's netns)."""
    return ipr.link("get", index=idx)[0].get("link")


def _kind(link) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None
