"""Round trips with the real Docker engine: Dockyard's saves load and run in Docker, Docker's
saves load and run in Dockyard, and each pulls what the other pushed to a registry."""

import secrets

import pytest

IMAGE = "busybox:1.29"


def _ok(result):
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    return result


def _out(result) -> str:
    """A docker_engine.cli result's stdout (bytes) as text."""
    return result.stdout.decode()


@pytest.fixture
def shared_ref(cli, docker_engine):
    """A copy of Dockyard's base image under a unique name, removed from both afterwards."""
    ref = f"dyapi-interop-{secrets.token_hex(3)}:v1"
    _ok(cli("tag", IMAGE, ref))
    yield ref
    cli("rmi", "-f", ref)
    docker_engine.cli("rmi", "-f", ref, check=False)


def test_dockyard_save_loads_and_runs_in_docker(cli, docker_engine, shared_ref, tmp_path):
    archive = tmp_path / "from-dockyard.tar"
    _ok(cli("save", "-o", str(archive), shared_ref))
    assert f"Loaded image: {shared_ref}" in _out(docker_engine.cli("load", "-i", str(archive)))
    r = docker_engine.cli("run", "--rm", "--network", "none", shared_ref,
                          "echo", "dockyard-in-docker")
    assert _out(r).strip() == "dockyard-in-docker"


def test_docker_save_loads_and_runs_in_dockyard(cli, names, docker_engine, shared_ref,
                                                tmp_path):
    archive = tmp_path / "base.tar"
    _ok(cli("save", "-o", str(archive), shared_ref))
    docker_engine.cli("load", "-i", str(archive))
    # Docker makes a layer of its own (with a whiteout) and saves it in its format
    container = f"dyapi-docker-{secrets.token_hex(3)}"
    docker_ref = f"dyapi-fromdocker-{secrets.token_hex(3)}:v1"
    try:
        docker_engine.cli("run", "--name", container, "--network", "none", shared_ref, "sh",
                          "-c", "echo made-by-docker > /by-docker && rm /bin/wget")
        docker_engine.cli("commit", container, docker_ref)
        docker_archive = tmp_path / "from-docker.tar"
        docker_engine.cli("save", "-o", str(docker_archive), docker_ref)
        r = _ok(cli("load", "-i", str(docker_archive)))
        assert f"Loaded image: {docker_ref}" in r.stdout
        docker_id = _out(docker_engine.cli("image", "inspect", "-f", "{{.Id}}", docker_ref))
        assert cli("image", "inspect", "-f", "{{.Id}}", docker_ref).stdout == docker_id
        r = _ok(cli("run", "--rm", "--name", names("fromdocker"), docker_ref, "sh", "-c",
                    "cat /by-docker; test -e /bin/wget && echo wget-still-there || echo gone"))
        assert r.stdout.split() == ["made-by-docker", "gone"]
    finally:
        docker_engine.cli("rm", "-f", container, check=False)
        docker_engine.cli("rmi", "-f", docker_ref, check=False)
        cli("rmi", "-f", docker_ref)


def test_registry_round_trip_with_docker(cli, docker_engine, registry):
    ref = f"{registry.host}/dyapi-interop-{secrets.token_hex(3)}:v1"
    again = ref.replace(":v1", ":v2")
    _ok(cli("tag", IMAGE, ref))
    try:
        _ok(cli("push", ref))
        assert "Downloaded newer image" in _out(docker_engine.cli("pull", ref))
        r = docker_engine.cli("run", "--rm", "--network", "none", ref, "echo", "pushed")
        assert _out(r).strip() == "pushed"
        # and the other way: Docker pushes a tag, Dockyard pulls it and runs it
        docker_engine.cli("tag", ref, again)
        docker_engine.cli("push", again)
        r = _ok(cli("pull", again))
        assert f"Status: Downloaded newer image for {again}" in r.stdout
        r = _ok(cli("run", "--rm", again, "echo", "from-docker-push"))
        assert r.stdout.strip() == "from-docker-push"
    finally:
        cli("rmi", "-f", ref)
        cli("rmi", "-f", again)
        docker_engine.cli("rmi", "-f", ref, again, check=False)
