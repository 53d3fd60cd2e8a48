"""Next to Docker's iptables-nft rules (emulated in the lab's own namespace: the host's
ruleset is never touched). A packet must be accepted by every base chain on its hook, so
Docker's FORWARD policy DROP drops what Dockyard forwards: found by forward_blockers();
loopback and host-address access to published ports (no forwarding) keep working, and the
remedy Docker documents for other traffic (accepting it in DOCKER-USER) restores the rest
while Dockyard's own drops still hold."""

import fwlab
import pytest

from workers.runtime.network import firewall
from workers.runtime.network.types import PortBinding


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


def iptables(lab, *args: str) -> None:
    fwlab.run("ip", "netns", "exec", lab.host, "iptables-nft", *args)


@pytest.mark.parametrize("br_netfilter", ["0", "1"])
def test_docker_forward_drop_blocks_forwarding_until_docker_user_accepts(lab, br_netfilter):
    lab.sysctl("net.bridge.bridge-nf-call-iptables", br_netfilter)
    # what dockerd (iptables=true) leaves in the filter table
    iptables(lab, "-N", "DOCKER-USER")
    iptables(lab, "-A", "FORWARD", "-j", "DOCKER-USER")
    iptables(lab, "-P", "FORWARD", "DROP")
    net = lab.network(1)
    a, b = lab.box(net, 2), lab.box(net, 3)
    out = lab.outside()
    for dest in ("10.10.0.0/16", f"{fwlab.HOST_ADDR}/32"):
        fwlab.run("ip", "-n", out.ns, "route", "add", dest, "via", "10.20.0.1")
    lab.serve(out.ns, "outside", 80)
    lab.serve(b.ns, "b", 80)
    firewall.network_rules(net, lab.prefix)
    firewall.publish("b" * 64, [PortBinding(80, "tcp", "", 8080, b.ip)], lab.prefix)
    assert firewall.forward_blockers() == ["ip filter FORWARD"]

    assert lab.ask(a.ns, "tcp", out.ip, 80).startswith("FAIL")
    assert lab.ask(out.ns, "tcp", fwlab.HOST_ADDR, 8080).startswith("FAIL")
    # bridged between two ports: through Docker's FORWARD only with br_netfilter on
    same_bridge = lab.ask(a.ns, "tcp", b.ip, 80)
    assert same_bridge.startswith("FAIL") if br_netfilter == "1" else same_bridge == f"b {a.ip}"
    assert lab.ask_here("tcp", "127.0.0.1", 8080) == f"b {net.gateway}"
    assert lab.ask_here("tcp", fwlab.HOST_ADDR, 8080) == f"b {fwlab.HOST_ADDR}"

    # the admin's remedy, in Docker's own hook chain
    iptables(lab, "-I", "DOCKER-USER", "-i", f"{lab.prefix}b+", "-j", "ACCEPT")
    iptables(lab, "-I", "DOCKER-USER", "-o", f"{lab.prefix}b+", "-j", "ACCEPT")
    assert lab.ask(a.ns, "tcp", out.ip, 80) == "outside 10.20.0.1"
    assert lab.ask(out.ns, "tcp", fwlab.HOST_ADDR, 8080) == f"b {out.ip}"
    assert lab.ask(a.ns, "tcp", b.ip, 80) == f"b {a.ip}"
    assert lab.ask(out.ns, "tcp", b.ip, 80).startswith("FAIL")  # Dockyard's drop still holds
