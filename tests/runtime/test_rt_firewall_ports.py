"""Published ports: DNAT from 127.0.0.1, a host address, other containers (hairpin) and
outside, TCP and UDP; a host_ip binding only on that address; gone after unpublish."""

import fwlab
import pytest

from workers.runtime.network import firewall
from workers.runtime.network.types import PortBinding

CID = "c0" * 32


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


@pytest.mark.parametrize("br_netfilter", ["0", "1"])
def test_published_ports_are_reachable_from_everywhere_until_unpublished(lab, br_netfilter):
    lab.sysctl("net.bridge.bridge-nf-call-iptables", br_netfilter)
    net, far_net = lab.network(1), lab.network(2)
    web, peer, far = lab.box(net, 2), lab.box(net, 3), lab.box(far_net, 2)
    out = lab.outside()
    fwlab.run("ip", "-n", out.ns, "route", "add", f"{fwlab.HOST_ADDR}/32", "via", "10.20.0.1")
    lab.serve(web.ns, "web", 80, 53)
    firewall.network_rules(net, lab.prefix)
    firewall.network_rules(far_net, lab.prefix)
    assert lab.ask_here("tcp", "127.0.0.1", 8080).startswith("FAIL")

    firewall.publish(CID, [PortBinding(80, "tcp", "", 8080, web.ip),
                           PortBinding(53, "udp", "", 8053, web.ip),
                           PortBinding(80, "tcp", "127.0.0.1", 8081, web.ip)], lab.prefix)
    for proto, port in (("tcp", 8080), ("udp", 8053)):
        # 127.0.0.1 is masqueraded to the gateway (route_localnet on the bridge only)
        assert lab.ask_here(proto, "127.0.0.1", port) == f"web {net.gateway}"
        assert lab.ask_here(proto, fwlab.HOST_ADDR, port) == f"web {fwlab.HOST_ADDR}"
        # hairpin: a neighbour on the same bridge, and the container itself
        assert lab.ask(peer.ns, proto, fwlab.HOST_ADDR, port) == f"web {net.gateway}"
        assert lab.ask(web.ns, proto, fwlab.HOST_ADDR, port) == f"web {net.gateway}"
        assert lab.ask(far.ns, proto, fwlab.HOST_ADDR, port) == f"web {net.gateway}"
        assert lab.ask(out.ns, proto, fwlab.HOST_ADDR, port) == f"web {out.ip}"
    assert lab.ask_here("tcp", "127.0.0.1", 8081) == f"web {net.gateway}"
    assert lab.ask_here("tcp", fwlab.HOST_ADDR, 8081).startswith("FAIL")
    assert lab.ask(out.ns, "tcp", fwlab.HOST_ADDR, 8081).startswith("FAIL")
    with open(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet") as f:
        assert f.read().strip() == "1"
    with open(f"/proc/sys/net/ipv4/conf/{lab.prefix}d/route_localnet") as f:
        assert f.read().strip() == "0"

    firewall.unpublish(CID, lab.prefix)
    for proto, port in (("tcp", 8080), ("udp", 8053), ("tcp", 8081)):
        assert lab.ask_here(proto, "127.0.0.1", port).startswith("FAIL")
        assert lab.ask(peer.ns, proto, fwlab.HOST_ADDR, port).startswith("FAIL")
