"""The browser terminal: its websocket consumer (Channels' communicator, against a container
running in the live stack) and xterm.js in a real browser (Playwright), from the run form."""

import contextlib
import json
import re
import secrets
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from panel.containers.models import Container
from panel.events.routing import websocket_urlpatterns
from panel.nodes.services import local_node

from .conftest import ARTIFACTS, make_user

IMAGE = "busybox:1.29"
TIMEOUT = 30

app = URLRouter(websocket_urlpatterns)


def _communicator(path, user):
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    return communicator


# ------------------------------------------------------------------ consumer, no live stack

@pytest.mark.django_db(transaction=True)
def test_terminal_socket_refuses_strangers_and_plain_containers(alice, mallory, blue, image):
    plain = Container.objects.create(id="c" * 64, name="plain", team=blue, node=local_node(),
                                     image=image, image_ref=IMAGE,
                                     spec={"Config": {"Image": IMAGE}})
    tty = Container.objects.create(id="d" * 64, name="tty", team=blue, node=local_node(),
                                   image=image, image_ref=IMAGE,
                                   spec={"Config": {"Tty": True, "OpenStdin": True}})

    @async_to_sync
    async def run():
        for user, path, code in (
            (AnonymousUser(), f"/ws/terminal/container/{tty.id}/", 4401),
            (mallory, f"/ws/terminal/container/{tty.id}/", 4404),
            (alice, f"/ws/terminal/nonsense/{tty.id}/", 4404),
            (alice, "/ws/terminal/container/missing/", 4404),
        ):
            communicator = _communicator(path, user)
            connected, got = await communicator.connect()
            assert not connected and got == code, (path, got)
        communicator = _communicator(f"/ws/terminal/container/{plain.id}/", alice)
        connected, _ = await communicator.connect()
        assert connected
        event = json.loads(await communicator.receive_from())
        assert event["type"] == "error" and "no terminal" in event["message"]
        assert (await communicator.receive_output())["type"] == "websocket.close"

    run()


