"""A pull that downloads: docker-py's stream carries each layer's live progress (Docker's
JSON progress messages, byte counts included), and the CLI prints "Pull complete"."""

import os
import secrets

from registry import file_layer

from workers.runtime.images import build_busybox_layer


def test_pull_of_new_layers_streams_their_progress(cli, docker_client, registry, names):
    name = f"dyapi-progress-{secrets.token_hex(3)}"
    payload = os.urandom(3 * 1024 * 1024)  # big enough for several progress messages
    registry.push_image(name, [build_busybox_layer("/bin/busybox"),
                               file_layer("data/blob.bin", payload),
                               file_layer("hello.txt", b"hello from a new layer\n")])
    ref = f"{registry.host}/{name}:latest"
    lines = list(docker_client.api.pull(f"{registry.host}/{name}", tag="latest", stream=True,
                                        decode=True))
    statuses = [line.get("status") for line in lines]
    assert "Already exists" in statuses, lines  # the base layer, shared with busybox:1.29
    assert statuses.count("Pull complete") == 2, lines
    downloading = [line for line in lines if line.get("status") == "Downloading"]
    assert downloading and all(line["progressDetail"]["total"] > 0 for line in downloading)
    assert any(line.get("status", "").startswith("Digest: sha256:") for line in lines)
    assert statuses[-1] == f"Status: Downloaded newer image for {ref}"
    r = cli("run", "--rm", "--name", names("new"), ref, "sh", "-c",
            "cat /hello.txt; wc -c < /data/blob.bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hello", "from", "a", "new", "layer", str(len(payload))]
    # the CLI, after forgetting the image: a download again, printed per layer
    assert cli("rmi", ref).returncode == 0
    r = cli("pull", ref)
    assert r.returncode == 0, r.stderr
    assert "Pull complete" in r.stdout and f"Status: Downloaded newer image for {ref}" in r.stdout
    cli("rmi", ref)
