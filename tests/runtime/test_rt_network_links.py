"""Bridge networks on the real kernel: NetworkManager makes a bridge, a netns file per
container and a veth pair per endpoint (eth0 inside, with its address, MAC, broadcast and
default route); real containers joined to those netns files (ContainerSpec.netns) talk to
each other and to the gateway; connect/disconnect on a running container; setup twice is
setup once; a taken host port is refused before anything is made; teardown and reconcile
leave no link with the test's prefix and no netns file (the ``lab`` fixture checks)."""

import os
import re
import socket

import pytest

from tests.runtime.netkit import in_netns, lab  # noqa: F401 (fixture)
from workers.runtime.network import PortBinding, PortInUse, links
from workers.runtime.network.types import docker_mac, veth_name

SERVER = "mkdir /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"


def fetch(ip: str, tries: int = 50) -> str:
    """A shell line: wget http://<ip>/ until it answers (the server may still start).
    (busybox 1.35's wget -T crashes: timeout(1) bounds each try instead.)"""
    return (f"for i in $(seq {tries}); do timeout 2 wget -q -O - http://{ip}/ && break; "
            "sleep 0.1; done")


def start(rt, spec, netns: str) -> str:
    spec.netns = netns
    rt.create(spec)
    rt.start(spec.id)
    return spec.id


def run_once(rt, spec, netns: str, read_log) -> tuple[int, str, str]:
    start(rt, spec, netns)
    code = rt.wait(spec.id, 20)
    out, err = read_log(rt, spec.id)
    return code, out, err


def test_two_containers_reach_each_other_and_the_gateway(rt, lab, make_spec,  # noqa: F811
                                                        read_log):
    net = lab.network()
    ep1, ep2 = lab.endpoint(net, 2), lab.endpoint(net, 3)
    server = make_spec(["sh", "-c", SERVER], hostname="one")
    client = make_spec(["sh", "-c", "ip -f inet -4 -o addr; ip route; ip -o link show eth0; "
                        f"{fetch(ep1.ip)}; ping -c1 -W2 {net.gateway} >/dev/null && echo gw-ok"])
    start(rt, server, lab.mgr.setup_container(server.id, [ep1], []))
    code, out, err = run_once(rt, client, lab.mgr.setup_container(client.id, [ep2], []),
                              read_log)
    assert code == 0, err
    addrs = [line for line in out.splitlines() if " inet " in line]
    assert [line.split()[1] for line in addrs] == ["lo", "eth0"]  # as the seed says
    assert re.match(r"^\d+: lo\s+inet 127\.0\.0\.1/8 scope host lo", addrs[0])
    assert re.match(rf"^\d+: eth0\s+inet {re.escape(ep2.ip)}/24 brd "
                    rf"{re.escape(net.gateway[:-1])}255 scope global eth0", addrs[1])
    assert f"default via {net.gateway} dev eth0" in out
    assert ep2.mac in out and "mtu 1500" in out
    assert "hello-from-one" in out
    assert "gw-ok" in out

    with links.node() as ipr:  # the host ends are ports of the bridge
        bridge = links.index(ipr, net.bridge)
        assert ipr.link("get", index=bridge)[0].get("address") == docker_mac(net.gateway)
        for ep in (ep1, ep2):
            host = ipr.link("get", ifname=veth_name(lab.prefix, ep.endpoint_id))[0]
            assert host.get("master") == bridge
    for spec in (server, client):
        rt.remove(spec.id, force=True)
        lab.mgr.teardown_container(spec.id)
        lab.mgr.teardown_container(spec.id)  # idempotent
    assert lab.links() == [net.bridge]
    assert lab.netns_files() == []
    lab.mgr.remove_network(net)
    lab.mgr.remove_network(net)
    assert lab.links() == []


