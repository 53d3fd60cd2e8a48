"""The embedded DNS resolver: Docker's 127.0.0.11 inside each container on a user network.

One ``Resolver`` per worker process. For each attached container it binds a UDP and a TCP
socket to 127.0.0.11:53 INSIDE the container's network namespace (a short-lived thread
setns()es into the netns file, makes the sockets and exits: a socket stays in the namespace
it was made in), and one thread serves all of them. Names in the container's view (computed
by the panel: container names, --network-alias, --link aliases, short ids) are answered
here; everything else is forwarded from the worker's own namespace to the container's
forwarders (--dns) or the host's nameservers (so a resolver on the host's loopback works);
with no forwarder an unknown name is NXDOMAIN.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import selectors
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord

from . import netns

log = logging.getLogger(__name__)

EMBEDDED_DNS = "127.0.0.11"
DNS_PORT = 53
TTL = 600  # Docker's TTL for container records
FORWARD_TIMEOUT = 2.0  # seconds per forwarder
TCP_IDLE = 10.0  # a TCP client that sends nothing for this long is dropped
MAX_MESSAGE = 65535


def host_nameservers(resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    """The nameservers of the host's resolv.conf (loopback ones included: the resolver
    forwards from the worker's namespace, where they are reachable)."""
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [words[1] for words in (line.split() for line in lines)
            if len(words) > 1 and words[0] == "nameserver"]


def _server(text: str) -> tuple[str, int]:
    """'10.0.0.1', '::1', '127.0.0.1:5353' or '[::1]:5353' -> (address, port)."""
    try:
        return str(ipaddress.ip_address(text)), DNS_PORT
    except ValueError:
        host, _, port = text.rpartition(":")
        return str(ipaddress.ip_address(host.strip("[]"))), int(port)


@dataclass
class _Attachment:
    cid: str
    netns: tuple[int, int]  # (st_dev, st_ino) of the netns file: a new netns needs new sockets
    udp: socket.socket
    tcp: socket.socket
    names: dict[str, list[str]] = field(default_factory=dict)  # lowercase name -> IPv4s
    reverse: dict[str, str] = field(default_factory=dict)  # "in-addr.arpa" name -> name
    forwarders: list[str] | None = None  # None: the host's nameservers


