"""Storage through the real docker CLI and docker-py: bind mounts, tmpfs, volumes, policy."""

import json
import os
import secrets
import shutil
import tempfile

import docker
import pytest

IMAGE = "busybox:1.29"


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def vols(cli):
    """A factory of unique volume names; each is removed (with its users) afterwards."""
    prefix = f"dyvol{secrets.token_hex(3)}"
    made = []

    def make(label="v"):
        name = f"{prefix}-{label}"
        made.append(name)
        return name

    yield make
    for name in made:
        cli("volume", "rm", "-f", name)


@pytest.fixture
def host_dir():
    path = tempfile.mkdtemp(prefix="dy-test-vol-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _mounts(cli, name):
    return json.loads(_ok(cli("inspect", "--format", "{{json .Mounts}}", name)))


def test_seed_bind_mounts_nginx_like(cli, names, host_dir):
    conf = os.path.join(host_dir, "default.conf")
    with open(conf, "w") as f:
        f.write("server {}\n")
    log = os.path.join(host_dir, "example.log")
    open(log, "w").close()
    name = names("diaweb")
    script = ("cat /etc/nginx/conf.d/default.conf; echo 'GET / 200' >> "
              "/var/log/nginx/custom.host.access.log; echo x > /etc/nginx/conf.d/default.conf")
    r = cli("run", "--name", name,
            "--mount", f"type=bind,src={conf},dst=/etc/nginx/conf.d/default.conf,readonly=true",
            "--mount", f"type=bind,src={log},dst=/var/log/nginx/custom.host.access.log",
            IMAGE, "sh", "-c", script)
    assert r.returncode == 1
    assert r.stdout == "server {}\n"
    assert "Read-only file system" in r.stderr
    assert open(log).read() == "GET / 200\n"
    assert open(conf).read() == "server {}\n"
    mounts = _mounts(cli, name)
    assert mounts[0] == {"Type": "bind", "Source": conf,
                         "Destination": "/etc/nginx/conf.d/default.conf", "Mode": "",
                         "RW": False, "Propagation": "rprivate"}
    assert mounts[1]["RW"] is True


def test_bind_flags_and_missing_source(cli, names, host_dir):
    missing = os.path.join(host_dir, "missing")
    r = cli("run", "--rm", "--mount", f"type=bind,src={missing},dst=/x", IMAGE, "true")
    assert r.returncode != 0
    assert f'invalid mount config for type "bind": bind source path does not exist: ' \
           f"{missing}" in r.stderr
    # -v makes a missing host directory, as Docker 20+ does; :ro refuses writes
    made = os.path.join(host_dir, "made")
    _ok(cli("run", "--rm", "-v", f"{made}:/data", IMAGE, "sh", "-c", "echo hi > /data/f"))
    assert open(os.path.join(made, "f")).read() == "hi\n"
    r = cli("run", "--rm", "-v", f"{made}:/data:ro", IMAGE, "sh", "-c", "echo x > /data/f")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = cli("run", "--rm", "-v", f"{made}:/data:bogus", IMAGE, "true")
    assert r.returncode != 0 and "invalid mode: bogus" in r.stderr


def test_seed_tmpfs(cli, names):
    out = _ok(cli("run", "--rm", "--mount", "type=tmpfs,dst=/tmp", "--entrypoint", "mount",
                  IMAGE))
    assert "tmpfs on /tmp type tmpfs (rw,nosuid,nodev,noexec,relatime)" in out.splitlines()
    out = _ok(cli("run", "--rm", "--mount", "type=tmpfs,dst=/cache,tmpfs-size=2m,tmpfs-mode=700",
                  "--tmpfs", "/run:exec,size=64k", IMAGE, "sh", "-c",
                  "grep -E ' /(cache|run) ' /proc/mounts; stat -c %a /cache"))
    assert out.splitlines() == [
        "tmpfs /cache tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k,mode=700 0 0",
        "tmpfs /run tmpfs rw,nosuid,nodev,relatime,size=64k 0 0",
        "700"]
    name = names("tmpfs")
    _ok(cli("create", "--name", name, "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/u", IMAGE))
    assert _mounts(cli, name) == [{"Type": "tmpfs", "Source": "", "Destination": "/t",
                                   "Mode": "", "RW": True, "Propagation": ""}]


def test_seed_named_volume(cli, names, vols, live_stack):
    vol = vols("cass-shared")
    assert _ok(cli("volume", "create", "--driver", "local", "--label", "example=cassandra",
                   vol)).strip() == vol
    info = json.loads(_ok(cli("volume", "inspect", vol)))[0]
    assert info["Name"] == vol and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"example": "cassandra"}
    assert info["Mountpoint"] == f"{live_stack.state_root}/volumes/{vol}/_data"
    assert os.path.isdir(info["Mountpoint"])
    listed = lambda *f: _ok(cli("volume", "ls", "-q", *f)).split()  # noqa: E731
    assert vol in listed("--filter", "label=example=cassandra")
    assert vol not in listed("--filter", "label=example=other")
    assert vol in listed("--filter", f"name={vol[:10]}", "--filter", "driver=local")
    assert vol in listed("--filter", "dangling=true")
    c1 = names("cass1")
    _ok(cli("run", "--name", c1, "--volume", f"{vol}:/var/lib/cassandra/data", IMAGE, "sh",
            "-c", "echo row1 > /var/lib/cassandra/data/t"))
    assert vol not in listed("--filter", "dangling=true")
    assert _mounts(cli, c1)[0]["Name"] == vol
    r = cli("volume", "rm", vol)
    assert r.returncode != 0 and f"remove {vol}: volume is in use" in r.stderr
    assert cli("volume", "rm", "-f", vol).returncode != 0  # force does not override in use
    _ok(cli("rm", c1))
    # the data outlives the container; another one sees it
    assert _ok(cli("run", "--rm", "-v", f"{vol}:/d", IMAGE, "cat", "/d/t")) == "row1\n"
    _ok(cli("volume", "rm", vol))
    assert not os.path.exists(info["Mountpoint"])
    r = cli("volume", "inspect", vol)
    assert r.returncode != 0 and "no such volume" in r.stderr


