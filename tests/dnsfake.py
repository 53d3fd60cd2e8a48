"""A DNS server for tests on a loopback address of the host (127.x.y.z:53, UDP): example.test
is 192.0.2.7, every other name NXDOMAIN; it remembers the names it was asked. The embedded
resolver's forwarding is tested against it, never against an outside server."""

import secrets
import socket
import threading

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

KNOWN = {"example.test": "192.0.2.7"}


class LoopbackDNS:
    def __init__(self):
        self.address = (f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}."
                        f"{secrets.randbelow(250) + 2}")
        self.asked: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.address, 53))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = DNSRecord.parse(data)
            name = str(query.q.qname).rstrip(".").lower()
            self.asked.append(name)
            reply = query.reply()
            if name in KNOWN and query.q.qtype == QTYPE.A:
                reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(KNOWN[name]), ttl=60))
            elif name not in KNOWN:
                reply.header.rcode = RCODE.NXDOMAIN
            self._sock.sendto(reply.pack(), client)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
