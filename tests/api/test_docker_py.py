"""docker-py against the live stack's Docker API."""

import json
import time

import docker
import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"


def test_version_and_ping(docker_client):
    assert docker_client.ping() is True
    version = docker_client.version()
    assert version["ApiVersion"] == "1.41" and version["MinAPIVersion"] == "1.12"
    assert version["Os"] == "linux" and version["Components"][0]["Name"] == "Engine"
    info = docker_client.info()
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped",
                "Images", "NCPU", "MemTotal", "OperatingSystem", "KernelVersion", "Name"):
        assert key in info
    assert info["Driver"] == "overlay2" and info["CgroupVersion"] in ("1", "2")


def test_ping_headers(live_stack):
    status, headers, body = raw_request(live_stack, "GET", "/_ping")
    assert status == 200 and body == b"OK"
    assert headers["Api-Version"] == "1.41" and headers["Ostype"] == "linux"
    status, headers, body = raw_request(live_stack, "HEAD", "/v1.41/_ping")
    assert status == 200 and body == b""
    status, headers, body = raw_request(live_stack, "HEAD", "/_ping", tcp=True)
    assert status == 401 and body == b"" and headers["Api-Version"] == "1.41"


def test_run_returns_both_streams(docker_client, names):
    out = docker_client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"],
                                       name=names("run"), stderr=True, remove=True)
    assert out == b"out\nerr\n"


def test_attach_before_start_gets_all_output(docker_client, names):
    container = docker_client.containers.create(
        IMAGE, ["sh", "-c", "echo a; sleep 0.5; echo b >&2; exit 4"], name=names("att"))
    stream = container.attach(stdout=True, stderr=True, stream=True, demux=True)
    container.start()
    chunks = list(stream)
    assert (b"a\n", None) in chunks and (None, b"b\n") in chunks
    assert container.wait(timeout=30) == {"StatusCode": 4, "Error": None}
    # Attaching to an exited container: logs=1 replays; without stream=1 it ends at once
    # (with stream=1 it waits for the next start, as in Docker: tests/api/test_interactive.py).
    started = time.monotonic()
    replay = container.attach(stdout=True, stderr=True, stream=False, logs=True)
    assert replay == b"a\nb\n"
    assert time.monotonic() - started < 5


def test_logs_options(docker_client, names):
    container = docker_client.containers.run(
        IMAGE, ["sh", "-c", "echo 1; sleep 0.2; echo 2 >&2; sleep 0.2; echo 3"],
        name=names("logs"), detach=True)
    assert container.wait(timeout=30)["StatusCode"] == 0
    assert container.logs() == b"1\n2\n3\n"
    assert container.logs(stderr=False) == b"1\n3\n"
    assert container.logs(stdout=False) == b"2\n"
    assert container.logs(tail=2) == b"2\n3\n"
    assert container.logs(tail=0) == b""
    stamped = container.logs(timestamps=True).splitlines()
    assert [line.split(b" ", 1)[1] for line in stamped] == [b"1", b"2", b"3"]
    assert container.logs(since=int(time.time()) + 60) == b""


def test_logs_follow_ends_when_the_container_exits(docker_client, names):
    container = docker_client.containers.run(
        IMAGE, ["sh", "-c", "echo a; sleep 1; echo b"], name=names("follow"), detach=True)
    started = time.monotonic()
    streamed = b"".join(container.logs(stream=True, follow=True))
    assert streamed == b"a\nb\n"
    assert time.monotonic() - started < 15


def test_list_filters_and_shape(docker_client, names):
    running = docker_client.containers.run(IMAGE, ["sleep", "600"], name=names("up"),
                                           detach=True, labels={"role": "db"})
    exited = docker_client.containers.run(IMAGE, ["sh", "-c", "exit 2"], name=names("down"),
                                          detach=True)
    exited.wait(timeout=30)
    api = docker_client.api
    listed = {c["Id"]: c for c in api.containers()}
    assert running.id in listed and exited.id not in listed
    summary = listed[running.id]
    assert summary["Names"] == [f"/{running.name}"] and summary["Image"] == IMAGE
    assert summary["ImageID"].startswith("sha256:") and summary["State"] == "running"
    assert summary["Status"].startswith("Up ") and summary["Command"] == "sleep 600"
    assert summary["Labels"]["role"] == "db" and summary["Ports"] == []
    assert summary["HostConfig"] == {"NetworkMode": "default"} and "SizeRw" not in summary
    assert "SizeRw" in api.containers(filters={"id": running.id}, size=True)[0]

    def ids(**filters):
        return {c["Id"] for c in api.containers(all=True, filters=filters)}

    assert ids(status="exited", name=names.prefix) == {exited.id}
    assert ids(exited=2, name=names.prefix) == {exited.id}
    assert ids(label="role=db") == {running.id}
    assert ids(name=running.name) == {running.id}
    assert ids(id=running.id[:12]) == {running.id}
    assert running.id in ids(ancestor=IMAGE)
    assert api.containers(all=True, filters={"status": "exited"}, limit=1)
    down = api.containers(all=True, filters={"id": exited.id})[0]
    assert down["Status"].startswith("Exited (2) ")
    with pytest.raises(docker.errors.APIError) as info:
        api.containers(filters={"nonsense": "x"})
    assert info.value.status_code == 400


