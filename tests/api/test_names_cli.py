"""Names and DNS through the real docker CLI: the embedded resolver on a user network (names,
--network-alias, short ids; busybox httpd + wget), --link web:web on the default bridge
(/etc/hosts and the link variables), --dns/--dns-search/--dns-option in /etc/resolv.conf
(8.8.8.8 is written, never queried), --add-host and --hostname."""

import contextlib
import json
import secrets

import pytest

from tests.dnsfake import LoopbackDNS

IMAGE = "busybox:1.29"
SERVE = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && httpd -f -p 80 -h /www"

pytestmark = pytest.mark.timeout(300)


def _ok(r):
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


@pytest.fixture
def user_network(cli, names, docker_client):
    """A user network with a subnet of its own; its containers and it go afterwards."""
    name = f"{names.prefix}-net"
    subnet = f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(250)}.0/24"
    _ok(cli("network", "create", "--driver", "bridge", "--subnet", subnet, name))
    yield name
    for container in docker_client.containers.list(all=True):
        if container.name.startswith(names.prefix):
            with contextlib.suppress(Exception):
                container.remove(force=True)
    cli("network", "rm", name)


def _ip(cli, name, network):
    return json.loads(_ok(cli("inspect", name)))[0]["NetworkSettings"]["Networks"][network][
        "IPAddress"]


@pytest.fixture
def forwarder():
    server = LoopbackDNS()
    yield server
    server.close()


def test_containers_on_a_user_network_reach_each_other_by_name(cli, names, user_network,
                                                               forwarder):
    web = names("web")
    # its --dns is a server of this test on the host's loopback: what the resolver does not
    # know goes there (from the worker's namespace), never outside
    web_id = _ok(cli("run", "-d", "--name", web, "--network", user_network, "--dns",
                     forwarder.address, "--network-alias", "www", IMAGE, "sh", "-c",
                     SERVE)).strip()
    client = ["run", "--rm", "--network", user_network, IMAGE]
    out = _ok(cli(*client, "sh", "-c",
                  f"cat /etc/resolv.conf; wget -qO- http://{web}/; wget -qO- http://www/; "
                  f"wget -qO- http://{web_id[:12]}/; wget -qO- http://www.{user_network}/"))
    assert out.startswith("nameserver 127.0.0.11\n"), out
    assert "options ndots:0\n" in out and "# ExtServers: [" in out
    assert out.count(f"hello from {web_id[:12]}") == 4, out
    assert _ip(cli, web, user_network) in _ok(cli(*client, "nslookup", "www"))

    # a second container joins: the first one resolves it too (its view was updated)
    other = names("other")
    _ok(cli("run", "-d", "--name", other, "--network", user_network, IMAGE, "sh", "-c", SERVE))
    out = _ok(cli("exec", web, "wget", "-qO-", f"http://{other}/"))
    assert out.startswith("hello from"), out
    assert "192.0.2.7" in _ok(cli("exec", web, "nslookup", "example.test"))
    assert other not in forwarder.asked and "example.test" in forwarder.asked
    # once it is gone, its name is not known here any more: the forwarder is asked
    _ok(cli("rm", "-f", other))
    r = cli("exec", web, "nslookup", other)
    assert "NXDOMAIN" in r.stdout + r.stderr and other in forwarder.asked


def test_default_bridge_resolves_links_only(cli, names):
    web = names("web")
    web_id = _ok(cli("run", "-d", "--name", web, "--expose", "80", "--env", "COLOR=blue",
                     IMAGE, "sh", "-c", SERVE)).strip()
    web_ip = _ip(cli, web, "bridge")
    test = names("web_test")
    out = _ok(cli("run", "--name", test, "--link", f"{web}:web", IMAGE, "sh", "-c",
                  "cat /etc/resolv.conf; cat /etc/hosts; env; wget -qO- http://web/"))
    assert "127.0.0.11" not in out
    assert f"{web_ip}\tweb {web_id[:12]} {web}\n" in out, out
    env = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("WEB_"))
    assert env["WEB_PORT"] == f"tcp://{web_ip}:80"
    assert env["WEB_PORT_80_TCP"] == f"tcp://{web_ip}:80"
    assert env["WEB_PORT_80_TCP_ADDR"] == web_ip and env["WEB_PORT_80_TCP_PORT"] == "80"
    assert env["WEB_PORT_80_TCP_PROTO"] == "tcp"
    assert env["WEB_NAME"] == f"/{test}/web" and env["WEB_ENV_COLOR"] == "blue"
    assert f"hello from {web_id[:12]}" in out

    # Docker refuses to start a container whose link target does not run
    _ok(cli("stop", "-t", "0", web))
    r = cli("start", test)
    assert r.returncode != 0 and "Cannot link to a non running container" in r.stderr, r.stderr