@pytest.mark.django_db
def test_run_form_tty_and_stdin_give_the_page_a_terminal(login, alice, blue, image, enqueued,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(alice).post("/containers/new/", {
            "image": IMAGE, "name": "shell", "command": "sh", "tty": "on",
            "open_stdin": "on"})
    container = Container.objects.get(name="shell")
    assert response.status_code == 302
    assert response["Location"] == f"/containers/{container.id}/#terminal"
    config = container.spec["Config"]
    assert config["Tty"] is True and config["OpenStdin"] is True
    page = login(alice).get(f"/containers/{container.id}/").content.decode()
    assert f'data-ws-path="/ws/terminal/container/{container.id}/"' in page
    assert 'data-readonly="0"' in page and "vendor/xterm/xterm.js" in page
    assert 'id="log" hidden' in page
    viewer = make_user("vic", blue, role="viewer")
    page = login(viewer).get(f"/containers/{container.id}/").content.decode()
    assert 'data-readonly="1"' in page and "read only" in page
    plain = Container.objects.create(id="e" * 64, name="plain", team=blue, node=local_node(),
                                     image=image, image_ref=IMAGE, spec={"Config": {}})
    page = login(alice).get(f"/containers/{plain.id}/").content.decode()
    assert "data-ws-path" not in page and 'id="log-output"' in page


# ------------------------------------------------------------------ consumer, live container

@pytest.fixture
def live_settings(settings, live_stack):
    """This process's consumer talks to the live stack's Redis and shims."""
    from workers.node import runtime

    settings.REDIS_URL = live_stack.redis_url
    settings.STATE_ROOT = Path(live_stack.state_root)
    runtime.cache_clear()
    yield settings
    runtime.cache_clear()


async def _read_until(communicator, needle: bytes, timeout=TIMEOUT) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not in {seen[-400:]!r}"
        message = await communicator.receive_output(timeout=left)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed while waiting for {needle!r}")
        if message.get("bytes"):
            seen += message["bytes"]
    return seen


async def _next_event(communicator, kind: str, timeout=TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} event"
        message = await communicator.receive_output(timeout=left)
        if message.get("text"):
            event = json.loads(message["text"])
            if event["type"] == kind:
                return event


@pytest.mark.django_db(transaction=True)
def test_terminal_socket_on_a_live_container(live_stack, live_settings, alice, blue, image):
    name = f"term-{secrets.token_hex(3)}"
    r = live_stack.docker_cli("run", "-d", "-it", "--name", name, IMAGE, "sh")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    viewer = make_user("watcher", blue, role="viewer")
    try:
        Container.objects.create(id=cid, name=name, team=blue, node=local_node(), image=image,
                                 image_ref=IMAGE, state=Container.State.RUNNING,
                                 spec={"Config": {"Tty": True, "OpenStdin": True}})

        @async_to_sync
        async def run():
            path = f"/ws/terminal/container/{cid}/"
            watcher = _communicator(path, viewer)
            assert (await watcher.connect())[0]
            hello = json.loads(await watcher.receive_from())
            assert hello == {"type": "hello", "readonly": True, "running": True}
            await watcher.send_to(bytes_data=b"echo from-viewer\n")  # dropped

            operator = _communicator(path, alice)
            assert (await operator.connect())[0]
            hello = json.loads(await operator.receive_from())
            assert hello == {"type": "hello", "readonly": False, "running": True}
            await operator.send_to(text_data=json.dumps({"type": "resize", "rows": 33,
                                                         "cols": 77}))
            await operator.send_to(bytes_data=b"stty size; echo t-$((40+2))\n")
            seen = await _read_until(operator, b"t-42")
            assert b"33 77" in seen
            await _read_until(watcher, b"t-42")  # the viewer sees the output too
            await operator.send_to(text_data=json.dumps({"type": "input",
                                                         "data": "exit 9\n"}))
            assert (await _next_event(operator, "exit"))["code"] == 9
            assert (await _next_event(watcher, "exit"))["code"] == 9
            await operator.disconnect()
            await watcher.disconnect()

        run()
        logs = live_stack.docker_cli("logs", name).stdout
        assert "from-viewer" not in logs
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)


# ------------------------------------------------------------------ the browser

@pytest.mark.browser
def test_type_into_the_browser_terminal(browser, live_stack):
    from playwright.sync_api import expect

    name = f"web-term-{secrets.token_hex(3)}"
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{live_stack.panel_url}/login/")
        page.fill("#id_username", live_stack.admin_username)
        page.fill("#id_password", live_stack.admin_password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_stack.panel_url}/")
        page.goto(f"{live_stack.panel_url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.fill("#id_command", "sh")
        page.check("#id_tty")
        page.check("#id_open_stdin")
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/#terminal$"))
        expect(page.locator("#state-badge")).to_have_text("running", timeout=30_000)
        screen = page.locator(".dy-terminal .xterm")
        expect(screen).to_be_visible(timeout=15_000)
        expect(page.locator("#log")).to_be_hidden()
        rows = page.locator(".dy-terminal .xterm-rows")
        deadline = time.monotonic() + TIMEOUT
        n = 0
        while True:  # the first keys may come before the socket is open: type until seen
            n += 1
            screen.click()
            page.keyboard.type(f"echo web-$((4000+{n}))\n")
            try:
                expect(rows).to_contain_text(f"web-{4000 + n}", timeout=3_000)
                break
            except AssertionError:
                assert time.monotonic() < deadline, rows.inner_text()
        page.keyboard.type("stty size\n")
        expect(rows).to_contain_text(re.compile(r"stty size\s*\d+ \d+"))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "container-terminal.png"), full_page=True)
        page.keyboard.type("exit 4\n")
        expect(page.locator(".dy-terminal-status")).to_contain_text("code 4", timeout=30_000)
        expect(page.locator("#state-badge")).to_have_text("exited", timeout=30_000)
        assert not errors, errors
    finally:
        with contextlib.suppress(Exception):
            context.close()
        live_stack.docker_cli("rm", "-f", name, timeout=60)
