"""A private network lab for the firewall tests: real kernel, real traffic, no host changes.

The lab's "host" is a network namespace of its own (``<prefix>h``): its bridges, "LAN"
address, nft tables and sysctls are the lab's, so the host's ruleset (and Docker's) is never
touched and a Docker-like FORWARD policy can be set inside it. The test process enters it
(setns) for the test's duration, so firewall.py's nft calls and sysctl writes land there.
"Containers" are further namespaces (``<prefix>c<n>``) with a veth in one of the lab's
bridges; "outside" (``<prefix>o``) is a namespace behind a routed veth that knows no
route back to the bridges (only masquerade makes answers reach them).

Servers are a small Python script answering "<name> <peer ip>" on TCP and UDP, so a test
sees who answered and whom it saw.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from dataclasses import dataclass

from workers.runtime import linux
from workers.runtime.network import firewall
from workers.runtime.network.types import NetworkConfig

HOST_ADDR = "10.30.0.1"  # the lab host's "LAN" address (on a veth of its own)

SERVER = textwrap.dedent("""
    import socket, sys, threading
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    def tcp(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        while True:
            c, peer = s.accept()
            c.sendall(f"{name} {peer[0]}".encode()); c.close()
    def udp(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
        while True:
            _data, peer = s.recvfrom(100)
            s.sendto(f"{name} {peer[0]}".encode(), peer)
    for p in ports:
        threading.Thread(target=tcp, args=(p,), daemon=True).start()
        threading.Thread(target=udp, args=(p,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    proto, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        if proto == "tcp":
            s = socket.create_connection((ip, port), timeout=0.7)
            print(s.recv(100).decode())
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.7)
            s.sendto(b"hi", (ip, port)); print(s.recv(100).decode())
    except OSError as e:
        print(f"FAIL {e}")
""")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


@dataclass(frozen=True)
class Box:
    """A "container": a netns with eth0 on one of the lab's bridges."""

    ns: str
    ip: str
    veth: str


class Lab:
    def __init__(self) -> None:
        self.prefix = "dt" + secrets.token_hex(3)
        self.host = f"{self.prefix}h"
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen] = []
        self.boxes = 0
        self._own_netns: int | None = None

    def __enter__(self) -> Lab:
        try:
            self.netns(self.host)
            self.ip("link", "set", "lo", "up")
            # a host address that is not loopback, like the node's LAN address (this
            # kernel lacks dummy links: a veth pair, both ends in the lab's host)
            self.ip("link", "add", f"{self.prefix}d", "type", "veth", "peer", "name",
                    f"{self.prefix}e")
            self.ip("addr", "add", f"{HOST_ADDR}/32", "dev", f"{self.prefix}d")
            self.ip("link", "set", f"{self.prefix}e", "up")
            self.ip("link", "set", f"{self.prefix}d", "up")
            self.enter()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- building
    def netns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)

    def ip(self, *args: str) -> None:
        run("ip", "-n", self.host, *args)

    def enter(self) -> None:
        """Move the test process into the lab's host namespace."""
        self._own_netns = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.host}", os.O_RDONLY)
        try:
            linux.setns(fd, linux.CLONE_NEWNET)
        finally:
            os.close(fd)
        assert os.stat("/proc/self/ns/net").st_ino == os.stat(f"/run/netns/{self.host}").st_ino

    def network(self, n: int, **kw) -> NetworkConfig:
        """A bridge ``<prefix>b<n>`` on 10.10.<n>.0/24 (the gateway .1), up."""
        br = f"{self.prefix}b{n}"
        self.ip("link", "add", br, "type", "bridge")
        self.ip("addr", "add", f"10.10.{n}.1/24", "dev", br)
        self.ip("link", "set", br, "up")
        return NetworkConfig(id=f"{n:x}" * 64, name=f"net{n}", bridge=br,
                             subnet=f"10.10.{n}.0/24", gateway=f"10.10.{n}.1", **kw)

    def box(self, net: NetworkConfig, host_byte: int) -> Box:
        self.boxes += 1
        ns, veth = f"{self.prefix}c{self.boxes}", f"{self.prefix}v{self.boxes}"
        ip = net.gateway.rsplit(".", 1)[0] + f".{host_byte}"
        self.netns(ns)
        self.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip("link", "set", veth, "master", net.bridge, "up")
        # as Docker does: with br_netfilter, a DNATed frame back to the port it came in
        # on (a container reaching its own published port) is bridged, not routed
        self.ip("link", "set", veth, "type", "bridge_slave", "hairpin", "on")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "route", "add", "default", "via", net.gateway)
        return Box(ns, ip, veth)

    def outside(self) -> Box:
        """A namespace on a routed link (10.20.0.2), with no route back to the bridges."""
        ns, veth = f"{self.prefix}o", f"{self.prefix}o0"
        self.netns(ns)
        self.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip("addr", "add", "10.20.0.1/30", "dev", veth)
        self.ip("link", "set", veth, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", "10.20.0.2/30", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        return Box(ns, "10.20.0.2", veth)

    def sysctl(self, key: str, value: str) -> None:
        run("ip", "netns", "exec", self.host, "sysctl", "-qw", f"{key}={value}")

    # ---------------------------------------------------------------- traffic
    def serve(self, ns: str, name: str, *ports: int) -> None:
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name,
                              *map(str, ports)], stdout=subprocess.PIPE, text=True)
        self.servers.append(p)
        assert p.stdout.readline().strip() == "ready"

    def ask(self, ns: str, proto: str, ip: str, port: int) -> str:
        """From a namespace ("" = the lab's host): the server's answer, or "FAIL ..."."""
        where = ["ip", "netns", "exec", ns] if ns else []
        return run(*where, sys.executable, "-c", CLIENT, proto, ip, str(port)).stdout.strip()

    def ask_here(self, proto: str, ip: str, port: int) -> str:
        """From the lab's host itself (a child of the test process inherits its netns)."""
        return self.ask("", proto, ip, port)

    # ---------------------------------------------------------------- teardown
    def close(self) -> None:
        for p in self.servers:
            p.kill()
            p.wait()
        if self._own_netns is not None:
            try:
                firewall.drop_table(self.prefix)
            finally:
                linux.setns(self._own_netns, linux.CLONE_NEWNET)
                os.close(self._own_netns)
                self._own_netns = None
        for ns in reversed(self.namespaces):  # their links go with them
            run("ip", "netns", "del", ns, check=False)


def rules(prefix: str) -> list[dict]:
    """The rules of Dockyard's table as ``nft -j`` lists them ([] if there is no table)."""
    r = run("nft", "-j", "list", "table", "ip", firewall.table_name(prefix), check=False)
    if r.returncode != 0:
        return []
    return [o["rule"] for o in json.loads(r.stdout)["nftables"] if "rule" in o]


def bridge_option(bridge: str, option: str) -> str:
    """A bridge's option as ``ip -d link`` shows it (the lab's links are not in /sys)."""
    words = run("ip", "-d", "link", "show", bridge).stdout.split()
    return words[words.index(option) + 1]
