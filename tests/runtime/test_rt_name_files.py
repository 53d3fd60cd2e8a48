"""/etc/hosts and /etc/resolv.conf as Docker writes them (workers/runtime/container.py), and
their rewrite in place when a start brings new addresses or links."""

import os
import secrets

import pytest

from workers.runtime.container import hosts_file, resolv_conf
from workers.runtime.spec import ContainerSpec, SpecError, validate

DEFAULTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\t"
            "ip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\t"
            "ip6-allrouters\n")


def spec(**kw):
    return ContainerSpec(id=secrets.token_hex(32), name="c", layers=["/"], args=["true"], **kw)


@pytest.fixture
def host_resolv(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text("# host\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\n"
                    "options edns0\n")
    return str(path)


def test_hosts_file_order_links_and_own_addresses():
    s = spec(hostname="web", extra_hosts=["db.local:10.1.2.3"], addresses=["172.31.0.5"],
             links=[{"ip": "172.31.0.2", "names": ["db", "1a2b3c4d5e6f", "my-db"]}])
    assert hosts_file(s) == DEFAULTS + ("10.1.2.3\tdb.local\n172.31.0.2\tdb 1a2b3c4d5e6f my-db\n"
                                        "172.31.0.5\tweb\n")
    assert hosts_file(spec(hostname="alone")) == DEFAULTS + "127.0.1.1\talone\n"
    assert hosts_file(spec(hostname="web.example.com", addresses=["10.0.0.5"])).endswith(
        "10.0.0.5\tweb.example.com web\n")


def test_host_network_gets_the_hosts_files(tmp_path, host_resolv):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.9 node\n")
    s = spec(netns="host")
    assert hosts_file(s, str(hosts)) == hosts.read_text()
    assert resolv_conf(s, host_resolv) == open(host_resolv).read()
    assert "10.1.2.3\tdb" in hosts_file(spec(netns="host", extra_hosts=["db:10.1.2.3"]))


def test_default_bridge_resolv_conf(host_resolv):
    assert resolv_conf(spec(), host_resolv) == (
        "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n")
    assert resolv_conf(spec(dns=["8.8.8.8"], dns_search=["example.com"],
                            dns_options=["ndots:2"]), host_resolv) == (
        "nameserver 8.8.8.8\nsearch example.com\noptions ndots:2\n")


def test_user_network_resolv_conf(host_resolv):
    assert resolv_conf(spec(embedded_dns=True), host_resolv) == (
        "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n\n"
        f"# Based on host file: '{host_resolv}' (internal resolver)\n"
        "# ExtServers: [host(127.0.0.53) host(10.0.0.2)]\n# Overrides: []\n"
        "# Option ndots from: internal\n")
    out = resolv_conf(spec(embedded_dns=True, dns=["8.8.8.8"], dns_options=["ndots:2"]),
                      host_resolv)
    assert out.startswith("nameserver 127.0.0.11\nsearch corp.example\noptions ndots:2\n\n")
    assert "# ExtServers: [8.8.8.8]\n# Overrides: [nameservers options]\n" in out
    assert out.endswith("# Option ndots from: config\n")


@pytest.mark.parametrize("bad", [
    {"addresses": ["nonsense"]},
    {"links": [{"ip": "10.0.0.1"}]},
    {"links": [{"ip": "10.0.0.1", "names": ["two words"]}]},
    {"embedded_dns": "yes"},
])
def test_invalid_name_fields_are_refused(bad):
    with pytest.raises(SpecError):
        validate(spec(**bad))


def test_a_start_with_new_addresses_rewrites_the_files_in_place(rt_plain, image):
    s = ContainerSpec(id=secrets.token_hex(32), name="c", layers=image["layers"],
                      args=["true"], addresses=["10.0.0.5"])
    cdir = rt_plain.create(s)
    inode = os.stat(os.path.join(cdir, "hosts")).st_ino
    s.addresses = ["10.0.0.6"]
    s.links = [{"ip": "10.0.0.7", "names": ["web"]}]
    s.env = ["WEB_PORT=tcp://10.0.0.7:80"]
    rt_plain.create(s)
    with open(os.path.join(cdir, "hosts")) as f:
        text = f.read()
    assert "10.0.0.7\tweb\n" in text and text.endswith(f"10.0.0.6\t{s.hostname}\n")
    assert os.stat(os.path.join(cdir, "hosts")).st_ino == inode  # bind mounts keep seeing it


@pytest.fixture
def rt_plain(runtime_factory):
    return runtime_factory(launcher=False)
