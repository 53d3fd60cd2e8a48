"""Networks and IPAM at the service layer (panel/networks/services.py, the create fields of
panel/containers/networking.py). The plumbing on the node is tested in tests/runtime and
tests/api/test_networks_cli.py."""

import ipaddress
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers import networking
from panel.containers import services as containers
from panel.containers.policy import Forbidden
from panel.errors import Conflict, InvalidParameter, NotFound
from panel.jobs.models import Job
from panel.networks import services as networks
from panel.networks.models import Endpoint, Network, PublishedPort

REPO = Path(__file__).resolve().parents[2]
SEED_IPAM = {"Config": [{"Subnet": "10.0.42.0/24", "IPRange": "10.0.42.128/25"}]}


def _user_network(owner, team, name="user-network", ipam=None, **kwargs):
    return networks.create(acting_user=owner, team=team, name=name, driver="bridge",
                           labels={"project": "dockerinaction", "chapter": "5"},
                           attachable=True, scope="local", ipam=ipam or SEED_IPAM, **kwargs)


def _container(owner, team, name, mode="", host_config=None, networking_config=None):
    return containers.create(acting_user=owner, team=team, name=name,
                             config={"Image": "busybox:1.29"},
                             host_config={"NetworkMode": mode, **(host_config or {})},
                             networking_config=networking_config)


def test_default_networks_exist_once(db, settings):
    networks.ensure_defaults()
    networks.ensure_defaults()
    rows = {n.name: n for n in Network.objects.all()}
    assert {name: (n.driver, n.scope) for name, n in rows.items()} == {
        "bridge": ("bridge", "local"), "host": ("host", "local"), "none": ("null", "local")}
    bridge = rows["bridge"]
    assert (bridge.subnet, bridge.gateway) == (settings.BRIDGE_SUBNET, "172.31.0.1")
    assert networks.bridge_name(bridge) == f"{settings.RESOURCE_PREFIX}0"
    assert all(n.is_default for n in rows.values())


def test_create_the_seeds_network(owner, team, enqueued):
    network = _user_network(owner, team)
    assert (network.subnet, network.ip_range, network.gateway) == (
        "10.0.42.0/24", "10.0.42.128/25", "10.0.42.1")
    assert (network.labels, network.attachable, network.scope, network.internal) == (
        {"project": "dockerinaction", "chapter": "5"}, True, "local", False)
    assert network.ipam["Config"] == [{"Subnet": "10.0.42.0/24", "Gateway": "10.0.42.1",
                                       "IPRange": "10.0.42.128/25"}]
    job = Job.objects.get(kind="network.create")
    assert job.payload["network"]["bridge"] == networks.bridge_name(network)
    assert len(networks.bridge_name(network)) <= 15
    assert AuditEvent.objects.filter(action="network.create", object_id=network.id).exists()
    assert networks.resolve(owner, network.id[:6]) == networks.resolve(owner, "user-network")


def test_create_refusals_in_dockers_words(owner, team, viewer, outsider):
    _user_network(owner, team)
    with pytest.raises(Conflict, match="^network with name user-network already exists$"):
        _user_network(owner, team)
    with pytest.raises(Forbidden, match="^Pool overlaps with other one on this address space$"):
        _user_network(owner, team, name="other", ipam={"Config": [{"Subnet": "10.0.0.0/16"}]})
    with pytest.raises(Forbidden, match="Pool overlaps"):  # the default bridge's subnet
        _user_network(owner, team, name="other", ipam={"Config": [{"Subnet": "172.31.5.0/24"}]})
    with pytest.raises(InvalidParameter, match="no matching subnet for range"):
        _user_network(owner, team, name="other",
                      ipam={"Config": [{"Subnet": "10.1.0.0/24", "IPRange": "10.2.0.0/25"}]})
    with pytest.raises(InvalidParameter, match="no matching subnet for gateway 10.9.9.9"):
        _user_network(owner, team, name="other",
                      ipam={"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.9.9.9"}]})
    with pytest.raises(InvalidParameter, match="it should be 10.1.0.0/24"):
        _user_network(owner, team, name="other", ipam={"Config": [{"Subnet": "10.1.0.7/24"}]})
    with pytest.raises(NotFound, match='plugin "overlay" not found'):
        networks.create(acting_user=owner, team=team, name="o", driver="overlay")
    with pytest.raises(Forbidden, match='only one instance of "host" network is allowed'):
        networks.create(acting_user=owner, team=team, name="h", driver="host")
    with pytest.raises(PermissionDenied):
        networks.create(acting_user=viewer, team=team, name="v")
    with pytest.raises(NotFound, match="network user-network not found"):
        networks.resolve(outsider, "user-network")
    assert Network.objects.filter(team=team).count() == 1


def test_subnet_chosen_when_none_given(owner, team):
    first = networks.create(acting_user=owner, team=team, name="a")
    second = networks.create(acting_user=owner, team=team, name="b")
    assert not ipaddress.IPv4Network(first.subnet).overlaps(ipaddress.IPv4Network(second.subnet))
    assert first.gateway == str(ipaddress.IPv4Network(first.subnet).network_address + 1)


