"""The rules themselves: tagged with their owner, idempotent, replaced in place, removed
with their owner, strays found and removed, the table gone when empty, nothing else in
the ruleset touched."""

import fwlab
import pytest

from workers.runtime.network import firewall
from workers.runtime.network.types import PortBinding

CID, OTHER_CID = "c0" * 32, "c1" * 32


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


def by_owner(prefix: str) -> dict[str, list[dict]]:
    owners: dict[str, list[dict]] = {}
    for r in fwlab.rules(prefix):
        owners.setdefault(r.get("comment"), []).append(r)
    return owners


def test_rules_appear_replace_and_disappear_with_their_owner(lab):
    fwlab.run("nft", "add table inet neighbour")  # someone else's table in the same ruleset
    fwlab.run("nft", "add chain inet neighbour filt { type filter hook forward priority 0; }")
    fwlab.run("nft", "add rule inet neighbour filt counter")
    neighbour = fwlab.run("nft", "list", "table", "inet", "neighbour").stdout
    net, internal = lab.network(1), lab.network(2, internal=True, icc=False)
    tag, tag_internal, tag_ctr = (firewall.tag(lab.prefix, i) for i in (net.id, internal.id, CID))
    assert firewall.table_name("dy") == "dockyard"
    assert firewall.table_name(lab.prefix) == f"dockyard-{lab.prefix}"

    for _ in range(2):  # idempotent
        firewall.network_rules(net, lab.prefix)
        firewall.network_rules(internal, lab.prefix)
        firewall.publish(CID, [PortBinding(80, "tcp", "", 8080, "10.10.1.2")], lab.prefix)
    owners = by_owner(lab.prefix)
    assert set(owners) == {None, tag, tag_internal, tag_ctr}  # None: the two jumps to "ports"
    assert len(owners[None]) == 2
    assert [r["chain"] for r in owners[tag_ctr]] == ["ports"]
    chains = {r["chain"] for r in owners[tag]}
    assert chains == {"postrouting", "forward", f"fwd-{net.bridge}"}
    assert "postrouting" not in {r["chain"] for r in owners[tag_internal]}
    count = len(owners[tag])

    firewall.publish(CID, [PortBinding(53, "udp", "", 5353, "10.10.1.2"),
                           PortBinding(53, "tcp", "", 5353, "10.10.1.2")], lab.prefix)
    ports = by_owner(lab.prefix)[tag_ctr]
    assert sorted(r["expr"][-1]["dnat"]["port"] for r in ports) == [53, 53]
    firewall.publish(OTHER_CID, [PortBinding(80, "tcp", "", 8080, "10.10.1.3")], lab.prefix)
    net.icc = False
    firewall.network_rules(net, lab.prefix)
    assert len(by_owner(lab.prefix)[tag]) == count + 1  # established + drop instead of return

    assert firewall.strays(lab.prefix, [net.id, internal.id], [CID, OTHER_CID]) == []
    assert firewall.strays(lab.prefix, [net.id], [CID]) == sorted([internal.id, OTHER_CID])
    removed = firewall.remove_strays(lab.prefix, [net.id], [CID])
    assert removed == [f"nft rules {firewall.tag(lab.prefix, i)}"
                       for i in sorted([internal.id, OTHER_CID])]
    assert set(by_owner(lab.prefix)) == {None, tag, tag_ctr}
    assert f"fwd-{internal.bridge}" not in fwlab.run("nft", "list", "chains").stdout

    firewall.unpublish(CID, lab.prefix)
    firewall.unpublish(CID, lab.prefix)
    firewall.remove_network_rules(net, lab.prefix)
    assert fwlab.rules(lab.prefix) == []
    tables = fwlab.run("nft", "list", "tables").stdout
    assert firewall.table_name(lab.prefix) not in tables  # nothing left: no table
    firewall.remove_network_rules(net, lab.prefix)  # idempotent on nothing
    assert fwlab.run("nft", "list", "table", "inet", "neighbour").stdout == neighbour


def test_drop_table_and_forward_blockers(lab):
    net = lab.network(1)
    firewall.network_rules(net, lab.prefix)
    assert firewall.forward_blockers() == []
    fwlab.run("nft", "add table ip strict")
    fwlab.run("nft", "add chain ip strict filt { type filter hook forward priority 0; "
                     "policy drop; }")
    assert firewall.forward_blockers() == ["ip strict filt"]
    firewall.drop_table(lab.prefix)
    firewall.drop_table(lab.prefix)
    assert firewall.table_name(lab.prefix) not in fwlab.run("nft", "list", "tables").stdout


def test_values_are_checked_before_they_reach_nft(lab):
    net = lab.network(1, icc=False)
    net.allow = [{"src": "10.10.1.2 drop; flush ruleset", "dst": "10.10.1.3"}]
    with pytest.raises(firewall.FirewallError, match="not an IPv4 address"):
        firewall.network_rules(net, lab.prefix)
    bad_ports = [PortBinding(80, "tcp; flush ruleset", "", 8080, "10.10.1.2"),
                 PortBinding(80, "tcp", "", 70000, "10.10.1.2"),
                 PortBinding(80, "tcp", "", 8080, "10.10.1.2/0")]
    for port in bad_ports:
        with pytest.raises(firewall.FirewallError):
            firewall.publish(CID, [port], lab.prefix)
    assert fwlab.rules(lab.prefix) == []
