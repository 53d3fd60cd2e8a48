"""docker tag / rmi / image prune / history / inspect / images (-a, dangling) / system df."""

import json
import secrets

IMAGE = "busybox:1.29"


def _ids(cli, *args) -> list[str]:
    r = cli("images", "--no-trunc", "--format", "{{.ID}}", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_tag_inspect_history_and_rmi(cli, names):
    ref = f"dyapi-tag-{secrets.token_hex(3)}"
    r = cli("tag", IMAGE, f"{ref}:one")
    assert r.returncode == 0, r.stderr
    assert cli("tag", IMAGE, f"{ref}:two").returncode == 0
    r = cli("image", "inspect", f"{ref}:one")
    data = json.loads(r.stdout)[0]
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Author",
                "Config", "Architecture", "Os", "Size", "VirtualSize", "RootFS", "Metadata"):
        assert key in data, key
    assert {f"{ref}:one", f"{ref}:two", IMAGE} <= set(data["RepoTags"])
    assert data["RootFS"]["Type"] == "layers" and data["RootFS"]["Layers"]
    r = cli("images", "--format", "{{.Repository}}:{{.Tag}}", ref)
    assert sorted(r.stdout.split()) == [f"{ref}:one", f"{ref}:two"]
    r = cli("history", "--no-trunc", "--format", "{{.ID}} {{.Size}}", f"{ref}:one")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == data["Id"]
    # rmi of one tag of an image with more tags only untags
    r = cli("rmi", f"{ref}:one")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Untagged: {ref}:one"
    assert cli("image", "inspect", IMAGE).returncode == 0
    # a tag of an image that a container uses: -f untags it
    name = names("user")
    assert cli("create", "--name", name, f"{ref}:two", "true").returncode == 0
    r = cli("rmi", "-f", f"{ref}:two")
    assert r.returncode == 0, r.stderr
    assert f"Untagged: {ref}:two" in r.stdout
    r = cli("rmi", "nonexistent-dyapi-image:nope")
    assert r.returncode != 0 and "No such image" in r.stderr


def test_rmi_refuses_an_image_in_use(cli, names, tmp_path):
    # a distinct image (imported) that a container uses
    archive = tmp_path / "fs.tar"
    name = names("exp")
    assert cli("run", "--name", name, IMAGE, "true").returncode == 0
    assert cli("export", "-o", str(archive), name).returncode == 0
    ref = f"dyapi-inuse-{secrets.token_hex(3)}:v1"
    assert cli("import", str(archive), ref).returncode == 0
    user = names("user")
    assert cli("create", "--name", user, ref, "true").returncode == 0
    r = cli("rmi", ref)
    assert r.returncode != 0
    assert "conflict" in r.stderr and "container" in r.stderr, r.stderr
    assert cli("rm", user).returncode == 0
    r = cli("rmi", ref)
    assert r.returncode == 0, r.stderr
    assert f"Untagged: {ref}" in r.stdout and "Deleted: sha256:" in r.stdout


def test_images_all_dangling_and_prune(cli, names, tmp_path):
    label = f"dyapi.prune={secrets.token_hex(3)}"
    src = names("src")
    assert cli("run", "--name", src, IMAGE, "true").returncode == 0
    # a committed child makes its (untagged) parent an intermediate image
    parent_ref = f"dyapi-parent-{secrets.token_hex(3)}:v1"
    r = cli("commit", "--change", f"LABEL {label}", src, parent_ref)
    assert r.returncode == 0, r.stderr
    parent_id = r.stdout.strip()
    child = names("child")
    assert cli("run", "--name", child, parent_ref, "true").returncode == 0
    child_ref = f"dyapi-child-{secrets.token_hex(3)}:v1"
    r = cli("commit", child, child_ref)
    assert r.returncode == 0, r.stderr
    child_id = r.stdout.strip()
    # untagging the parent (used by the child's container: forced) leaves it for its child
    r = cli("rmi", "-f", parent_ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Untagged: {parent_ref}"
    shown, everything = _ids(cli), _ids(cli, "-a")
    assert child_id in shown and child_id in everything
    assert parent_id not in shown, "an intermediate image is listed without -a"
    assert parent_id in everything
    # a dangling image: untagged and nobody's parent
    lone = names("lone")
    assert cli("run", "--name", lone, IMAGE, "true").returncode == 0
    r = cli("commit", "--change", f"LABEL {label}", lone)
    dangling_id = r.stdout.strip()
    assert dangling_id in _ids(cli, "--filter", "dangling=true")
    assert child_id not in _ids(cli, "--filter", "dangling=true")
    r = cli("image", "prune", "-f", "--filter", f"label={label}")
    assert r.returncode == 0, r.stderr
    assert f"deleted: {dangling_id}" in r.stdout, r.stdout
    assert "Total reclaimed space" in r.stdout
    assert dangling_id not in _ids(cli, "-a")
    assert child_id in _ids(cli)
    # -a: unused tagged images too (limited by the label to this test's images)
    assert cli("rm", child).returncode == 0
    r = cli("image", "prune", "-a", "-f", "--filter", f"label={label}")
    assert r.returncode == 0, r.stderr
    assert child_id not in _ids(cli, "-a")
    assert cli("image", "inspect", IMAGE).returncode == 0


def test_system_df(cli, docker_client):
    r = cli("system", "df")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["TYPE", "TOTAL"]
    assert lines[1].startswith("Images")
    df = docker_client.df()
    assert df["LayersSize"] > 0
    base = next(i for i in df["Images"] if IMAGE in i["RepoTags"])
    assert base["Size"] > 0 and base["Containers"] >= 0 and base["SharedSize"] >= 0
    r = cli("system", "df", "-v")
    assert r.returncode == 0, r.stderr
    assert IMAGE.split(":")[0] in r.stdout
