"""The embedded resolver (workers/runtime/network/dns.py) answering inside a real container's
network namespace at 127.0.0.11, forwarding to a server this test runs on the host's
loopback, never to an outside address."""

import os
import secrets

import pytest
from dnslib import RCODE, DNSRecord

from tests.dnsfake import LoopbackDNS
from workers.runtime.network import netns
from workers.runtime.network.dns import EMBEDDED_DNS, Resolver

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def host_resolv(tmp_path):
    """A resolv.conf for the resolver to read as the host's (none by default)."""
    path = tmp_path / "resolv.conf"
    path.write_text("search example.org\n")
    return path


@pytest.fixture
def resolver(host_resolv):
    r = Resolver(resolv_conf=str(host_resolv))
    yield r
    r.close()


@pytest.fixture
def netns_file(state_root):
    path = os.path.join(netns.netns_dir(state_root), secrets.token_hex(32))
    netns.create(path)
    yield path
    netns.remove(path)


@pytest.fixture
def rt(runtime_factory):
    rt = runtime_factory()
    assert rt.start_launcher()
    return rt


@pytest.fixture
def forwarder():
    server = LoopbackDNS()
    yield server.address
    server.close()


def ask(netns_path, name, qtype="A", tcp=False):
    """Ask 127.0.0.11 from inside the netns; returns the reply (dnslib)."""
    def query():
        raw = DNSRecord.question(name, qtype).send(EMBEDDED_DNS, 53, tcp=tcp, timeout=3)
        return DNSRecord.parse(raw)
    return netns.run_in(netns_path, query)


@pytest.fixture
def run_in_netns(rt, make_spec, netns_file, read_log):
    """Run a busybox script in a container joined to ``netns_file``; its output."""
    def run(script, **kw):
        spec = make_spec(["sh", "-c", script], netns=netns_file, **kw)
        rt.create(spec)
        rt.start(spec.id)
        rt.wait(spec.id, 30)
        out, err = read_log(rt, spec.id)
        return out + err
    return run


def test_container_resolves_names_of_its_view_through_resolv_conf(run_in_netns, netns_file,
                                                                   resolver):
    cid = secrets.token_hex(32)
    resolver.attach(cid, netns_file, {"web": ["10.9.8.7"], "db": ["10.9.8.5", "10.9.8.6"]},
                    forwarders=[])
    out = run_in_netns(
        "cat /etc/resolv.conf; nslookup web; nslookup DB 127.0.0.11; nslookup nosuch.",
        embedded_dns=True)
    assert out.startswith("nameserver 127.0.0.11\noptions ndots:0\n"), out
    assert "# Option ndots from: internal" in out
    web, db, nosuch = out.split("Server:")[1:]
    assert "Address: 10.9.8.7" in web
    assert "Address: 10.9.8.5" in db and "Address: 10.9.8.6" in db
    assert "NXDOMAIN" in nosuch, nosuch


def test_update_and_detach(netns_file, resolver):
    cid = secrets.token_hex(32)
    resolver.attach(cid, netns_file, {"web": ["10.9.8.7"]}, forwarders=[])
    assert [str(rr.rdata) for rr in ask(netns_file, "web").rr] == ["10.9.8.7"]
    assert [str(rr.rdata) for rr in ask(netns_file, "web", tcp=True).rr] == ["10.9.8.7"]
    reverse = ask(netns_file, "7.8.9.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reverse.rr] == ["web."]
    empty = ask(netns_file, "web", "AAAA")
    assert empty.header.rcode == RCODE.NOERROR and not empty.rr

    resolver.update(cid, {"web": ["10.9.8.9"], "api": ["10.9.8.7"]})
    assert [str(rr.rdata) for rr in ask(netns_file, "web").rr] == ["10.9.8.9"]
    assert ask(netns_file, "gone").header.rcode == RCODE.NXDOMAIN
    resolver.attach(cid, netns_file, {"web": ["10.9.8.1"]}, forwarders=[])  # idempotent
    assert [str(rr.rdata) for rr in ask(netns_file, "web").rr] == ["10.9.8.1"]
    assert resolver.attached() == [cid]

    resolver.detach(cid)
    assert resolver.attached() == []
    with pytest.raises(OSError):  # nothing listens on 127.0.0.11 any more
        ask(netns_file, "web", tcp=True)


def test_other_names_go_to_the_forwarder(run_in_netns, netns_file, resolver, forwarder):
    cid = secrets.token_hex(32)
    resolver.attach(cid, netns_file, {"web": ["10.9.8.7"]}, forwarders=[forwarder])
    out = run_in_netns("nslookup example.test 127.0.0.11; nslookup web 127.0.0.11")
    forwarded, local = out.split("Server:")[1:]
    assert "Address: 192.0.2.7" in forwarded, out
    assert "Address: 10.9.8.7" in local, out
    assert ask(netns_file, "other.test").header.rcode == RCODE.NXDOMAIN  # the forwarder's


def test_the_hosts_nameservers_are_the_default_forwarders(netns_file, resolver, forwarder,
                                                           host_resolv):
    cid = secrets.token_hex(32)
    resolver.attach(cid, netns_file, {})
    assert ask(netns_file, "example.test").header.rcode == RCODE.NXDOMAIN  # no forwarder
    host_resolv.write_text(f"nameserver {forwarder}\n")  # a loopback one: reached from the host
    assert [str(rr.rdata) for rr in ask(netns_file, "example.test").rr] == ["192.0.2.7"]


def test_no_forwarder_answers_servfail_when_it_is_down(netns_file, resolver):
    cid = secrets.token_hex(32)
    resolver.attach(cid, netns_file, {}, forwarders=["127.0.0.1:1"])  # nothing listens
    assert ask(netns_file, "example.test").header.rcode == RCODE.SERVFAIL