def test_addresses_come_from_the_ip_range_and_return(owner, team, image):
    network = _user_network(owner, team)
    one = _container(owner, team, "one", "user-network")
    two = _container(owner, team, "two", "user-network",
                     networking_config={"EndpointsConfig": {"user-network": {
                         "IPAMConfig": {"IPv4Address": "10.0.42.7"}, "Aliases": ["db"]}}})
    three = _container(owner, team, "three", "user-network")
    ep1, ep2, ep3 = (networks.endpoints_of(c)[0] for c in (one, two, three))
    assert (ep1.ip, ep2.ip, ep3.ip) == ("10.0.42.128", "10.0.42.7", "10.0.42.129")
    assert (ep2.static, ep2.aliases, ep2.mac) == (True, ["db"], "02:42:0a:00:2a:07")
    assert ep1.ifname == "eth0"
    with pytest.raises(Conflict, match="Address already in use: 10.0.42.7"):
        _container(owner, team, "four", "user-network",
                   networking_config={"EndpointsConfig": {"user-network": {
                       "IPAMConfig": {"IPv4Address": "10.0.42.7"}}}})
    with pytest.raises(InvalidParameter, match="no configured subnet"):
        _container(owner, team, "four", "user-network",
                   networking_config={"EndpointsConfig": {"user-network": {
                       "IPAMConfig": {"IPv4Address": "10.0.43.7"}}}})
    networks.disconnect(acting_user=owner, network=network, container=one)
    assert _container(owner, team, "five", "user-network").endpoints.get().ip == "10.0.42.128"
    containers.remove(acting_user=owner, container=three)  # the row goes with its job
    three.delete()
    assert _container(owner, team, "six", "user-network").endpoints.get().ip == "10.0.42.129"


def test_the_database_refuses_a_second_holder_of_an_address(owner, team, image, monkeypatch):
    """Two allocators that read the same free address: the later insert loses and retries."""
    _user_network(owner, team)
    first = _container(owner, team, "first", "user-network")
    real = networks._used_addresses
    stale = iter([set()])  # the first read does not see `first`'s address yet
    monkeypatch.setattr(networks, "_used_addresses", lambda n: next(stale, None) or real(n))
    second = _container(owner, team, "second", "user-network")
    assert (first.endpoints.get().ip, second.endpoints.get().ip) == ("10.0.42.128",
                                                                     "10.0.42.129")


def test_connect_disconnect_and_remove_in_use(owner, team, image, enqueued):
    network = _user_network(owner, team)
    web = _container(owner, team, "web")
    assert networks.endpoints_of(web)[0].network.name == "bridge"
    assert networks.connect(acting_user=owner, network=network, container=web,
                            aliases=["www"]) is None  # not running: no job
    eth1 = networks.endpoints_of(web)[1]
    assert (eth1.ifname, eth1.ip, eth1.aliases) == ("eth1", "10.0.42.128", ["www"])
    with pytest.raises(Forbidden, match="endpoint with name web already exists in network"):
        networks.connect(acting_user=owner, network=network, container=web)
    with pytest.raises(Forbidden, match=f"^error while removing network: network user-network "
                                        f"id {network.id} has active endpoints$"):
        networks.remove(acting_user=owner, network=network)
    with pytest.raises(Forbidden, match="bridge is a pre-defined network"):
        networks.remove(acting_user=owner, network=networks.resolve(owner, "bridge"))
    web.state = "running"
    web.save()
    job = networks.disconnect(acting_user=owner, network=network, container=web)
    assert job.kind == "network.disconnect" and job.payload["endpoint"]["ifname"] == "eth1"
    assert networks.endpoint_from_payload(job.payload["endpoint"]).network.subnet == \
        "10.0.42.0/24"
    with pytest.raises(Forbidden, match="is not connected to network user-network"):
        networks.disconnect(acting_user=owner, network=network, container=web)
    networks.remove(acting_user=owner, network=network)
    assert [j.kind for j in Job.objects.filter(target_type="network").order_by("created")] == [
        "network.create", "network.remove"]


def test_prune_keeps_used_and_default_networks(owner, team, image):
    _user_network(owner, team)
    networks.create(acting_user=owner, team=team, name="idle", labels={"keep": "no"})
    _container(owner, team, "c1", "user-network")
    removed, jobs = networks.prune(acting_user=owner)
    assert removed == ["idle"] and [j.kind for j in jobs] == ["network.remove"]
    assert set(Network.objects.values_list("name", flat=True)) == {
        "bridge", "host", "none", "user-network"}


@pytest.mark.parametrize("mode, host_config, message", [
    ("container:xx", {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}},
     "^conflicting options: port publishing and the container type network mode$"),
    ("", {"PortBindings": {"80/xyz": []}}, 'invalid port specification: "80/xyz"'),
    ("", {"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}, "invalid port"),
    ("nowhere", {}, "network nowhere not found"),
    ("bridge", {}, "user specified IP address is supported on user defined networks only"),
])
def test_create_refusals(owner, team, image, mode, host_config, message):
    other = _container(owner, team, "xx", "none")
    cfg = {"EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.31.0.9"}}}} \
        if mode == "bridge" else None
    with pytest.raises(InvalidParameter, match=message):
        _container(owner, team, "yy", mode, host_config, networking_config=cfg)
    assert not Endpoint.objects.exclude(container=other).exists()


