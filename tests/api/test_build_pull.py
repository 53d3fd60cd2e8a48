"""FROM images that are not local: pulled by the build (the pull's progress in the build's
stream), `--pull` pulling a local base again, and the X-Registry-Config credentials the
CLI sends for a private registry."""

import base64
import json
import secrets

from registry import file_layer

from .build_helpers import tar_context
from .conftest import raw_request


def _build(live_stack, tag: str, dockerfile: str, headers=None) -> tuple[int, list[dict]]:
    status, _, body = raw_request(
        live_stack, "POST", f"/v1.41/build?t={tag}", body=tar_context({"Dockerfile": dockerfile}),
        headers={"Content-Type": "application/x-tar", **(headers or {})})
    if isinstance(body, dict):  # an error before the stream: one JSON object
        return status, [body]
    return status, [json.loads(line) for line in body.split(b"\r\n") if line.strip()]


def test_private_base_is_pulled_with_x_registry_config(live_stack, cli, basic_registry,
                                                       build_tags):
    name = f"dyapi-build-private-{secrets.token_hex(3)}:v1"
    basic_registry.push_image(name, [file_layer("hello.txt", b"from a private registry\n")])
    ref = f"{basic_registry.host}/{name}"
    tag = build_tags("private")
    dockerfile = f"FROM {ref}\nLABEL pulled=yes\n"
    try:
        status, lines = _build(live_stack, tag, dockerfile)
        assert status != 200 or "error" in lines[-1], lines  # anonymous: refused
        assert cli("image", "inspect", tag).returncode != 0
        config = {basic_registry.host: {"username": basic_registry.username,
                                        "password": basic_registry.password}}
        header = base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
        status, lines = _build(live_stack, tag, dockerfile, {"X-Registry-Config": header})
        assert status == 200 and "error" not in lines[-1], lines
        statuses = [line.get("status", "") for line in lines]
        assert "Pulling from " + name.split(":")[0] in statuses
        assert f"Status: Downloaded newer image for {ref}" in statuses
        assert {"stream": f"Successfully tagged {tag}\n"} in lines
        r = cli("image", "inspect", "-f", "{{.Config.Labels.pulled}}", tag)
        assert r.stdout == "yes\n"
    finally:
        cli("rmi", "-f", ref)


def test_pull_flag_pulls_a_local_base_again(cli, registry, build_tags, tmp_path):
    name = f"dyapi-build-base-{secrets.token_hex(3)}:v1"
    registry.push_image(name, [file_layer("base.txt", b"base\n")])
    ref = f"{registry.host}/{name}"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM {ref}\nLABEL rebuilt=yes\n")
    tag = build_tags("pull")
    try:
        assert cli("pull", ref).returncode == 0
        r = cli("build", "-t", tag, str(tmp_path), timeout=180)
        assert r.returncode == 0, r.stderr
        assert "Pulling from" not in r.stdout and "Status:" not in r.stdout
        r = cli("build", "--pull", "-t", tag, str(tmp_path), timeout=180)
        assert r.returncode == 0, r.stderr
        assert f"Status: Image is up to date for {ref}" in r.stdout
    finally:
        cli("rmi", "-f", ref)
