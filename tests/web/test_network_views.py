"""The networks page, the run form's Network section and the container page's Network card,
with Django's test client: team isolation, permissions, the create form and its errors,
connect/disconnect, the policy editor, -p lines into Docker's request, port links."""

import pytest
from django import forms

from panel.containers import services as containers
from panel.containers.models import Container
from panel.networks import services as networks
from panel.networks.models import Endpoint, Network, PublishedPort
from panel.teams.models import Membership
from panel.web.run_sections.network import parse_publish

from .conftest import make_user

pytestmark = pytest.mark.django_db

SEED = {"name": "user-network", "driver": "bridge", "scope": "local", "subnet": "10.0.42.0/24",
        "ip_range": "10.0.42.128/25", "labels": "project=dockerinaction\nchapter=5",
        "attachable": "on", "enable_icc": "on"}


def _ipam(subnet, ip_range=""):
    return {"Config": [{"Subnet": subnet, **({"IPRange": ip_range} if ip_range else {})}]}


@pytest.fixture
def blue_net(alice, blue, enqueued):
    return networks.create(acting_user=alice, name="blue-net", team=blue,
                           labels={"tier": "web"}, ipam=_ipam("10.0.42.0/24", "10.0.42.128/25"))


@pytest.fixture
def red_net(mallory, red, enqueued):
    return networks.create(acting_user=mallory, name="red-net", team=red,
                           ipam=_ipam("10.0.43.0/24"))


def _container(user, name, mode, **host_config):
    """A created container (the tests ask for the ``image`` fixture it is made from)."""
    return containers.create(acting_user=user, config={"Image": "busybox:1.29"}, name=name,
                             host_config={"NetworkMode": mode, **host_config})


@pytest.mark.parametrize("url", ["/networks/", "/networks/bridge/"])
def test_network_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_list_shows_the_default_and_the_teams_networks(login, alice, blue_net, red_net):
    content = login(alice).get("/networks/").content.decode()
    for name in ("bridge", "host", "none", "blue-net"):
        assert f'data-network="{name}"' in content, name
    assert "red-net" not in content
    assert "10.0.42.0/24" in content and "10.0.42.128/25" in content and "10.0.42.1" in content
    assert "tier=web" in content
    assert "0 <span class=\"muted\">of 127</span>" in content  # .128-.255 less the broadcast
    assert 'href="/networks/"' in content and 'class="active"' in content  # the nav link


def test_another_teams_network_is_404(login, alice, red_net, image):
    client = login(alice)
    mine = _container(alice, "mine", "bridge")
    assert client.get("/networks/red-net/").status_code == 404
    for action in ("remove", "connect", "disconnect", "policy"):
        response = client.post(f"/networks/red-net/{action}/", {"container": mine.id})
        assert response.status_code == 404, action
    assert client.get("/networks/no-such-network/").status_code == 404
    assert Network.objects.filter(name="red-net").exists()
    assert not Endpoint.objects.filter(network=red_net).exists()


def test_create_the_seeds_network_from_the_form(login, alice, blue, enqueued):
    response = login(alice).post("/networks/", {**SEED, "gateway": "10.0.42.1"})
    assert response.status_code == 302 and response["Location"] == "/networks/user-network/"
    network = Network.objects.get(name="user-network")
    assert (network.team, network.driver, network.scope) == (blue, "bridge", "local")
    assert (network.subnet, network.ip_range, network.gateway) == (
        "10.0.42.0/24", "10.0.42.128/25", "10.0.42.1")
    assert network.labels == {"project": "dockerinaction", "chapter": "5"}
    assert network.attachable and not network.internal
    assert network.options.get(networks.ICC, "true") == "true"
    detail = login(alice).get("/networks/user-network/").content.decode()
    assert "project=dockerinaction" in detail and "10.0.42.128/25" in detail


def test_create_internal_with_icc_off(login, alice, enqueued):
    response = login(alice).post("/networks/", {"name": "quiet", "driver": "bridge",
                                                "scope": "local", "internal": "on"})
    assert response.status_code == 302
    network = Network.objects.get(name="quiet")
    assert network.internal and network.subnet  # a free /24 was picked
    assert network.options[networks.ICC] == "false"


