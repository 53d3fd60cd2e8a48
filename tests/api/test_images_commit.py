"""docker commit of a container's changes as a new layer, then run the new image."""

import secrets

IMAGE = "busybox:1.29"


def test_commit_then_run_shows_the_change(cli, names, docker_client):
    name = names("src")
    r = cli("run", "--name", name, IMAGE, "sh", "-c", "echo committed > /state.txt")
    assert r.returncode == 0, r.stderr
    ref = f"dyapi-commit-{secrets.token_hex(3)}:v1"
    r = cli("commit", "-a", "tester", "-m", "added state", "--change", "ENV STAGE=two",
            name, ref)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()
    assert image_id.startswith("sha256:")
    base = docker_client.images.get(IMAGE)
    image = docker_client.images.get(ref)
    assert image.id == image_id
    assert image.attrs["RootFS"]["Layers"][:-1] == base.attrs["RootFS"]["Layers"]
    assert len(image.attrs["RootFS"]["Layers"]) == len(base.attrs["RootFS"]["Layers"]) + 1
    # as dockerd: the message goes to the new history entry, not the image's Comment
    assert image.attrs["Author"] == "tester" and image.attrs["Comment"] == ""
    assert "STAGE=two" in image.attrs["Config"]["Env"]
    r = cli("run", "--rm", "--name", names("run"), ref, "sh", "-c", "cat /state.txt; echo $STAGE")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["committed", "two"]
    r = cli("history", "--format", "{{.CreatedBy}}|{{.Comment}}", ref)
    assert r.stdout.splitlines()[0].endswith("|added state"), r.stdout
    # docker-py: commit with a config body
    container = docker_client.containers.get(name)
    committed = container.commit(repository=ref.split(":")[0], tag="py",
                                 conf={"Cmd": ["echo", "py-commit"]})
    out = docker_client.containers.run(committed.id, remove=True, name=names("py"))
    assert out == b"py-commit\n"
    cli("rmi", ref, f"{ref.split(':')[0]}:py")
