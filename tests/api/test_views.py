"""The API views in process (no server, no worker): routing, errors, shapes, encodings."""

import io
import json
from datetime import UTC, datetime

import pytest
from apicall import call
from django.contrib.auth import get_user_model

from panel.containers.models import Container
from panel.dockerapi import logs
from panel.dockerapi.common import rfc3339
from panel.images.models import Image, ImageTag
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("root", "", "x")


@pytest.fixture
def image(db):
    image = Image.objects.create(
        id="b" * 64, node=local_node(), size=1234,
        config={"architecture": "amd64", "os": "linux",
                "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"from": "image"}},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "c" * 64]}},
        layers=["sha256:" + "c" * 64], created=datetime(2020, 1, 1, tzinfo=UTC))
    ImageTag.objects.create(image=image, repository="busybox", tag="1.29")
    return image


def create(user, config, name=None):
    return call("POST", "/containers/create", user=user, body=json.dumps(config).encode(),
                query=f"name={name}" if name else "")


def test_unauthenticated_is_401(db):
    status, _, body = call("GET", "/version")
    assert status == 401 and "message" in body


def test_version_and_unknown_path(admin):
    status, headers, body = call("GET", "/version", user=admin)
    assert status == 200 and body["ApiVersion"] == "1.41" and body["Arch"]
    status, _, body = call("GET", "/nope", user=admin)
    assert status == 404 and body == {"message": "page not found"}
    status, _, body = call("DELETE", "/version", user=admin)
    assert status == 404


def test_the_panel_urlconf_does_not_serve_the_api(db):
    from django.urls import get_resolver

    def callbacks(resolver):
        for pattern in resolver.url_patterns:
            if hasattr(pattern, "url_patterns"):
                yield from callbacks(pattern)
            else:
                yield pattern.callback

    modules = {getattr(cb, "__module__", "") for cb in callbacks(get_resolver("panel.urls"))}
    assert not any(m.startswith("panel.dockerapi") for m in modules)
    assert any(m.startswith("panel.dockerapi") for m in
               {cb.__module__ for cb in callbacks(get_resolver("panel.dockerapi.urls"))})


def test_create_and_errors_change_nothing(admin, image):
    status, _, body = create(admin, {"Image": "busybox:1.29", "Cmd": ["true"],
                                     "HostConfig": {"AutoRemove": False}}, name="one")
    assert status == 201 and len(body["Id"]) == 64 and body["Warnings"] == []
    status, _, body = create(admin, {"Image": "busybox:1.29"}, name="one")
    assert status == 409 and "already in use" in body["message"]
    status, _, body = create(admin, {"Image": "busybox:nope"}, name="two")
    assert status == 404 and body["message"] == "No such image: busybox:nope"
    status, _, body = create(admin, {"Image": "busybox:1.29",
                                     "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}})
    assert status == 400 and "restart policy" in body["message"]
    status, _, body = call("POST", "/containers/create", user=admin, body=b"{nope")
    assert status == 400 and body["message"].startswith("malformed JSON")
    status, _, body = create(admin, {"Image": "busybox:1.29"}, name="bad name!")
    assert status == 400
    assert list(Container.objects.values_list("name", flat=True)) == ["one"]


def test_other_teams_containers_are_invisible(admin, image):
    _, _, body = create(admin, {"Image": "busybox:1.29", "Cmd": ["true"]}, name="secret")
    team = Team.objects.create(name="other")
    user = get_user_model().objects.create_user("other", password="x")
    Membership.objects.create(user=user, team=team, role=Membership.Role.OPERATOR)
    status, _, data = call("GET", f"/containers/{body['Id']}/json", user=user)
    assert status == 404
    status, _, data = call("GET", "/containers/json", user=user, query="all=1")
    assert data == []


def test_inspect_and_list_shapes(admin, image):
    _, _, body = create(admin, {"Image": "busybox:1.29", "Cmd": ["echo", "hi"],
                                "Labels": {"mine": "yes"}, "Env": ["A=1"]}, name="shape")
    status, _, data = call("GET", "/containers/shape/json", user=admin)
    assert status == 200
    assert data["Id"] == body["Id"] and data["Name"] == "/shape"
    assert data["Path"] == "echo" and data["Args"] == ["hi"]
    assert data["Image"] == "sha256:" + "b" * 64
    assert data["Config"]["Env"] == ["PATH=/bin", "A=1"]
    assert data["Config"]["Labels"] == {"from": "image", "mine": "yes"}
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert data["State"]["Status"] == "created" and data["State"]["FinishedAt"].startswith("0001")
    status, _, listed = call("GET", "/containers/json", user=admin)
    assert listed == []
    status, _, listed = call("GET", "/containers/json", user=admin, query="all=1")
    assert listed[0]["Status"] == "Created" and listed[0]["Command"] == "echo hi"
    status, _, listed = call("GET", "/containers/json", user=admin,
                             query='filters={"status":["exited"]}')
    assert listed == []
    status, _, listed = call("GET", "/containers/json", user=admin,
                             query='filters={"label":["mine=yes"]}&all=1')
    assert len(listed) == 1
    status, _, img = call("GET", "/images/busybox:1.29/json", user=admin)
    assert img["RepoTags"] == ["busybox:1.29"] and img["RootFS"]["Layers"] == image.layers
    status, _, imgs = call("GET", "/images/json", user=admin)
    assert imgs[0]["Id"] == image.docker_id and imgs[0]["Size"] == 1234


def test_logs_encoding_and_tail(tmp_path):
    lines = [
        {"log": "one\n", "stream": "stdout", "time": "2024-01-01T00:00:00.000000001Z"},
        {"log": "two\n", "stream": "stderr", "time": "2024-01-01T00:00:01.5Z"},
        {"log": "three\n", "stream": "stdout", "time": "2024-01-01T00:00:02.000000000Z"},
    ]
    data = b"".join(json.dumps(entry).encode() + b"\n" for entry in lines)
    encoder = logs.LineEncoder(logs.LogOptions())
    assert encoder.encode_many(data) == (
        logs.frame(1, b"one\n") + logs.frame(2, b"two\n") + logs.frame(1, b"three\n"))
    assert logs.frame(2, b"ab") == b"\x02\x00\x00\x00\x00\x00\x00\x02ab"
    tty = logs.LineEncoder(logs.LogOptions(stderr=False, tty=True, timestamps=True))
    assert tty.encode_many(data) == (b"2024-01-01T00:00:00.000000001Z one\n"
                                     b"2024-01-01T00:00:02.000000000Z three\n")
    since = logs.LineEncoder(logs.LogOptions(tty=True,
                                             since_ns=logs.parse_unix_ns("1704067201.5")))
    assert since.encode_many(data) == b"two\nthree\n"
    f = io.BytesIO(data)
    assert data[logs.tail_offset(f, 1):] == data.splitlines(keepends=True)[-1]
    assert logs.tail_offset(f, 2) == len(data.splitlines(keepends=True)[0])
    assert logs.tail_offset(f, 5) == 0 and logs.tail_offset(f, 0) == len(data)


def test_rfc3339():
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2024-01-02T03:04:05.12Z"
    assert rfc3339(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