def test_inspect_state_and_config(docker_client, names):
    container = docker_client.containers.run(IMAGE, ["sleep", "600"], name=names("insp"),
                                             detach=True, environment={"A": "1"})
    data = docker_client.api.inspect_container(container.id)
    assert data["State"]["Running"] is True and data["State"]["Pid"] > 0
    assert data["State"]["StartedAt"].endswith("Z")
    assert data["Config"]["Env"][-1] == "A=1" and data["Config"]["Tty"] is False
    assert data["Created"].endswith("Z") and data["RestartCount"] == 0
    container.stop(timeout=1)
    data = docker_client.api.inspect_container(container.name)
    assert data["State"]["Status"] == "exited" and data["State"]["FinishedAt"].endswith("Z")


def test_restart(docker_client, names):
    container = docker_client.containers.run(IMAGE, ["sleep", "600"], name=names("restart"),
                                             detach=True)
    first = docker_client.api.inspect_container(container.id)["State"]["StartedAt"]
    container.restart(timeout=1)
    state = docker_client.api.inspect_container(container.id)["State"]
    assert state["Running"] is True and state["StartedAt"] != first


def test_wait_removed(docker_client, names):
    # It lives a second, so that the wait below starts before the removal (as the CLI's does).
    container = docker_client.containers.create(IMAGE, ["sh", "-c", "sleep 1; exit 6"],
                                                name=names("autorm"), auto_remove=True)
    container.start()
    assert container.wait(condition="removed", timeout=30)["StatusCode"] == 6
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)


def test_images(docker_client):
    images = docker_client.api.images()
    busybox = next(i for i in images if f"{IMAGE}" in i["RepoTags"])
    for key in ("Id", "RepoTags", "RepoDigests", "Created", "Size", "VirtualSize", "Labels",
                "ParentId", "Containers", "SharedSize"):
        assert key in busybox
    assert busybox["Containers"] == -1 and busybox["SharedSize"] == -1
    image = docker_client.images.get(IMAGE)
    assert image.id == busybox["Id"]
    attrs = image.attrs
    assert attrs["RootFS"]["Type"] == "layers" and attrs["RootFS"]["Layers"]
    assert attrs["Os"] == "linux" and "Metadata" in attrs and "ContainerConfig" in attrs
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get("busybox:nope")


def test_bad_input_changes_nothing(docker_client, names, live_stack):
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(docker.errors.ImageNotFound) as info:
        docker_client.containers.create("busybox:nope", name=names("noimg"))
    assert "No such image: busybox:nope" in str(info.value)
    with pytest.raises(docker.errors.APIError):  # run pulls first: nothing listens there
        docker_client.containers.run("127.0.0.1:9/dyapi-nope:nope", name=names("noimg"))

    name = names("dup")
    docker_client.containers.create(IMAGE, ["true"], name=name)
    existing = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(docker.errors.APIError) as info:
        docker_client.containers.create(IMAGE, ["true"], name=name)
    assert info.value.status_code == 409 and "already in use" in str(info.value)

    with pytest.raises(docker.errors.APIError) as info:
        docker_client.containers.create(IMAGE, ["true"], name=names("policy"),
                                        restart_policy={"Name": "sometimes"})
    assert info.value.status_code == 400 and "restart policy" in str(info.value)

    status, _, body = raw_request(live_stack, "POST", "/v1.41/containers/create",
                                  body=b'{"Image": "busybox:1.29", ',
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and "malformed JSON" in body["message"]
    status, _, body = raw_request(live_stack, "POST", "/v1.41/containers/create",
                                  body=json.dumps({"Cmd": ["true"]}).encode(),
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and "Image" in body["message"]
    assert {c.id for c in docker_client.containers.list(all=True)} == existing
    assert existing - before == {docker_client.containers.get(name).id}


def test_errors_are_docker_shaped(live_stack):
    status, _, body = raw_request(live_stack, "GET", "/v1.41/containers/nosuch/json")
    assert status == 404 and body == {"message": "No such container: nosuch"}
    status, _, body = raw_request(live_stack, "GET", "/v1.41/no/such/endpoint")
    assert status == 404 and body == {"message": "page not found"}
    status, _, body = raw_request(live_stack, "GET", "/v1.99/version")
    assert status == 400 and "too new" in body["message"]
    status, _, body = raw_request(live_stack, "POST", "/v1.41/containers/nosuch/attach?stream=1")
    assert status == 404 and "No such container" in body["message"]


def test_keep_alive_and_chunked_body(live_stack):
    from .conftest import UnixHTTPConnection

    conn = UnixHTTPConnection(live_stack.docker_host.removeprefix("unix://"))
    try:
        for _ in range(3):
            conn.request("GET", "/v1.41/version")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["ApiVersion"] == "1.41"

        def body():
            yield b'{"Image": "busybox:1.29",'
            yield b' "Cmd": ["true"], "Labels": {"chunked": "yes"}}'

        conn.request("POST", "/v1.41/containers/create", body=body(),
                     headers={"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"}, encode_chunked=True)
        resp = conn.getresponse()
        created = json.loads(resp.read())
        assert resp.status == 201, created
        conn.request("DELETE", f"/v1.41/containers/{created['Id']}?force=1")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204
    finally:
        conn.close()


def test_attach_without_upgrade_streams_raw_after_200(docker_client, names, live_stack):
    import socket

    container = docker_client.containers.run(IMAGE, ["sh", "-c", "echo x; echo y >&2"],
                                             name=names("noupg"), detach=True)
    container.wait(timeout=30)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(live_stack.docker_host.removeprefix("unix://"))
    try:
        sock.sendall(f"POST /v1.41/containers/{container.id}/attach?logs=1&stream=0&stdout=1"
                     f"&stderr=0 HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):  # the server closes when the stream ends
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"application/vnd.docker.raw-stream" in head
    assert body == b"\x01\x00\x00\x00\x00\x00\x00\x02x\n"
