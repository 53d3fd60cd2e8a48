"""What the firewall runs: a change lists the table at most once; putting in place what this
process wrote last, with nobody changing the ruleset since, runs no nft at all; a change
by someone else (another program, another worker) is seen and repaired at the next call."""

import subprocess

import fwlab
import pytest

from workers.runtime.network import firewall
from workers.runtime.network.types import PortBinding

CID = "c0" * 32


@pytest.fixture
def lab():
    with fwlab.Lab() as lab:
        yield lab


@pytest.fixture
def nft_runs(monkeypatch):
    """The nft commands firewall.py runs on its table (passed through to the real nft;
    the once-a-process look at other tables' chains is left out)."""
    runs: list[str] = []
    real = subprocess.run

    def counted(argv, *args, **kwargs):
        if argv[0] == firewall.NFT and "chains" not in argv:
            runs.append("list" if "list" in argv else "apply")
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(firewall.subprocess, "run", counted)
    return runs


def shape(rules: list[dict]) -> dict[str, list]:
    """Each chain's rules in order, without their handles."""
    chains: dict[str, list] = {}
    for r in rules:
        chains.setdefault(r["chain"], []).append((r["expr"], r.get("comment")))
    return chains


def test_nothing_is_run_for_what_is_in_place(lab, nft_runs):
    net = lab.network(1)
    ports = [PortBinding(80, "tcp", "", 8080, "10.10.1.2")]
    firewall.network_rules(net, lab.prefix)
    assert nft_runs.count("apply") == 1 and nft_runs.count("list") <= 1
    before = fwlab.rules(lab.prefix)

    del nft_runs[:]
    firewall.network_rules(net, lab.prefix)  # every start ensures its network
    firewall.unpublish(CID, lab.prefix)  # the teardown of a container without ports
    assert nft_runs == []
    firewall.publish(CID, ports, lab.prefix)
    assert nft_runs == ["apply"]  # the table is known: no listing
    firewall.publish(CID, ports, lab.prefix)
    assert nft_runs == ["apply"]
    firewall.unpublish(CID, lab.prefix)
    assert nft_runs == ["apply", "list", "apply"]  # the rules' handles: one listing
    assert shape(fwlab.rules(lab.prefix)) == shape(before)

    net.icc = False  # a changed network is written again
    del nft_runs[:]
    firewall.network_rules(net, lab.prefix)
    assert nft_runs == ["list", "apply"]
    assert len(fwlab.rules(lab.prefix)) == len(before) + 1


def test_changes_by_others_are_seen_and_repaired(lab, nft_runs):
    net = lab.network(1)
    firewall.network_rules(net, lab.prefix)
    firewall.publish(CID, [PortBinding(80, "tcp", "", 8080, "10.10.1.2")], lab.prefix)
    before = fwlab.rules(lab.prefix)
    table = firewall.table_name(lab.prefix)

    fwlab.run("nft", "flush", "chain", "ip", table, "postrouting")  # someone else
    firewall.network_rules(net, lab.prefix)
    assert shape(fwlab.rules(lab.prefix)) == shape(before)

    fwlab.run("nft", "delete", "table", "ip", table)  # e.g. a firewall reload
    firewall.unpublish(CID, lab.prefix)  # nothing left to remove: no error
    firewall.network_rules(net, lab.prefix)
    assert {r["chain"] for r in fwlab.rules(lab.prefix)} == {
        "prerouting", "output", "forward", "postrouting", f"fwd-{net.bridge}"}

    fwlab.run("nft", "add", "table", "inet", "neighbour")  # an unrelated change elsewhere
    del nft_runs[:]
    firewall.network_rules(net, lab.prefix)
    assert nft_runs == ["list", "apply"]  # not known to be in place any more: written again
