"""docker push / pull / run against a loopback registry (anonymous), with the real CLI and
docker-py's streamed JSON progress."""

import secrets

IMAGE = "busybox:1.29"


def _repo(registry, label: str) -> str:
    return f"{registry.host}/dyapi-{label}-{secrets.token_hex(3)}"


def _push_copy(cli, registry, label: str) -> str:
    """Tag the base image into a fresh repository of the registry and push it."""
    ref = f"{_repo(registry, label)}:v1"
    assert cli("tag", IMAGE, ref).returncode == 0
    r = cli("push", ref)
    assert r.returncode == 0, r.stderr
    assert "v1: digest: sha256:" in r.stdout, r.stdout
    return ref


def test_push_then_pull_then_run(cli, registry, names):
    ref = _push_copy(cli, registry, "pp")
    base_id = cli("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
    r = cli("rmi", ref)
    assert r.returncode == 0, r.stderr
    assert f"Untagged: {ref}" in r.stdout
    r = cli("pull", ref)
    assert r.returncode == 0, r.stderr
    assert "Pulling from" in r.stdout and "Digest: sha256:" in r.stdout, r.stdout
    assert f"Status: Image is up to date for {ref}" in r.stdout or \
        f"Status: Downloaded newer image for {ref}" in r.stdout, r.stdout
    # the same config: the same image id, and a digest to show for it
    info = cli("image", "inspect", "-f", "{{.Id}} {{json .RepoDigests}}", ref).stdout.split()
    assert info[0] == base_id
    assert f'"{ref.rsplit(":", 1)[0]}@sha256:' in info[1]
    r = cli("run", "--rm", "--name", names("pulled"), ref, "echo", "from-registry")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "from-registry"
    r = cli("pull", ref)
    assert f"Status: Image is up to date for {ref}" in r.stdout, r.stdout
    cli("rmi", ref)


def test_run_pulls_a_missing_image(cli, registry, names):
    ref = _push_copy(cli, registry, "run")
    assert cli("rmi", ref).returncode == 0
    r = cli("run", "--rm", "--name", names("autopull"), ref, "echo", "pulled-by-run")
    assert r.returncode == 0, r.stderr
    assert f"Unable to find image '{ref}' locally" in r.stderr
    assert r.stdout.strip() == "pulled-by-run"
    cli("rmi", ref)


def test_pull_of_a_missing_repository_says_so(cli, registry):
    ref = f"{_repo(registry, 'missing')}:latest"
    r = cli("pull", ref)
    assert r.returncode != 0
    assert ref.rsplit(":", 1)[0] in r.stderr
    assert "does not exist" in r.stderr or "not found" in r.stderr, r.stderr
    assert cli("image", "inspect", ref).returncode != 0


def test_docker_py_pull_streams_progress(cli, docker_client, registry):
    ref = _push_copy(cli, registry, "py")
    repository = ref.rsplit(":", 1)[0]
    # a new tag on the registry's side: push it, forget it locally, pull it with progress
    assert cli("rmi", ref).returncode == 0
    lines = list(docker_client.api.pull(repository, tag="v1", stream=True, decode=True))
    statuses = [line.get("status", "") for line in lines]
    assert any(s.startswith("Pulling from") for s in statuses), lines
    assert statuses[-1].startswith("Status: "), lines
    assert not any("error" in line for line in lines), lines
    image = docker_client.images.get(ref)
    assert ref in image.tags
    docker_client.images.remove(ref)
    # a missing repository: an APIError with the 404 status before any line
    try:
        docker_client.images.pull(f"{repository}-nope", tag="latest")
    except Exception as exc:  # docker.errors.NotFound
        assert getattr(exc, "status_code", None) == 404, exc
    else:
        raise AssertionError("pulling a missing repository succeeded")


def test_docker_py_push_of_all_tags_streams_aux_lines(cli, docker_client, registry):
    repository = _repo(registry, "alltags")
    for tag in ("a", "b"):
        assert cli("tag", IMAGE, f"{repository}:{tag}").returncode == 0
    try:
        lines = list(docker_client.api.push(repository, stream=True, decode=True))
        assert not any("error" in line for line in lines), lines
        assert [line["aux"]["Tag"] for line in lines if "aux" in line] == ["a", "b"]
        digests = {line["aux"]["Digest"] for line in lines if "aux" in line}
        assert len(digests) == 1 and digests.pop().startswith("sha256:")
        # a push of a tag that is not here: a 404 before any line
        try:
            docker_client.api.push(repository, tag="nothere")
        except Exception as exc:
            assert getattr(exc, "status_code", None) == 404, exc
        else:
            raise AssertionError("pushing a missing tag succeeded")
    finally:
        cli("rmi", f"{repository}:a", f"{repository}:b")
