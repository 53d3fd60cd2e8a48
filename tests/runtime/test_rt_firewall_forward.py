"""Forwarding: a network's containers reach the outside (masqueraded), nothing unsolicited
gets in, bridges are isolated from each other, an internal network has no way out."""

import fwlab
import pytest

from workers.runtime.network import firewall


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


def test_outside_is_reached_masqueraded_and_nothing_unsolicited_gets_in(lab):
    net, other_net = lab.network(1), lab.network(2)
    box, other = lab.box(net, 2), lab.box(other_net, 2)
    out = lab.outside()
    # the outside could route to the bridges: only the firewall keeps it out
    fwlab.run("ip", "-n", out.ns, "route", "add", "10.10.0.0/16", "via", "10.20.0.1")
    lab.serve(out.ns, "outside", 80)
    lab.serve(box.ns, "box", 80)
    assert lab.ask(out.ns, "tcp", box.ip, 80) == "box 10.20.0.2"  # no rules: wide open

    firewall.network_rules(net, lab.prefix)
    firewall.network_rules(other_net, lab.prefix)
    assert lab.ask(box.ns, "tcp", out.ip, 80) == "outside 10.20.0.1"  # masqueraded
    assert lab.ask(box.ns, "udp", out.ip, 80) == "outside 10.20.0.1"
    assert lab.ask(out.ns, "tcp", box.ip, 80).startswith("FAIL")
    assert lab.ask(other.ns, "tcp", box.ip, 80).startswith("FAIL")  # another bridge
    assert lab.ask(box.ns, "tcp", net.gateway, 80).startswith("FAIL")  # the host: no server
    lab.serve(lab.host, "host", 80)
    assert lab.ask(box.ns, "tcp", net.gateway, 80) == f"host {box.ip}"  # not forwarded

    firewall.remove_network_rules(net, lab.prefix)
    assert lab.ask(box.ns, "tcp", out.ip, 80) == f"outside {box.ip}"  # no masquerade left


def test_internal_network_has_no_way_in_or_out(lab):
    net = lab.network(1, internal=True)
    a, b = lab.box(net, 2), lab.box(net, 3)
    out = lab.outside()
    fwlab.run("ip", "-n", out.ns, "route", "add", "10.10.0.0/16", "via", "10.20.0.1")
    lab.serve(out.ns, "outside", 80)
    lab.serve(b.ns, "b", 80)
    firewall.network_rules(net, lab.prefix)
    assert lab.ask(a.ns, "tcp", out.ip, 80).startswith("FAIL")
    assert lab.ask(a.ns, "udp", out.ip, 80).startswith("FAIL")
    assert lab.ask(out.ns, "tcp", b.ip, 80).startswith("FAIL")
    assert lab.ask(a.ns, "tcp", b.ip, 80) == f"b {a.ip}"  # inside the network: open
    postrouting = [r for r in fwlab.rules(lab.prefix) if r["chain"] == "postrouting"]
    assert postrouting == []  # no masquerade for it
