"""docker export of a container's filesystem, and docker import of it with --change."""

import io
import secrets
import tarfile

IMAGE = "busybox:1.29"


def test_export_then_import_with_change_and_run(cli, names, tmp_path):
    name = names("exp")
    r = cli("run", "--name", name, IMAGE, "sh", "-c", "echo exported > /marker.txt")
    assert r.returncode == 0, r.stderr
    archive = tmp_path / "rootfs.tar"
    r = cli("export", "-o", str(archive), name)
    assert r.returncode == 0, r.stderr
    with tarfile.open(archive) as tar:
        names_in = {n.removeprefix("./") for n in tar.getnames()}
        assert "marker.txt" in names_in
        assert "bin/busybox" in names_in
        marker = next(m for m in tar.getmembers() if m.name.removeprefix("./") == "marker.txt")
        assert tar.extractfile(marker).read() == b"exported\n"
    ref = f"dyapi-import-{secrets.token_hex(3)}:v1"
    r = cli("import", "--change", 'CMD ["echo","hi"]', "-m", "from a test", str(archive), ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("sha256:")
    r = cli("image", "inspect", "-f", "{{json .Config.Cmd}} {{.Comment}}", ref)
    assert r.stdout.strip() == '["echo","hi"] from a test'
    r = cli("run", "--rm", "--name", names("imp"), ref)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hi"
    r = cli("run", "--rm", "--name", names("imp2"), ref, "cat", "/marker.txt")
    assert r.stdout.strip() == "exported"
    cli("rmi", ref)


def test_import_from_stdin_and_a_bad_change(cli, names):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        body = b"hello from stdin\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    ref = f"dyapi-stdin-{secrets.token_hex(3)}"
    r = cli("import", "-", ref, input=data.getvalue(), text=False)
    assert r.returncode == 0, r.stderr
    r = cli("image", "inspect", "-f", "{{len .RootFS.Layers}}", f"{ref}:latest")
    assert r.stdout.strip() == "1"
    r = cli("import", "--change", "FROM busybox", "-", ref, input=data.getvalue(), text=False)
    assert r.returncode != 0
    assert b"Error" in r.stderr
    cli("rmi", f"{ref}:latest")


def test_export_of_a_missing_container_is_404(cli, tmp_path):
    r = cli("export", "-o", str(tmp_path / "x.tar"), f"dyapi-nothere-{secrets.token_hex(3)}")
    assert r.returncode != 0
    assert "No such container" in r.stderr