@pytest.mark.parametrize("data, field, words", [
    ({"subnet": "10.0.42.0/33"}, "subnet", "invalid subnet"),
    ({"ip_range": "10.0.50.0/25"}, "ip_range", "no matching subnet for range"),
    ({"gateway": "10.0.99.1"}, "gateway", "no matching subnet for gateway"),
    ({"gateway": "ten"}, "gateway", "invalid gateway address"),
    ({"subnet": "10.0.42.0/25", "ip_range": ""}, "subnet", "Pool overlaps"),
    ({"name": "blue-net"}, "name", "already exists"),
    ({"name": "bad name!"}, "name", "invalid name"),
    ({"labels": "ok=1\n=v"}, "labels", "Line 2"),
])
def test_form_errors_create_nothing(login, alice, blue_net, data, field, words):
    before = set(Network.objects.values_list("name", flat=True))
    response = login(alice).post("/networks/", {**SEED, **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert words in " ".join(errors.get(field, [])), errors
    assert set(Network.objects.values_list("name", flat=True)) == before


def test_remove_in_use_shows_the_services_message(login, alice, blue_net, image):
    client = login(alice)
    _container(alice, "web", "blue-net")
    response = client.post("/networks/blue-net/remove/", follow=True)
    assert "has active endpoints" in response.content.decode()
    assert Network.objects.filter(name="blue-net").exists()
    Container.objects.filter(name="web").delete()
    response = client.post("/networks/blue-net/remove/", follow=True)
    assert "Network blue-net removed." in response.content.decode()
    assert not Network.objects.filter(name="blue-net").exists()


def test_a_viewer_sees_but_cannot_change(login, viewer, blue_net, alice, image):
    web = _container(alice, "web", "blue-net")
    client = login(viewer)
    content = client.get("/networks/blue-net/").content.decode()
    assert "10.0.42.128/25" in content and 'data-container="web"' in content
    assert "Disconnect" not in content and "Save policy" not in content
    assert "/networks/blue-net/remove/" not in content
    response = client.post("/networks/blue-net/disconnect/", {"container": web.id}, follow=True)
    assert "may not operate" in response.content.decode()
    assert Endpoint.objects.filter(network=blue_net, container=web).exists()
    response = client.post("/networks/blue-net/remove/", follow=True)
    assert "may not operate" in response.content.decode()
    assert client.get("/networks/bridge/").status_code == 200  # the defaults: everybody's
    assert "/networks/bridge/remove/" not in client.get("/networks/").content.decode()


def test_detail_connect_and_disconnect(login, alice, blue_net, image):
    client = login(alice)
    _container(alice, "web", "blue-net")
    db = _container(alice, "db", "bridge")
    content = client.get("/networks/blue-net/").content.decode()
    assert 'data-container="web"' in content and "10.0.42.128/24" in content
    assert f'<option value="{db.id}">db (created)</option>' in content  # may be connected
    response = client.post("/networks/blue-net/connect/",
                           {"container": "db", "ip": "10.0.42.200", "aliases": "data, store"})
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(network=blue_net, container=db)
    assert (endpoint.ip, endpoint.ifname, endpoint.aliases) == ("10.0.42.200", "eth1",
                                                               ["data", "store"])
    content = client.get("/networks/blue-net/").content.decode()
    assert "10.0.42.200/24" in content and "data, store" in content
    response = client.post("/networks/blue-net/connect/", {"container": "db"}, follow=True)
    assert "already exists in network blue-net" in response.content.decode()
    other = _container(alice, "other", "bridge")
    response = client.post("/networks/blue-net/connect/",
                           {"container": other.id, "ip": "10.0.42.200"}, follow=True)
    assert "Address already in use: 10.0.42.200" in response.content.decode()
    response = client.post("/networks/blue-net/disconnect/", {"container": db.id}, follow=True)
    assert "Disconnected db from blue-net." in response.content.decode()
    assert not Endpoint.objects.filter(network=blue_net, container=db).exists()


def test_policy_editor_saves_pairs_for_team_admins(login, alice, blue, blue_net, image):
    _container(alice, "web", "blue-net")
    _container(alice, "db", "blue-net")
    content = login(alice).get("/networks/blue-net/").content.decode()
    assert "Save policy" not in content  # an operator: the policy is a team admin's
    response = login(alice).post("/networks/blue-net/policy/", {"src": "web", "dst": "db"},
                                 follow=True)
    assert "may not manage" in response.content.decode()
    admin = make_user("ada", blue, Membership.Role.ADMIN)
    client = login(admin)
    content = client.get("/networks/blue-net/").content.decode()
    assert "Save policy" in content and "<option>web</option>" in content
    response = client.post("/networks/blue-net/policy/", {
        "src": ["web", "db", ""], "dst": ["db", "web", ""], "proto": ["tcp", "", ""],
        "port": ["5432", "", ""]})
    assert response.status_code == 302
    blue_net.refresh_from_db()
    assert blue_net.options[networks.ICC] == "false"  # the icc box was not checked
    assert blue_net.allow == [
        {"src": "web", "dst": "db", "proto": "tcp", "port": 5432},
        {"src": "db", "dst": "web", "proto": None, "port": None}]
    content = client.get("/networks/blue-net/").content.decode()
    assert '<option selected>web</option>' in content and 'value="5432"' in content
    assert "allow list: 2" in client.get("/networks/").content.decode()
    response = client.post("/networks/blue-net/policy/",
                           {"icc": "on", "src": "web", "dst": "db", "port": "99999"}, follow=True)
    assert "invalid port 99999" in response.content.decode()


# ---------------------------------------------------------------- the run form


@pytest.mark.parametrize("text, expected", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("0.0.0.0:8080:8080/tcp", [("8080/tcp", {"HostIp": "0.0.0.0", "HostPort": "8080"})]),
    ("8000-8001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8000"}),
                         ("81/tcp", {"HostIp": "", "HostPort": "8001"})]),
    ("8000-8010:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8010"})]),
    ("[::1]:8080:80", [("80/tcp", {"HostIp": "::1", "HostPort": "8080"})]),
])
def test_publish_lines_are_read_as_the_docker_cli_reads_them(text, expected):
    assert parse_publish(text) == expected