class Resolver:
    """``attach(cid, netns_path, view)``, ``update(cid, view)``, ``detach(cid)``; ``view``
    maps a name to the IPv4 addresses it resolves to in that container."""

    def __init__(self, resolv_conf: str = "/etc/resolv.conf") -> None:
        self.resolv_conf = resolv_conf
        self._lock = threading.Lock()
        self._attached: dict[str, _Attachment] = {}
        self._selector = selectors.DefaultSelector()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dockyard-dns")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dockyard-dns-resolver",
                                        daemon=True)
        self._thread.start()

    # -- attachments -------------------------------------------------------------------
    def attach(self, cid: str, netns_path: str, view: dict[str, list[str]],
               forwarders: list[str] | None = None) -> None:
        """Serve 127.0.0.11:53 in the container's netns (idempotent: an attached container
        in the same netns only gets the new view)."""
        st = os.stat(netns_path)
        ident = (st.st_dev, st.st_ino)
        with self._lock:
            current = self._attached.get(cid)
            if current is not None and current.netns == ident:
                self._set_view(current, view, forwarders)
                return
        self.detach(cid)
        udp, tcp = _sockets_in(netns_path)
        att = _Attachment(cid, ident, udp, tcp)
        self._set_view(att, view, forwarders)
        with self._lock:
            self._attached[cid] = att
            self._selector.register(udp, selectors.EVENT_READ, att)
            self._selector.register(tcp, selectors.EVENT_READ, att)

    def update(self, cid: str, view: dict[str, list[str]],
               forwarders: list[str] | None = None) -> None:
        with self._lock:
            att = self._attached.get(cid)
            if att is not None:
                self._set_view(att, view, forwarders)

    def detach(self, cid: str) -> None:
        with self._lock:
            att = self._attached.pop(cid, None)
            if att is None:
                return
            for sock in (att.udp, att.tcp):
                self._selector.unregister(sock)
                sock.close()

    def attached(self) -> list[str]:
        with self._lock:
            return sorted(self._attached)

    def close(self) -> None:
        for cid in self.attached():
            self.detach(cid)
        self._stopping.set()
        self._thread.join(5)
        self._selector.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _set_view(att: _Attachment, view: dict[str, list[str]],
                  forwarders: list[str] | None) -> None:
        names = {name.lower().rstrip("."): list(ips) for name, ips in view.items()}
        reverse = {}
        for name, ips in names.items():  # the view lists a container's own name first
            for ip in ips:
                reverse.setdefault(ipaddress.ip_address(ip).reverse_pointer, name)
        att.names, att.reverse, att.forwarders = names, reverse, forwarders

    # -- serving -----------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.5):
                att, sock = key.data, key.fileobj
                try:
                    if sock.type == socket.SOCK_DGRAM:
                        self._udp_query(att, sock)
                    else:
                        conn, _ = sock.accept()
                        self._pool.submit(self._tcp_client, att, conn)
                except OSError:
                    pass  # detached meanwhile, or the client went away

    def _udp_query(self, att: _Attachment, sock: socket.socket) -> None:
        data, client = sock.recvfrom(MAX_MESSAGE)
        reply = self._local_answer(att, data)
        if reply:
            sock.sendto(reply, client)
        elif reply is None:  # forwarding waits on the network: not in the serving thread
            self._pool.submit(self._forward_udp, att, sock, data, client)

    def _forward_udp(self, att: _Attachment, sock: socket.socket, data: bytes,
                     client) -> None:
        reply = self._forward(att, data, tcp=False)
        try:
            if reply:
                sock.sendto(reply, client)
        except OSError:
            pass

    def _tcp_client(self, att: _Attachment, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TCP_IDLE)
            try:
                while True:
                    head = _recv_exact(conn, 2)
                    if not head:
                        return
                    data = _recv_exact(conn, struct.unpack("!H", head)[0])
                    reply = self._local_answer(att, data)
                    if reply is None:
                        reply = self._forward(att, data, tcp=True)
                    if not reply:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, ValueError):
                return

    def _local_answer(self, att: _Attachment, data: bytes) -> bytes | None:
        """The reply for a name in the container's view, NXDOMAIN when there is nowhere to
        forward to, or None: forward it."""
        try:
            query = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises several kinds on garbage
            return b""  # not DNS: no reply
        reply = query.reply()
        if not query.questions:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        question = query.q
        name = str(question.qname).lower().rstrip(".")
        with self._lock:
            ips = att.names.get(name)
            pointer = att.reverse.get(name)
        if ips is not None:
            if question.qtype in (QTYPE.A, QTYPE.ANY):
                for ip in ips:
                    reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
            return reply.pack()  # a known name without the asked type: NOERROR, no answer
        if pointer is not None and question.qtype == QTYPE.PTR:
            reply.add_answer(RR(question.qname, QTYPE.PTR, rdata=PTR(pointer + "."), ttl=TTL))
            return reply.pack()
        if self._forwarders(att):
            return None
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()

    def _forwarders(self, att: _Attachment) -> list[str]:
        if att.forwarders is not None:
            return att.forwarders
        return host_nameservers(self.resolv_conf)

    def _forward(self, att: _Attachment, data: bytes, tcp: bool) -> bytes:
        """Ask each forwarder in turn; SERVFAIL when none answers."""
        for server in self._forwarders(att):
            try:
                addr = _server(server)
                family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
                with socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
                    s.settimeout(FORWARD_TIMEOUT)
                    s.connect(addr)
                    if tcp:
                        s.sendall(struct.pack("!H", len(data)) + data)
                        head = _recv_exact(s, 2)
                        return _recv_exact(s, struct.unpack("!H", head)[0])
                    s.send(data)
                    return s.recv(MAX_MESSAGE)
            except (OSError, ValueError, struct.error) as exc:
                log.debug("dns: forwarder %s failed: %s", server, exc)
        try:
            reply = DNSRecord.parse(data).reply()
        except Exception:  # noqa: BLE001
            return b""
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes, b"" on EOF before the first byte; ValueError on EOF in the middle."""
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            if buf:
                raise ValueError("connection closed mid-message")
            return b""
        buf += chunk
    return buf


def _sockets_in(netns_path: str) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets bound to 127.0.0.11:53 inside the netns at ``netns_path``."""

    def make() -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (udp, tcp):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((EMBEDDED_DNS, DNS_PORT))
            tcp.listen(64)
        except OSError:
            udp.close()
            tcp.close()
            raise
        return udp, tcp

    return netns.run_in(netns_path, make)
