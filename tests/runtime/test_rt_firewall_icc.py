"""icc off: containers of one bridge network cannot talk to each other, except the pairs
and ports the allow list names (one way: the destination cannot open connections back),
with the host-wide br_netfilter switch on and off, directly and through a published port."""

import fwlab
import pytest

from workers.runtime.network import firewall
from workers.runtime.network.types import PortBinding


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


def reached(answer: str) -> bool:
    return not answer.startswith("FAIL")


@pytest.mark.parametrize("br_netfilter", ["0", "1"])
def test_icc_off_isolates_and_the_allow_list_opens_exactly_what_it_names(lab, br_netfilter):
    lab.sysctl("net.bridge.bridge-nf-call-iptables", br_netfilter)
    net = lab.network(1, icc=False)
    a, b, c = lab.box(net, 2), lab.box(net, 3), lab.box(net, 4)
    out = lab.outside()
    for box in (a, b, c):
        lab.serve(box.ns, box.ns, 80, 81)
    lab.serve(out.ns, "outside", 80)
    net.allow = [{"src": a.ip, "dst": b.ip, "proto": "tcp", "port": 80},
                 {"src": c.ip, "dst": b.ip, "proto": None, "port": None}]
    firewall.network_rules(net, lab.prefix)
    firewall.publish("b" * 64, [PortBinding(81, "tcp", "", 8081, b.ip)], lab.prefix)
    # the host-wide br_netfilter switch stays as it was; only this bridge calls iptables
    assert fwlab.bridge_option(net.bridge, "nf_call_iptables") == "1"
    with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
        assert f.read().strip() == br_netfilter

    allowed = {(a, b, "tcp", 80), (c, b, "tcp", 80), (c, b, "tcp", 81), (c, b, "udp", 80),
               (c, b, "udp", 81)}
    for src in (a, b, c):
        for dst in (a, b, c):
            if src is dst:
                continue
            for proto in ("tcp", "udp"):
                for port in (80, 81):
                    want = (src, dst, proto, port) in allowed
                    got = reached(lab.ask(src.ns, proto, dst.ip, port))
                    assert got == want, f"{src.ip} -> {dst.ip} {proto}/{port}: {got}"
    # through the published port (routed via the host): the same allow list
    assert lab.ask(c.ns, "tcp", fwlab.HOST_ADDR, 8081) == f"{b.ns} {net.gateway}"
    assert not reached(lab.ask(a.ns, "tcp", fwlab.HOST_ADDR, 8081))
    # icc is about the bridge only: the outside and the host stay reachable
    assert lab.ask(a.ns, "tcp", out.ip, 80) == "outside 10.20.0.1"
    assert lab.ask_here("tcp", "127.0.0.1", 8081) == f"{b.ns} {net.gateway}"

    net.icc, net.allow = True, []  # replaced in place: everything open again
    firewall.network_rules(net, lab.prefix)
    assert lab.ask(b.ns, "udp", a.ip, 81) == f"{a.ns} {b.ip}"
    assert fwlab.bridge_option(net.bridge, "nf_call_iptables") == "0"