@pytest.mark.parametrize("text, words", [
    ("8080:", "No port specified"), ("x:80", "Invalid hostPort: x"),
    ("8080:eighty", "Invalid containerPort: eighty"), ("1.2.3:80:80", "Invalid ip address"),
    ("8000-8002:80-81", "Invalid ranges specified"), ("80/icmp", "Invalid proto: icmp"),
    ("70000", "Invalid containerPort"),
])
def test_bad_publish_lines(text, words):
    with pytest.raises(forms.ValidationError) as raised:
        parse_publish(text)
    assert words in raised.value.messages[0]


def test_run_form_network_section_reaches_the_request(login, alice, blue_net, image, enqueued):
    client = login(alice)
    content = client.get("/containers/new/").content.decode()
    assert '<details class="advanced" id="network-settings">' in content
    assert '<option value="blue-net">blue-net</option>' in content
    assert '<option value="host">host</option>' in content
    response = client.post("/containers/new/", {
        "image": "busybox:1.29", "name": "web", "network": "blue-net", "ip": "10.0.42.150",
        "aliases": "www, site", "publish": "8080:80\n\n127.0.0.1::53/udp\n", "publish_all": "on",
        "hostname": "web.local", "dns": "8.8.8.8, 1.1.1.1", "add_host": "db.internal:10.0.42.10"})
    assert response.status_code == 302, response.context["form"].errors
    web = Container.objects.get(name="web")
    host_config, config = web.spec["HostConfig"], web.spec["Config"]
    assert host_config["NetworkMode"] == "blue-net"
    assert host_config["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                           "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host_config["PublishAllPorts"] is True
    assert host_config["Dns"] == ["8.8.8.8", "1.1.1.1"]
    assert host_config["ExtraHosts"] == ["db.internal:10.0.42.10"]
    assert config["Hostname"] == "web.local"
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    endpoint = Endpoint.objects.get(container=web)
    assert (endpoint.network, endpoint.ip, endpoint.aliases) == (blue_net, "10.0.42.150",
                                                                ["www", "site"])
    content = client.get("/containers/new/").content.decode()  # web is created, not running
    assert "container:web" not in content


@pytest.mark.parametrize("data, field, words", [
    ({"publish": "80\nnope:80"}, "publish", "Line 2 (nope:80): Invalid hostPort: nope"),
    ({"ip": "10.0.42.999"}, "ip", "invalid IPv4 address"),
    ({"network": "bridge", "ip": "172.31.0.50"}, "ip", "user defined networks only"),
    ({"network": "bridge", "aliases": "www"}, "aliases", "network-scoped alias"),
    ({"network": "red-net"}, "network", "not one of the available choices"),
    ({"hostname": "bad_host!"}, "hostname", "invalid hostname format"),
    ({"dns": "8.8.8.8 dns.google"}, "dns", "dns.google is not an ip address"),
    ({"add_host": "db.internal"}, "add_host", "Line 1: bad format for add-host"),
    ({"links": "nosuch:web"}, "links", "could not get container for nosuch"),
    ({"network": "container:db", "publish": "80"}, "publish", "port publishing and the"),
    ({"network": "container:db", "add_host": "a:1.2.3.4"}, "add_host", "host-to-IP mapping"),
])
def test_run_form_network_errors_land_on_their_field(login, alice, red_net, image, enqueued,
                                                     data, field, words):
    _container(alice, "db", "bridge")
    Container.objects.filter(name="db").update(state="running")  # container:db is offered
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", "name": "app",
                                                      **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert words in " ".join(errors.get(field, [])), errors
    assert not Container.objects.filter(name="app").exists()
    assert '<details class="advanced" id="network-settings" open>' in response.content.decode()


# ---------------------------------------------------------------- container page and list


def test_container_page_and_list_show_the_network_and_port_links(login, alice, blue_net,
                                                                 image):
    web = _container(alice, "web", "blue-net", PortBindings={
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    client = login(alice)
    content = client.get(f"/containers/{web.id}/").content.decode()
    assert 'id="network"' in content and '<a href="/networks/blue-net/">blue-net</a>' in content
    assert "10.0.42.128/24" in content and "10.0.42.1" in content
    assert "held while it runs" in content  # not running: no port yet
    PublishedPort.objects.create(container=web, node=web.node, container_port=80, proto="tcp",
                                 host_ip="", host_port=8080)
    PublishedPort.objects.create(container=web, node=web.node, container_port=53, proto="udp",
                                 host_ip="127.0.0.1", host_port=40053)
    content = client.get(f"/containers/{web.id}/").content.decode()
    assert 'href="http://testserver:8080/"' in content  # the host the browser used
    assert 'href="http://127.0.0.1:40053/"' in content and "0.0.0.0:8080" in content
    listed = client.get("/").content.decode()
    assert '<th>Ports</th>' in listed
    assert 'href="http://testserver:8080/"' in listed and "0.0.0.0:8080</a>-&gt;80/tcp" in listed
    row = client.get(f"/containers/{web.id}/row/").content.decode()
    assert "127.0.0.1:40053</a>-&gt;53/udp" in row


def test_container_page_of_a_host_network_container(login, alice, blue, image):
    blue.allow_host_namespaces = True  # --network host: team policy
    blue.save()
    box = _container(alice, "box", "host")
    content = login(alice).get(f"/containers/{box.id}/").content.decode()
    assert "the node's own network stack" in content


def test_detail_shows_the_nodes_error_of_the_latest_job(login, alice, blue_net):
    from panel.jobs.models import Job

    client = login(alice)
    assert 'id="node-error"' not in client.get("/networks/blue-net/").content.decode()
    Job.objects.filter(target_id=blue_net.id).update(state=Job.State.FAILED,
                                                     error="nft: no such table")
    content = client.get("/networks/blue-net/").content.decode()
    assert "could not apply this network's settings: nft: no such table" in content


def test_the_default_bridge_shows_only_the_users_containers(login, alice, mallory, image):
    _container(alice, "mine", "bridge")
    _container(mallory, "theirs", "bridge")
    content = login(alice).get("/networks/bridge/").content.decode()
    assert 'data-container="mine"' in content and "theirs" not in content
    assert "2 of 65533 addresses in use" in content  # the addresses are the network's
