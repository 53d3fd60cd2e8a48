"""Networking through the real docker CLI: the default networks, the seed's user network,
addresses, traffic between containers, published ports, connect/disconnect, cleanup.
Traffic goes only to 127.0.0.1 and to the namespaces these tests made."""

import ipaddress
import json
import re
import secrets
import socket
import subprocess
import time

import pytest

IMAGE = "busybox:1.29"
SEED_NETWORK = "user-network"


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _inspect(cli, *args) -> dict:
    return json.loads(_ok(cli("inspect", *args)))[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http_get(port: int, timeout: float = 20) -> bytes:
    """GET / from 127.0.0.1:<port> on the host, retried until the server answers."""
    deadline = time.monotonic() + timeout
    last = b""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                last = b"".join(chunks)
                if b" 200 " in last.split(b"\r\n", 1)[0]:
                    return last
        except OSError as exc:
            last = str(exc).encode()
        time.sleep(0.3)
    raise AssertionError(f"no answer from 127.0.0.1:{port}: {last!r}")


def _httpd(cli, names, label: str, *run_args) -> tuple[str, str]:
    """A detached busybox httpd serving a unique page; -> (container name, page text)."""
    name, page = names(label), f"hello-{secrets.token_hex(4)}"
    _ok(cli("run", "-d", "--name", name, *run_args, IMAGE, "sh", "-c",
            f"mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www"))
    return name, page


def _ip_addr(cli, name: str) -> str:
    return _ok(cli("exec", name, "ip", "-f", "inet", "-4", "-o", "addr"))


@pytest.fixture(scope="module")
def user_network(live_stack):
    """The seed's command exactly; removed at the end (after the tests' containers)."""
    cli = live_stack.docker_cli
    cli("network", "rm", SEED_NETWORK)
    _ok(cli("network", "create", "--driver", "bridge", "--label", "project=dockerinaction",
            "--label", "chapter=5", "--attachable", "--scope", "local",
            "--subnet", "10.0.42.0/24", "--ip-range", "10.0.42.128/25", SEED_NETWORK))
    yield SEED_NETWORK
    cli("network", "rm", SEED_NETWORK)


def test_default_networks_listed(cli):
    out = _ok(cli("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"))
    assert {"bridge bridge local", "host host local", "none null local"} <= set(
        out.splitlines())


def test_seed_network_inspect(cli, user_network):
    net = json.loads(_ok(cli("network", "inspect", user_network)))[0]
    assert (net["Driver"], net["Scope"], net["Attachable"], net["Internal"]) == (
        "bridge", "local", True, False)
    assert net["Labels"] == {"project": "dockerinaction", "chapter": "5"}
    assert net["IPAM"]["Config"][0]["Subnet"] == "10.0.42.0/24"
    assert net["IPAM"]["Config"][0]["IPRange"] == "10.0.42.128/25"
    r = cli("network", "create", "--subnet", "10.0.42.0/25", "dyoverlap")
    assert r.returncode != 0
    assert "Pool overlaps with other one on this address space" in r.stderr
    r = cli("network", "create", user_network)
    assert f"network with name {user_network} already exists" in r.stderr


def test_run_gets_an_address_from_the_ip_range(cli, names, user_network):
    r = cli("run", "--rm", "--network", user_network, IMAGE, "ip", "-f", "inet", "-4", "-o",
            "addr")
    out = _ok(r)
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == ["lo", "eth0"], out
    assert "inet 127.0.0.1/8" in lines[0]
    address = re.search(r"inet (\S+)/24", lines[1]).group(1)
    assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network("10.0.42.128/25")

    name = names("static")
    _ok(cli("run", "-d", "--name", name, "--network", user_network, "--ip", "10.0.42.10",
            IMAGE, "sleep", "600"))
    settings = _inspect(cli, name)["NetworkSettings"]["Networks"][user_network]
    assert (settings["IPAddress"], settings["IPPrefixLen"], settings["Gateway"]) == (
        "10.0.42.10", 24, "10.0.42.1")
    assert settings["MacAddress"] == "02:42:0a:00:2a:0a"
    assert "inet 10.0.42.10/24" in _ip_addr(cli, name)


def test_container_to_container_by_ip(cli, names, user_network):
    server, page = _httpd(cli, names, "srv", "--network", user_network)
    ip = _inspect(cli, server)["NetworkSettings"]["Networks"][user_network]["IPAddress"]
    out = _ok(cli("run", "--rm", "--network", user_network, IMAGE, "sh", "-c",
                  f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://{ip}/ && "
                  "exit 0; sleep 0.5; done; exit 1"))
    assert out.strip() == page


def test_default_bridge_address_and_published_port_on_loopback(cli, names):
    port = _free_port()
    name, page = _httpd(cli, names, "pub", "-p", f"127.0.0.1:{port}:80")
    info = _inspect(cli, name)["NetworkSettings"]
    assert info["IPAddress"] and info["Networks"]["bridge"]["IPAddress"] == info["IPAddress"]
    assert info["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert page.encode() in _http_get(port)
    ps = _ok(cli("ps", "--filter", f"name={name}", "--format", "{{.Ports}}"))
    assert f"127.0.0.1:{port}->80/tcp" in ps


def test_random_port_and_docker_port(cli, names):
    name, page = _httpd(cli, names, "rnd", "-p", "80")
    out = _ok(cli("port", name))
    match = re.match(r"80/tcp -> 0\.0\.0\.0:(\d+)", out)
    assert match, out
    assert page.encode() in _http_get(int(match.group(1)))
    assert _ok(cli("port", name, "80/tcp")).strip().endswith(f":{match.group(1)}")


def test_publish_all(cli, names):
    name, page = _httpd(cli, names, "all", "--expose", "80", "--expose", "81/udp", "-P")
    ports = _inspect(cli, name)["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "81/udp"}
    assert all(int(binding[0]["HostPort"]) > 1024 for binding in ports.values())
    assert page.encode() in _http_get(int(ports["80/tcp"][0]["HostPort"]))


def test_taken_port_is_a_clear_error_at_start(cli, names):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        name = names("taken")
        r = cli("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", IMAGE, "sleep", "60")
        assert r.returncode != 0
        assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in r.stderr
        assert _inspect(cli, name)["State"]["Status"] == "created"
    # the port is free again: the same container starts
    _ok(cli("start", name))
    assert _inspect(cli, name)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] == str(port)


def test_ports_released_when_the_container_stops(cli, names):
    port = _free_port()
    first, _page = _httpd(cli, names, "one", "-p", f"127.0.0.1:{port}:80")
    _ok(cli("stop", "-t", "1", first))
    assert _inspect(cli, first)["NetworkSettings"]["Ports"] == {}
    second, page = _httpd(cli, names, "two", "-p", f"127.0.0.1:{port}:80")
    assert page.encode() in _http_get(port)


def test_connect_and_disconnect_a_running_container(cli, names, user_network):
    name = names("conn")
    _ok(cli("run", "-d", "--name", name, IMAGE, "sleep", "600"))
    _ok(cli("network", "connect", "--alias", "extra", user_network, name))
    out = _ip_addr(cli, name)
    assert re.search(r"eth1\s+inet 10\.0\.42\.\d+/24", out), out
    nets = _inspect(cli, name)["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", user_network} and "extra" in nets[user_network]["Aliases"]
    r = cli("network", "rm", user_network)
    assert r.returncode != 0
    assert re.search(rf"error while removing network: network {user_network} id \w+ has "
                     "active endpoints", r.stderr), r.stderr
    _ok(cli("network", "disconnect", user_network, name))
    assert "eth1" not in _ip_addr(cli, name)
    assert set(_inspect(cli, name)["NetworkSettings"]["Networks"]) == {"bridge"}


def test_container_network_mode_shares_the_namespace(cli, names):
    base = names("base")
    _ok(cli("run", "-d", "--name", base, IMAGE, "sleep", "600"))
    out = _ok(cli("run", "--rm", "--network", f"container:{base}", IMAGE, "ip", "-f", "inet",
                  "-4", "-o", "addr"))
    assert _inspect(cli, base)["NetworkSettings"]["IPAddress"] in out
    r = cli("run", "--rm", "--network", f"container:{base}", "-p", "80", IMAGE, "true")
    assert "conflicting options: port publishing and the container type network mode" in \
        r.stderr
    none = _ok(cli("run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link"))
    assert [line.split()[1] for line in none.splitlines()] == ["lo:"]


def test_host_network_sees_the_nodes_links(live_stack, cli):
    out = _ok(cli("run", "--rm", "--network", "host", "-p", "80", IMAGE, "ip", "-o", "link"))
    assert f" {live_stack.prefix}0:" in out  # the default bridge, a link of the node


def _links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()
            if line.split(":", 2)[1].strip().startswith(prefix)]


def _rule_tags(table: str) -> set[str]:
    r = subprocess.run(["nft", "-j", "list", "table", "ip", table], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return set()
    return {item["rule"]["comment"].split(":", 1)[1]
            for item in json.loads(r.stdout)["nftables"]
            if "rule" in item and ":" in item["rule"].get("comment", "")}


def test_cleanup_leaves_no_links_and_no_rules(live_stack, cli, names):
    prefix = live_stack.prefix
    table = "dockyard" if prefix == "dy" else f"dockyard-{prefix}"
    net = f"dyclean{secrets.token_hex(2)}"
    _ok(cli("network", "create", "--subnet", "10.0.43.0/24", net))
    network_id = _inspect(cli, "--type", "network", net)["Id"]
    a, b = names("ca"), names("cb")
    _ok(cli("run", "-d", "--name", a, "--network", net, "-p", "80", IMAGE, "sleep", "600"))
    _ok(cli("run", "-d", "--name", b, "-p", "127.0.0.1::80", IMAGE, "sleep", "600"))
    ids = {_inspect(cli, a)["Id"], _inspect(cli, b)["Id"]}
    assert len(_links(prefix + "v")) >= 2
    assert (prefix + "b" + network_id)[:15] in _links(prefix + "b")
    _ok(cli("rm", "-f", a, b))
    _ok(cli("network", "rm", net))
    assert _links(prefix + "v") == []
    assert (prefix + "b" + network_id)[:15] not in _links(prefix + "b")
    leftovers = {tag for tag in _rule_tags(table)
                 if any(i.startswith(tag) or tag.startswith(i) for i in (*ids, network_id))}
    assert leftovers == set()


def test_restart_and_worker_restart_keep_ports_and_remove_strays(live_stack, cli, names):
    prefix = live_stack.prefix
    port = _free_port()
    name, page = _httpd(cli, names, "rec", "-p", f"127.0.0.1:{port}:80")
    _ok(cli("restart", "-t", "1", name))
    assert page.encode() in _http_get(port)
    stray = f"{prefix}b{secrets.token_hex(4)}"  # a bridge of no network
    subprocess.run(["ip", "link", "add", stray, "type", "bridge"], check=True)
    try:
        live_stack.restart_worker()
        assert stray not in _links(prefix)
        assert page.encode() in _http_get(port)
        assert _inspect(cli, name)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] == \
            str(port)
    finally:
        subprocess.run(["ip", "link", "delete", stray], capture_output=True)


def test_ls_filters_and_prune(cli, names, user_network):
    tag = f"dyprune{secrets.token_hex(2)}"
    _ok(cli("network", "create", "--label", f"sweep={tag}", f"{tag}-idle"))
    _ok(cli("network", "create", "--label", f"sweep={tag}", f"{tag}-used"))
    user = names("p")
    _ok(cli("run", "-d", "--name", user, "--network", f"{tag}-used", IMAGE, "sleep", "600"))
    listed = _ok(cli("network", "ls", "--filter", f"label=sweep={tag}", "--format", "{{.Name}}"))
    assert sorted(listed.split()) == [f"{tag}-idle", f"{tag}-used"]
    assert _ok(cli("network", "ls", "--filter", "label=project=dockerinaction", "--format",
                   "{{.Name}}")).split() == [user_network]
    out = _ok(cli("network", "prune", "-f", "--filter", f"label=sweep={tag}"))
    assert f"{tag}-idle" in out and f"{tag}-used" not in out
    assert _ok(cli("network", "ls", "-q", "--filter", f"name={tag}")).split() != []
    _ok(cli("rm", "-f", user))
    _ok(cli("network", "rm", f"{tag}-used"))
