"""An image built by Dockyard, saved through Dockyard (`docker save`), loads into the real
Docker engine and runs there with what the Dockerfile set: files from COPY and RUN, ENV,
WORKDIR, USER, ENTRYPOINT and CMD."""

from .build_helpers import write_context

DOCKERFILE = """\
FROM busybox:1.29
ENV GREETING=hello-from-dockyard
WORKDIR /srv/app
COPY greet.sh ./
RUN chmod 755 greet.sh && echo built-by-run > run.txt && chown -R 1000:1000 /srv/app
USER 1000
ENTRYPOINT ["./greet.sh"]
CMD ["world"]
"""

SCRIPT = """\
#!/bin/sh
echo "$GREETING $1 $(pwd) $(id -u) $(cat run.txt)"
"""


def test_dockyard_build_saved_and_run_by_docker(cli, build_tags, docker_engine, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "greet.sh": SCRIPT})
    tag = build_tags("interop")
    r = cli("build", "-t", tag, str(ctx), timeout=180)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    expected = "hello-from-dockyard world /srv/app 1000 built-by-run\n"
    assert cli("run", "--rm", tag).stdout == expected
    archive = tmp_path / "built.tar"
    r = cli("save", "-o", str(archive), tag)
    assert r.returncode == 0, r.stderr
    try:
        loaded = docker_engine.cli("load", "-i", str(archive)).stdout.decode()
        assert f"Loaded image: {tag}" in loaded
        out = docker_engine.cli("run", "--rm", "--network", "none", tag).stdout.decode()
        assert out == expected
        out = docker_engine.cli("run", "--rm", "--network", "none", tag, "docker").stdout
        assert out.decode() == expected.replace("world", "docker")
        dockyard_id = cli("image", "inspect", "-f", "{{.Id}}", tag).stdout
        docker_id = docker_engine.cli("image", "inspect", "-f", "{{.Id}}", tag).stdout.decode()
        assert docker_id == dockyard_id
    finally:
        docker_engine.cli("rmi", "-f", tag, check=False)