def test_dns_flags_land_in_resolv_conf(cli, names, user_network):
    flags = ["--dns", "8.8.8.8", "--dns-search", "example.com", "--dns-option", "ndots:2"]
    out = _ok(cli("run", "--rm", *flags, IMAGE, "cat", "/etc/resolv.conf"))
    assert out == "nameserver 8.8.8.8\nsearch example.com\noptions ndots:2\n", out
    name = names("dns")
    out = _ok(cli("run", "--name", name, "--network", user_network, *flags, IMAGE,
                  "cat", "/etc/resolv.conf"))
    assert out.startswith("nameserver 127.0.0.11\nsearch example.com\noptions ndots:2\n"), out
    assert "# ExtServers: [8.8.8.8]\n" in out and "# Option ndots from: config\n" in out
    host_config = json.loads(_ok(cli("inspect", name)))[0]["HostConfig"]
    assert host_config["Dns"] == ["8.8.8.8"] and host_config["DnsSearch"] == ["example.com"]
    assert host_config["DnsOptions"] == ["ndots:2"]


def test_add_host_and_hostname(cli, names):
    name = names("named")
    out = _ok(cli("run", "--name", name, "--hostname", "myhost", "--add-host", "db.local:10.1.2.3",
                  IMAGE, "sh", "-c",
                  "hostname; cat /etc/hostname; cat /etc/hosts; ip -4 -o addr show eth0"))
    lines = out.splitlines()
    ip = lines[-1].split()[3].split("/")[0]
    assert lines[:2] == ["myhost", "myhost"], out
    assert "10.1.2.3\tdb.local" in lines and f"{ip}\tmyhost" in lines, out
    assert lines.index("10.1.2.3\tdb.local") < lines.index(f"{ip}\tmyhost")
    assert json.loads(_ok(cli("inspect", name)))[0]["HostConfig"]["ExtraHosts"] == [
        "db.local:10.1.2.3"]
    r = cli("run", "--rm", "--add-host", "db.local:nonsense", IMAGE, "true")
    assert r.returncode != 0 and "invalid IP address" in r.stderr


def test_names_resolve_again_after_a_worker_restart(cli, names, user_network, live_stack):
    web, client = names("web"), names("client")
    _ok(cli("run", "-d", "--name", web, "--network", user_network, IMAGE, "sh", "-c", SERVE))
    _ok(cli("run", "-d", "--name", client, "--network", user_network, IMAGE, "sleep", "600"))
    assert _ok(cli("exec", client, "wget", "-qO-", f"http://{web}/")).startswith("hello")
    live_stack.restart_worker()  # its resolver went with it; the new one re-attaches
    assert _ok(cli("exec", client, "wget", "-qO-", f"http://{web}/")).startswith("hello")


def test_connect_and_disconnect_rewrite_the_files_of_a_running_container(cli, names,
                                                                         user_network):
    web, client = names("web"), names("client")
    _ok(cli("run", "-d", "--name", web, "--network", user_network, IMAGE, "sh", "-c", SERVE))
    _ok(cli("run", "-d", "--name", client, "--hostname", "cl", IMAGE, "sleep", "600"))
    assert "127.0.0.11" not in _ok(cli("exec", client, "cat", "/etc/resolv.conf"))

    _ok(cli("network", "connect", "--alias", "cli", user_network, client))
    ip = _ip(cli, client, user_network)
    assert f"{ip}\tcl\n" in _ok(cli("exec", client, "cat", "/etc/hosts"))
    resolv = _ok(cli("exec", client, "cat", "/etc/resolv.conf"))
    assert resolv.startswith("nameserver 127.0.0.11\n"), resolv
    assert _ok(cli("exec", client, "wget", "-qO-", f"http://{web}/")).startswith("hello")
    assert ip in _ok(cli("exec", web, "nslookup", "cli"))  # its alias, seen from web

    _ok(cli("network", "disconnect", user_network, client))
    assert f"{ip}\tcl\n" not in _ok(cli("exec", client, "cat", "/etc/hosts"))
    assert "127.0.0.11" not in _ok(cli("exec", client, "cat", "/etc/resolv.conf"))
