"""Dockyard's nftables rules: NAT, forwarding, icc isolation and published ports.

Everything lives in Dockyard's own table ``ip <table>`` (``dockyard`` for prefix "dy",
else ``dockyard-<prefix>``), never anywhere else in the host's ruleset: masquerade,
forwarding policy per bridge, DNAT of published ports, and icc.

icc off is enforced statefully in the table's forward chain. Frames bridged between two
ports of one bridge reach that chain only through br_netfilter, so an icc-off bridge gets
the per-bridge option nf_call_iptables=1 (it does not depend on, nor change, the host-wide
net.bridge.bridge-nf-call-iptables). A ``bridge`` family table cannot do it on this
kernel: neither ``meta ibrname`` nor conntrack (nf_conntrack_bridge) exist there, and a
stateless allow list would have to let arbitrary answers back.

Every rule carries the comment ``<prefix>:<id>`` (a network or a container id), so a
network's or a container's rules are found, replaced and removed as one; per-network
filter chains end in ``return`` rather than ``accept`` so no network's rules decide for
another's. A table is dropped when no rule is left in it. Changes are made through
``nft -f -`` in one transaction, under a lock so two workers do not interleave.

Each nft run costs a process (about 6 ms), and a start on a network whose rules are in
place should change nothing, so a process remembers what it last listed and wrote, tied to
the ruleset's generation: the kernel counts every committed transaction of the network
namespace (anyone's), and what is remembered is used only while that count has not moved
since. A change then lists the table at most once, and not at all when nothing it needs is
unknown; a change that would write what is already there writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import json
import logging
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from . import links
from .types import NetworkConfig, PortBinding

log = logging.getLogger(__name__)

NFT = "nft"
LOCK_TIMEOUT = 30  # seconds
# base chains of the ip table: name -> (type, hook, priority)
IP_BASE_CHAINS = {
    "prerouting": ("nat", "prerouting", -100),
    "output": ("nat", "output", -100),
    "postrouting": ("nat", "postrouting", 100),
    "forward": ("filter", "forward", 0),
}
PORTS_CHAIN = "ports"  # jumped to for every packet addressed to a local address
# netlink: nftables' "which ruleset generation is this" request (linux/netfilter/nf_tables.h)
NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN, NFTA_GEN_ID = 12, 10, 16, 1
NLM_F_REQUEST, NLMSG_ERROR, NLA_TYPE_MASK = 0x1, 0x2, 0x3FFF
SO_NETNS_COOKIE = 71  # a network namespace's id, never reused while the node is up


class FirewallError(RuntimeError):
    """nft refused a change or is missing."""


def table_name(prefix: str) -> str:
    return "dockyard" if prefix == "dy" else f"dockyard-{prefix}"


def tag(prefix: str, owner_id: str) -> str:
    return f"{prefix}:{owner_id}"


# ------------------------------------------------------------------------------ nft


def _nft(script: str) -> None:
    try:
        r = subprocess.run([NFT, "-f", "-"], input=script, capture_output=True, text=True,
                           timeout=30)
    except FileNotFoundError as e:
        raise FirewallError("nft is not installed (scripts/setup.sh installs nftables)") from e
    if r.returncode != 0:
        raise FirewallError(f"nft: {r.stderr.strip()}\n--- script ---\n{script}")


def _list(table: str) -> list[dict]:
    """The table's objects as nft -j gives them; [] if the table does not exist."""
    r = subprocess.run([NFT, "-j", "list", "table", "ip", table], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        return []
    return json.loads(r.stdout).get("nftables", [])


def _generation() -> tuple[int, int]:
    """(the calling thread's network namespace, its ruleset's generation): the kernel adds
    one to the generation for every committed nftables transaction, whoever makes it."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as s:
        netns = struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0]
        # nlmsghdr, then nfgenmsg (family AF_UNSPEC, version 0, resource id 0)
        s.send(struct.pack("=LHHLLBBH", 20, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN,
                           NLM_F_REQUEST, 1, 0, socket.AF_UNSPEC, 0, 0))
        reply = s.recv(4096)
    length, kind = struct.unpack_from("=LH", reply)
    offset = 20  # the attributes follow the two headers
    while kind != NLMSG_ERROR and offset + 4 <= length:
        size, attr = struct.unpack_from("=HH", reply, offset)
        if attr & NLA_TYPE_MASK == NFTA_GEN_ID:
            return netns, struct.unpack_from(">L", reply, offset + 4)[0]
        offset += (size + 3) & ~3
    raise FirewallError("the kernel did not tell the nftables ruleset generation")


@dataclass
class _Knowledge:
    """What this process knows of its table at one ruleset generation."""

    generation: int
    objects: list[dict] | None = None  # the table as listed at this generation
    owners: set[str] | None = None  # the comments (tags) that have rules
    written: dict[str, tuple[str, ...]] = field(default_factory=dict)  # tag -> its rules


_knowledge: dict[tuple[int, str], _Knowledge] = {}  # (netns cookie, table) ->


class _Table:
    """Dockyard's table during one change (under the lock): listed at most once, and not
    at all while what this process knows of it is still current."""

    def __init__(self, prefix: str) -> None:
        self.name = table_name(prefix)
        netns, self.generation = _generation()
        self.key = (netns, self.name)
        known = _knowledge.get(self.key)
        if known is None or known.generation != self.generation:  # someone changed the ruleset
            known = _knowledge[self.key] = _Knowledge(self.generation)
        self.known = known

    @property
    def listed(self) -> bool:
        return self.known.objects is not None

    def objects(self) -> list[dict]:
        """The table's objects as nft -j gives them; [] if the table does not exist."""
        if self.known.objects is None:
            self.known.objects = _list(self.name)
            self.known.owners = {r["comment"] for r in self.rules() if r.get("comment")}
        return self.known.objects

    def rules(self) -> list[dict]:
        return [o["rule"] for o in self.objects() if "rule" in o]

    def chains(self) -> list[str]:
        return [o["chain"]["name"] for o in self.objects() if "chain" in o]

    def owners(self) -> set[str]:
        if self.known.owners is None:
            self.objects()
        return self.known.owners

    def written(self, t: str) -> tuple[str, ...] | None:
        """The rules this process last gave ``t``, if they are still the table's."""
        return self.known.written.get(t)

    def commit(self, script: list[str], removed: set[str],
               written: dict[str, tuple[str, ...]]) -> None:
        """Run ``script`` as one transaction; it removes the rules of the ``removed`` tags
        and then writes ``written``'s."""
        owners = (self.owners() - removed) | set(written)
        kept = {t: r for t, r in self.known.written.items() if t not in removed}
        _nft("\n".join(script) + "\n")
        after = _generation()[1]
        if after == self.generation + 1:  # no other transaction came in between
            # no owner left: the script dropped the table (_remove_owners, drop_table)
            _knowledge[self.key] = _Knowledge(after, objects=None if owners else [],
                                              owners=owners, written=kept | written)
        else:
            del _knowledge[self.key]


@contextlib.contextmanager
def _locked(prefix: str) -> Iterator[None]:
    """One change to the table at a time: a bound abstract unix socket (per network
    namespace, like the table; released when closed, even by a killed worker; no file)."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deadline = time.monotonic() + LOCK_TIMEOUT
    try:
        while True:
            try:
                lock.bind(f"\0{table_name(prefix)}-nft-lock")
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise FirewallError(f"cannot lock {table_name(prefix)}: {e}") from e
                time.sleep(0.01)
        yield
    finally:
        lock.close()


def _q(ifname: str) -> str:
    return json.dumps(ifname)  # nft strings: double quotes


# ------------------------------------------------------------------------------ building


def _ensure_table(table: _Table) -> list[str]:
    """Create the table, its base chains and the ports chain with its two jumps, once."""
    if not table.listed and table.owners():
        return []  # this process's last transaction left rules, so the skeleton, in place
    name = table.name
    lines = [f"add table ip {name}"]
    for chain, (kind, hook, prio) in IP_BASE_CHAINS.items():
        lines.append(f"add chain ip {name} {chain} "
                     f"{{ type {kind} hook {hook} priority {prio}; policy accept; }}")
    lines.append(f"add chain ip {name} {PORTS_CHAIN}")
    if not any(r["chain"] in ("prerouting", "output") for r in table.rules()):
        for chain in ("prerouting", "output"):
            lines.append(f"add rule ip {name} {chain} fib daddr type local jump {PORTS_CHAIN}")
    return lines


def _clear(table: _Table, tags: set[str], chains: Iterable[str] = ()) -> list[str]:
    """Lines deleting every rule commented with one of ``tags``, the chains those rules
    jump to and the named ``chains`` (per-network chains: flushed, then deleted, after the
    rules that jump to them)."""
    if not chains and not table.listed and not tags & table.owners():
        return []  # known since this process's last transaction: nothing of theirs is there
    tagged = [r for r in table.rules() if r.get("comment") in tags]
    jumped = {e["jump"]["target"] for r in tagged for e in r["expr"] if "jump" in e}
    existing = set(table.chains()) & (jumped | set(chains))
    lines = [f"delete rule ip {table.name} {r['chain']} handle {r['handle']}"
             for r in tagged if r["chain"] not in existing]
    for c in sorted(existing):
        lines += [f"flush chain ip {table.name} {c}", f"delete chain ip {table.name} {c}"]
    return lines


def _addr(value) -> str:
    """An IPv4 address for a rule (whatever came from the database goes into nft text)."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as e:
        raise FirewallError(f"not an IPv4 address: {value!r}") from e


def _port(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise FirewallError(f"not a port: {value!r}")
    return value


def _proto(value) -> str:
    if value not in ("tcp", "udp"):
        raise FirewallError(f"not a protocol: {value!r}")
    return value


def _allow_matches(net: NetworkConfig) -> list[str]:
    """The allow list as matches: src to dst, [a protocol (None: any) [and a port]]."""
    matches = []
    for pair in net.allow:
        match = f"ip saddr {_addr(pair['src'])} ip daddr {_addr(pair['dst'])}"
        proto, port = pair.get("proto"), pair.get("port")
        if proto:
            match += f" meta l4proto {_proto(proto)}"
        elif port:
            match += " meta l4proto { tcp, udp }"
        if port:
            match += f" th dport {_port(port)}"
        matches.append(match)
    return matches


def _network_script(net: NetworkConfig, prefix: str) -> list[str]:
    table, t, br = table_name(prefix), tag(prefix, net.id), _q(net.bridge)
    chain = f"fwd-{net.bridge}"
    ip = [f"add chain ip {table} {chain}"]
    fwd = []
    if net.icc:
        fwd.append(f"iifname {br} oifname {br} return comment {_q(t)}")
    else:
        fwd.append(f"iifname {br} oifname {br} ct state established,related return "
                   f"comment {_q(t)}")
        fwd += [f"iifname {br} oifname {br} {m} return comment {_q(t)}"
                for m in _allow_matches(net)]
        fwd.append(f"iifname {br} oifname {br} drop comment {_q(t)}")
    if net.internal:
        fwd.append(f"drop comment {_q(t)}")  # nothing in, nothing out
    else:
        fwd += [f"iifname {br} return comment {_q(t)}",  # out to anywhere
                f"ct state established,related return comment {_q(t)}",
                f"ct status dnat return comment {_q(t)}",  # published ports
                f"drop comment {_q(t)}"]  # nothing unsolicited from outside or other bridges
    ip += [f"add rule ip {table} {chain} {r}" for r in fwd]
    ip += [f"add rule ip {table} forward iifname {br} jump {chain} comment {_q(t)}",
           f"add rule ip {table} forward oifname {br} jump {chain} comment {_q(t)}"]
    if not net.internal:
        subnet = str(ipaddress.IPv4Network(net.subnet, strict=False))
        post = [f"ip saddr {subnet} oifname != {br} masquerade",
                # 127.0.0.1:<published> (route_localnet) and hairpin through a host address:
                # the container answers to the gateway, so the reply passes the host's NAT
                f"oifname {br} ip saddr 127.0.0.0/8 masquerade",
                f"oifname {br} ip saddr {subnet} ct status dnat masquerade"]
        ip += [f"add rule ip {table} postrouting {r} comment {_q(t)}" for r in post]
    return ip


def _port_rules(cid: str, ports: Iterable[PortBinding], prefix: str) -> list[str]:
    table, t = table_name(prefix), tag(prefix, cid)
    lines = []
    for p in ports:
        daddr = "" if p.host_ip in ("", "0.0.0.0") else f"ip daddr {_addr(p.host_ip)} "
        lines.append(f"add rule ip {table} {PORTS_CHAIN} {daddr}{_proto(p.proto)} dport "
                     f"{_port(p.host_port)} dnat to {_addr(p.container_ip)}:"
                     f"{_port(p.container_port)} comment {_q(t)}")
    return lines


# ------------------------------------------------------------------------------ sysctls


def _sysctl(path: str, value: str, only_if: str | None = None) -> None:
    full = os.path.join("/proc/sys", path)
    try:
        with open(full) as f:
            current = f.read().strip()
        if current != value and (only_if is None or current == only_if):
            with open(full, "w") as f:
                f.write(value)
    except FileNotFoundError:
        pass  # no such bridge (yet): ensure_network calls network_rules once it is up


# ------------------------------------------------------------------------------ API


def network_rules(net: NetworkConfig, prefix: str, ipr: IPRoute | None = None) -> None:
    """Put the network's rules in place, replacing any earlier version (idempotent):
    forwarding (out allowed, answers and published ports in, nothing else; internal:
    nothing in or out), masquerade of the subnet (not for internal networks), icc.
    Sets route_localnet=1 on the bridge (127.0.0.1 DNAT) and ip_forward=1 if it is 0.
    ``ipr``: the caller's netlink handle in this netns, if it has one."""
    _replace(prefix, tag(prefix, net.id), _network_script(net, prefix),
             chains={f"fwd-{net.bridge}"})
    if ipr is None:
        with IPRoute() as own:
            _bridge_calls_iptables(own, net.bridge, not net.icc)
    else:
        _bridge_calls_iptables(ipr, net.bridge, not net.icc)
    if not net.internal:
        _sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")
        _sysctl("net/ipv4/ip_forward", "1", only_if="0")
        _warn_about_forward_blockers(prefix)


def remove_network_rules(net: NetworkConfig, prefix: str) -> None:
    """Remove every rule and chain of the network (idempotent)."""
    _remove_owners(prefix, {tag(prefix, net.id)}, chains={f"fwd-{net.bridge}"})


def publish(cid: str, ports: Iterable[PortBinding], prefix: str) -> None:
    """DNAT the container's published ports from the host's addresses (or the one given)
    and 127.0.0.1, replacing its earlier ones (idempotent)."""
    _replace(prefix, tag(prefix, cid), _port_rules(cid, ports, prefix))


def unpublish(cid: str, prefix: str) -> None:
    """Remove the container's published ports (idempotent)."""
    _remove_owners(prefix, {tag(prefix, cid)})


def owners(prefix: str) -> set[str]:
    """The ids (networks and containers) that have rules in Dockyard's table."""
    with _changing(prefix) as table:
        return {t[len(prefix) + 1:] for t in table.owners() if t.startswith(f"{prefix}:")}


def strays(prefix: str, known_networks: Iterable[str], known_containers: Iterable[str]
           ) -> list[str]:
    """Ids with rules that are neither a known network nor a known container."""
    return sorted(owners(prefix) - set(known_networks) - set(known_containers))


def remove_strays(prefix: str, known_networks: Iterable[str],
                  known_containers: Iterable[str]) -> list[str]:
    """Remove the rules (and per-network chains) of every stray id; returns
    ``nft rules <prefix>:<id>`` for each one removed."""
    stray_ids = strays(prefix, known_networks, known_containers)
    if stray_ids:
        _remove_owners(prefix, {tag(prefix, i) for i in stray_ids})
    return [f"nft rules {tag(prefix, i)}" for i in stray_ids]


def drop_table(prefix: str) -> None:
    """Remove Dockyard's table outright (tests, uninstall)."""
    with _changing(prefix) as table:
        if table.objects():
            table.commit([f"delete table ip {table.name}"], removed=table.owners(), written={})


def forward_blockers() -> list[str]:
    """Other tables' forward base chains with policy drop (Docker's iptables FORWARD
    chain, typically): they drop what Dockyard's own rules let through, since a packet
    must be accepted by every base chain on its hook. Read-only; for a warning."""
    r = subprocess.run([NFT, "-j", "list", "chains"], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        return []
    found = []
    for o in json.loads(r.stdout).get("nftables", []):
        c = o.get("chain")
        if c and c.get("hook") == "forward" and c.get("policy") == "drop":
            found.append(f"{c['family']} {c['table']} {c['name']}")
    return found


@functools.cache
def _warn_about_forward_blockers(prefix: str) -> None:
    """Once per process: say why containers may not get out (docs/ARCHITECTURE.md)."""
    blockers = forward_blockers()
    if blockers:
        log.warning("forward chains with policy drop outside Dockyard's table (%s) drop what "
                    "Dockyard forwards: containers cannot reach outside; with Docker, accept "
                    "-i/-o %s+ in its DOCKER-USER chain", ", ".join(blockers), prefix)


@contextlib.contextmanager
def _changing(prefix: str) -> Iterator[_Table]:
    with _locked(prefix):
        yield _Table(prefix)


def _replace(prefix: str, t: str, rules: list[str], chains: Iterable[str] = ()) -> None:
    """``t``'s rules (and ``chains``) become ``rules``: nothing is run when this process
    wrote exactly these last and nobody changed the ruleset since; no rules is a removal."""
    if not rules:
        _remove_owners(prefix, {t}, chains)
        return
    with _changing(prefix) as table:
        if table.written(t) == tuple(rules):
            return
        script = _ensure_table(table) + _clear(table, {t}, chains) + rules
        table.commit(script, removed={t}, written={t: tuple(rules)})


def _remove_owners(prefix: str, tags: set[str], chains: Iterable[str] = ()) -> None:
    """Remove the rules of ``tags``, the chains they jump to and ``chains``; the whole table
    when no tagged rule would be left (its skeleton alone does nothing)."""
    with _changing(prefix) as table:
        script = _clear(table, tags, chains)
        if script and not table.owners() - tags:
            script = [f"delete table ip {table.name}"]
        if script:
            table.commit(script, removed=tags, written={})


def _bridge_calls_iptables(ipr: IPRoute, bridge: str, on: bool) -> None:
    """Send the bridge's bridged IPv4 frames through the IP hooks (br_netfilter), or not."""
    if on and not os.path.isdir("/proc/sys/net/bridge"):
        raise FirewallError("enable_icc=false needs the br_netfilter kernel module")
    idx = links.node_index(bridge)
    if idx is None:
        return  # not there (yet): ensure_network calls network_rules once it is
    info = ipr.link("get", index=idx)[0].get_attr("IFLA_LINKINFO")
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    if data is None or data.get_attr("IFLA_BR_NF_CALL_IPTABLES") != int(on):
        ipr.link("set", index=idx, kind="bridge", br_nf_call_iptables=int(on))