def test_copy_up_from_the_image(cli, vols):
    vol = vols("etc")
    assert _ok(cli("run", "--rm", "-v", f"{vol}:/etc", IMAGE, "head", "-1",
                   "/etc/passwd")).startswith("root:")
    # the volume kept the image's files (seen without copy-up elsewhere)
    out = _ok(cli("run", "--rm", "--mount", f"type=volume,src={vol},dst=/x,volume-nocopy",
                  IMAGE, "stat", "-c", "%a %U %n", "/x/passwd"))
    assert out == "644 root /x/passwd\n"
    empty = vols("nocopy")
    out = _ok(cli("run", "--rm", "--mount", f"type=volume,src={empty},dst=/etc,volume-nocopy",
                  IMAGE, "ls", "/etc"))
    assert "passwd" not in out.split()


def test_anonymous_volumes_rm_v_and_prune(cli, names, vols, docker_client):
    keep = vols("named")
    _ok(cli("volume", "create", keep))
    a, b = names("anon-a"), names("anon-b")
    _ok(cli("create", "--name", a, "-v", "/data", IMAGE))
    _ok(cli("create", "--name", b, "-v", "/data", IMAGE))
    anon_a, anon_b = _mounts(cli, a)[0], _mounts(cli, b)[0]
    assert anon_a["Type"] == "volume" and len(anon_a["Name"]) == 64
    assert anon_a["Destination"] == "/data" and anon_a["RW"] is True
    listed = _ok(cli("volume", "ls", "-q")).split()
    assert anon_a["Name"] in listed and anon_b["Name"] in listed
    _ok(cli("rm", "-v", a))
    assert anon_a["Name"] not in _ok(cli("volume", "ls", "-q")).split()
    assert not os.path.exists(anon_a["Source"])
    _ok(cli("rm", b))  # without -v the volume stays, unused
    assert anon_b["Name"] in _ok(cli("volume", "ls", "-q", "--filter", "dangling=true")).split()
    # prune: anonymous volumes by default (Docker 23+), named ones only with all=true
    pruned = docker_client.volumes.prune()
    assert anon_b["Name"] in pruned["VolumesDeleted"]
    assert keep in _ok(cli("volume", "ls", "-q")).split()
    pruned = docker_client.volumes.prune(filters={"all": "true", "label": "nosuchlabel"})
    assert not pruned["VolumesDeleted"]
    # the CLI speaks API 1.41, where --all does not exist: named ones go with a filter
    labelled = vols("labelled")
    _ok(cli("volume", "create", "--label", f"prune={labelled}", labelled))
    out = _ok(cli("volume", "prune", "-f", "--filter", "all=true", "--filter",
                  f"label=prune={labelled}"))
    assert labelled in out.split()
    assert labelled not in _ok(cli("volume", "ls", "-q")).split()
    assert cli("volume", "rm", "-f", labelled).returncode == 0  # -f: missing is no error
    # --rm removes the anonymous volumes too
    c = names("anon-rm")
    before = set(_ok(cli("volume", "ls", "-q")).split())
    _ok(cli("run", "--rm", "--name", c, "-v", "/scratch", IMAGE, "true"))
    assert set(_ok(cli("volume", "ls", "-q")).split()) <= before