def test_connect_and_disconnect_a_running_container(rt, lab, make_spec,  # noqa: F811
                                                    read_log):
    net1, net2 = lab.network("a"), lab.network("b")
    server = make_spec(["sh", "-c", SERVER], hostname="srv")
    path = lab.mgr.setup_container(server.id, [lab.endpoint(net1, 2)], [])
    start(rt, server, path)
    second = lab.endpoint(net2, 9, ifname="eth1", default_route=False)
    lab.mgr.connect(server.id, second)
    lab.mgr.connect(server.id, second)  # idempotent
    addrs = in_netns(path, "ip", "-f", "inet", "-4", "-o", "addr").stdout
    assert f"eth1    inet {second.ip}/24" in addrs

    client = make_spec(["sh", "-c", fetch(second.ip)])
    cpath = lab.mgr.setup_container(client.id, [lab.endpoint(net2, 3)], [])
    assert run_once(rt, client, cpath, read_log)[1].strip() == "hello-from-srv"

    lab.mgr.disconnect(server.id, second)
    lab.mgr.disconnect(server.id, second)
    assert "eth1" not in in_netns(path, "ip", "-o", "link").stdout
    # (not the last command: as PID 1 wget would ignore timeout's SIGTERM)
    again = make_spec(["sh", "-c", f"timeout 3 wget -q -O - http://{second.ip}/; echo rc=$?"])
    out = run_once(rt, again, cpath, read_log)[1]
    assert "hello" not in out and "rc=0" not in out and "rc=" in out


def test_setup_twice_is_setup_once(lab):  # noqa: F811
    net = lab.network()
    ep = lab.endpoint(net, 5)
    cid = "c" * 64
    path = lab.mgr.setup_container(cid, [ep], [])
    first = in_netns(path, "ip", "-o", "link", "show", "eth0").stdout
    assert lab.mgr.setup_container(cid, [ep], []) == path
    assert in_netns(path, "ip", "-o", "link", "show", "eth0").stdout == first  # not re-made
    assert sorted(lab.links()) == sorted([net.bridge, veth_name(lab.prefix, ep.endpoint_id)])
    addrs = in_netns(path, "ip", "-f", "inet", "-4", "-o", "addr").stdout
    assert addrs.count(" inet ") == 2
    route = in_netns(path, "ip", "route").stdout
    assert route.count("default") == 1
    assert lab.mgr.reconcile([net], {cid: [ep]}) == []  # everything is known


def test_a_taken_host_port_is_refused_before_anything_is_made(lab):  # noqa: F811
    net = lab.network()
    ep = lab.endpoint(net, 2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        binding = PortBinding(container_port=80, proto="tcp", host_ip="127.0.0.1",
                              host_port=port, container_ip=ep.ip)
        with pytest.raises(PortInUse) as e:
            lab.mgr.setup_container("d" * 64, [ep], [binding])
    assert str(e.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    assert lab.links() == [] and lab.netns_files() == []

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))
        port = taken.getsockname()[1]
        binding = PortBinding(container_port=53, proto="udp", host_ip="", host_port=port,
                              container_ip=ep.ip)
        with pytest.raises(PortInUse, match=f"Bind for 0.0.0.0:{port} failed"):
            lab.mgr.setup_container("d" * 64, [ep], [binding])
    assert lab.links() == [] and lab.netns_files() == []


def test_reconcile_removes_what_is_not_known(lab):  # noqa: F811
    net, gone_net = lab.network("keep"), lab.network("gone")
    keep, gone = lab.endpoint(net, 2), lab.endpoint(gone_net, 3)
    lab.mgr.setup_container("a" * 64, [keep], [])
    lab.mgr.setup_container("b" * 64, [gone], [])
    with links.node() as ipr:  # a stray veth pair with the prefix, both ends on the node
        ipr.link("add", ifname=lab.prefix + "vstray", kind="veth", peer=lab.prefix + "vpeer")

    removed = lab.mgr.reconcile([net], {"a" * 64: [keep]})
    assert f"netns {'b' * 64}" in removed
    assert f"link {gone_net.bridge}" in removed
    assert f"link {lab.prefix}vstray" in removed or f"link {lab.prefix}vpeer" in removed
    assert sorted(lab.links()) == sorted([net.bridge, veth_name(lab.prefix, keep.endpoint_id)])
    assert lab.netns_files() == ["a" * 64]
    assert os.path.exists(lab.mgr.netns_path("a" * 64))
    assert lab.mgr.reconcile([net], {"a" * 64: [keep]}) == []
