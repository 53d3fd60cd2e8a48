"""docker save | docker load round trip (CLI and docker-py), then run the loaded image."""

import io
import json
import secrets
import tarfile

IMAGE = "busybox:1.29"


def test_save_rmi_load_run(cli, names, tmp_path):
    ref = f"dyapi-save-{secrets.token_hex(3)}:v1"
    assert cli("tag", IMAGE, ref).returncode == 0
    image_id = cli("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    archive = tmp_path / "saved.tar"
    r = cli("save", "-o", str(archive), ref)
    assert r.returncode == 0, r.stderr
    with tarfile.open(archive) as tar:
        members = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
    assert {"manifest.json", "index.json", "oci-layout"} <= members
    assert manifest[0]["RepoTags"] == [ref]
    assert cli("rmi", ref).returncode == 0
    r = cli("load", "-i", str(archive))
    assert r.returncode == 0, r.stderr
    assert f"Loaded image: {ref}" in r.stdout, r.stdout
    assert cli("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == image_id
    r = cli("run", "--rm", "--name", names("loaded"), ref, "echo", "loaded-ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "loaded-ok"
    # through stdin, as `docker save x | docker load`
    r = cli("load", input=archive.read_bytes(), text=False)
    assert r.returncode == 0, r.stderr
    assert f"Loaded image: {ref}".encode() in r.stdout
    cli("rmi", ref)


def test_docker_py_save_and_load(docker_client):
    ref = f"dyapi-pysave-{secrets.token_hex(3)}:v1"
    base = docker_client.images.get(IMAGE)
    base.tag(ref)
    data = b"".join(docker_client.images.get(ref).save(named=ref))
    docker_client.images.remove(ref)
    loaded = docker_client.images.load(data)
    assert [image.id for image in loaded] == [base.id]
    assert ref in docker_client.images.get(ref).tags
    # an untagged save loads as an image id
    untagged = b"".join(docker_client.api.get_image(base.id))
    with tarfile.open(fileobj=io.BytesIO(untagged)) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["Config"]
    docker_client.images.remove(ref)


def test_load_of_a_broken_archive_fails(cli):
    r = cli("load", input=b"this is not a tar archive" * 100, text=False)
    assert r.returncode != 0
    assert b"Error" in r.stderr or b"error" in r.stderr