def test_modes_and_runtime_fields(owner, team, image, settings):
    from workers.runtime.network import NetworkManager

    netns = NetworkManager(str(settings.STATE_ROOT), settings.RESOURCE_PREFIX).netns_path
    team.allow_host_namespaces = True  # --network host: team policy
    team.save()
    host = _container(owner, team, "hh", "host")
    none = _container(owner, team, "nn", "none")
    base = _container(owner, team, "bb")
    shared = _container(owner, team, "ss", "container:bb")
    assert [networks.endpoints_of(c) for c in (host, none, shared)] == [[], [], []]
    assert shared.spec["Joins"] == {"net": base.id}
    assert networking.runtime_fields(host) == {"netns": "host"}
    assert networking.runtime_fields(none) == {"netns": ""}
    assert networking.runtime_fields(base) == {"netns": netns(base.id)}
    assert networking.runtime_fields(shared) == {"netns": netns(base.id)}


def test_ports_wanted_and_allocated(owner, team, image):
    image.config["config"]["ExposedPorts"] = {"53/udp": {}, "80/tcp": {}}
    image.save()
    web = _container(owner, team, "web", host_config={
        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                         "8443/tcp": [{"HostPort": "18443"}]},
        "PublishAllPorts": True})
    wanted = networking.wanted_ports(web)
    assert sorted((w["container_port"], w["proto"], w["host_ip"], w["host_port"])
                  for w in wanted) == [(53, "udp", "", 0), (80, "tcp", "127.0.0.1", 0),
                                       (8443, "tcp", "", 18443)]
    bindings = networks.allocate_ports(web, wanted, "172.31.0.2")
    random = [b.host_port for b in bindings if b.container_port != 8443]
    low, high = networks._ephemeral_range()
    assert all(low <= p <= high for p in random)
    assert networks.docker_ports(web)["8443/tcp"] == [{"HostIp": "0.0.0.0",
                                                       "HostPort": "18443"}]
    other = _container(owner, team, "other", host_config={
        "PortBindings": {"80/tcp": [{"HostPort": "18443"}]}})
    with pytest.raises(Conflict, match="^Bind for 0.0.0.0:18443 failed: port is already "
                                      "allocated$"):
        networks.allocate_ports(other, networking.wanted_ports(other), "172.31.0.3")
    networks.release_ports(web)
    assert not PublishedPort.objects.exists()
    assert networks.allocate_ports(other, networking.wanted_ports(other), "172.31.0.3")


def test_concurrent_allocation_from_processes(tmp_path):
    """Several processes take addresses from one small range at the same time, each with its
    own database connection: every address is handed out once."""
    env = {**os.environ, "DOCKYARD_DB_PATH": str(tmp_path / "ipam.sqlite3"),
           "DOCKYARD_STATE_ROOT": str(tmp_path / "state"), "DJANGO_SETTINGS_MODULE":
           "panel.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env,
                   check=True, timeout=300)
    script = textwrap.dedent("""
        import sys, django
        django.setup()
        from datetime import UTC, datetime
        from panel.containers.models import Container
        from panel.images.models import Image
        from panel.networks import services as networks
        from panel.networks.models import Network
        from panel.nodes.services import local_node
        from panel.teams.services import default_team
        worker, per_worker = int(sys.argv[1]), int(sys.argv[2])
        if worker < 0:  # set-up: a network with 40 addresses, and the containers
            node, team = local_node(), default_team()
            image = Image.objects.create(id="a" * 64, node=node, config={}, layers=[],
                                         created=datetime(2020, 1, 1, tzinfo=UTC))
            networks.create(acting_user=None, team=team, name="n",
                            ipam={"Config": [{"Subnet": "10.7.0.0/24",
                                              "IPRange": "10.7.0.64/26"}]})
            for i in range(-worker * per_worker):
                Container.objects.create(id=f"{i:064x}", name=f"c{i}", team=team, node=node,
                                         image=image)
            sys.exit(0)
        network = Network.objects.get(name="n")
        for i in range(worker * per_worker, (worker + 1) * per_worker):
            networks.allocate(network, Container.objects.get(name=f"c{i}"))
    """)
    workers, per_worker = 4, 10
    run = [sys.executable, "-c", script]
    subprocess.run([*run, str(-workers), str(per_worker)], cwd=REPO, env=env, check=True,
                   timeout=120)
    procs = [subprocess.Popen([*run, str(w), str(per_worker)], cwd=REPO, env=env,
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, errors
    check = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import django
        django.setup()
        from panel.networks.models import Endpoint
        print(" ".join(Endpoint.objects.values_list("ip", flat=True)))
    """)], cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=120)
    ips = check.stdout.split()
    assert len(ips) == len(set(ips)) == workers * per_worker
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.7.0.64/26") for ip in ips)