def test_volumes_from(cli, names, vols):
    vol = vols("shared")
    donor = names("donor")
    _ok(cli("run", "-d", "--name", donor, "-v", f"{vol}:/shared", IMAGE, "sh", "-c",
            "for i in $(seq 200); do test -f /shared/msg && exit 0; sleep 0.05; done; "
            "exit 3"))
    reader = names("reader")
    r = cli("run", "--name", reader, "--volumes-from", f"{donor}:ro", IMAGE, "sh", "-c",
            "ls /shared; echo x > /shared/nope")
    assert r.returncode == 1 and "Read-only file system" in r.stderr
    mount = _mounts(cli, reader)[0]
    assert (mount["Name"], mount["Destination"], mount["RW"]) == (vol, "/shared", False)
    # a write of one container is seen by the other at once
    _ok(cli("run", "--rm", "--volumes-from", donor, IMAGE, "sh", "-c", "echo hi > /shared/msg"))
    assert _ok(cli("wait", donor)).strip() == "0"


def test_data_survives_worker_restart(cli, vols, live_stack):
    vol = vols("durable")
    _ok(cli("run", "--rm", "-v", f"{vol}:/d", IMAGE, "sh", "-c", "echo kept > /d/f"))
    live_stack.restart_worker()
    assert _ok(cli("run", "--rm", "-v", f"{vol}:/d", IMAGE, "cat", "/d/f")) == "kept\n"


def test_local_driver_tmpfs_volume(cli, vols, live_stack):
    vol = vols("mem")
    _ok(cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m",
            vol))
    out = _ok(cli("run", "--rm", "-v", f"{vol}:/m", IMAGE, "sh", "-c",
                  "grep ' /m ' /proc/mounts; echo 1 > /m/f"))
    assert out.startswith("tmpfs /m tmpfs rw,relatime,size=1024k")
    data = f"{live_stack.state_root}/volumes/{vol}/_data"
    assert os.path.ismount(data)
    r = cli("volume", "create", "-o", "type=nfs", "-o", "device=:/x", vols("nfs"))
    assert r.returncode != 0 and "not supported" in r.stderr
    _ok(cli("volume", "rm", vol))
    assert not os.path.exists(data)


@pytest.fixture(scope="module")
def plain_token(live_stack):
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership, Team\n"
        "u, _ = get_user_model().objects.get_or_create(username='volplain')\n"
        "t, _ = Team.objects.get_or_create(name='volteam')\n"
        "Membership.objects.get_or_create(user=u, team=t, role=Membership.Role.OPERATOR)\n"))
    return live_stack.create_token("volplain")


def test_host_binds_are_for_site_admins(cli, names, vols, host_dir, plain_token):
    name = names("refused")
    before = set(_ok(cli("volume", "ls", "-q")).split())
    for flags in (["-v", f"{host_dir}:/h", "-v", "/anon"],
                  ["--mount", f"type=bind,src={host_dir},dst=/h"]):
        r = cli("run", "--name", name, *flags, IMAGE, "true", token=plain_token)
        assert r.returncode != 0
        assert f"bind mount of host path {host_dir}: the policy of team " in r.stderr
    assert name not in _ok(cli("ps", "-a", "--format", "{{.Names}}")).split()
    assert set(_ok(cli("volume", "ls", "-q")).split()) == before  # nothing created
    r = cli("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={host_dir}",
            vols("hostdir"), token=plain_token)
    assert r.returncode != 0 and "does not allow bind mounts of host paths" in r.stderr
    # named volumes and tmpfs are fine for them
    vol = vols("plain")
    out = _ok(cli("run", "--rm", "-v", f"{vol}:/d", "--tmpfs", "/t", IMAGE, "sh", "-c",
                  "echo ok > /d/f; cat /d/f", token=plain_token))
    assert out == "ok\n"


def test_docker_py(docker_client, vols, names):
    name = vols("py")
    volume = docker_client.volumes.create(name, driver="local", labels={"k": "v"})
    assert volume.attrs["Labels"] == {"k": "v"}
    assert docker_client.volumes.get(name).attrs["Mountpoint"].endswith(f"/{name}/_data")
    assert [v.name for v in docker_client.volumes.list(filters={"label": "k=v"})
            if v.name == name] == [name]
    out = docker_client.containers.run(IMAGE, ["sh", "-c", "echo py > /v/f; cat /v/f"],
                                       volumes={name: {"bind": "/v", "mode": "rw"}},
                                       name=names("py"), remove=True)
    assert out == b"py\n"
    volume.remove()
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(name)
