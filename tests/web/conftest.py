"""Fixtures of the panel's view tests: two teams, their members, an image, and a logged-in client."""

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from panel.images.models import Image, ImageTag
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def state_root(settings, tmp_path):
    from workers import node

    settings.STATE_ROOT = tmp_path
    node.image_store.cache_clear()  # the node's store is cached per process: make it this one
    yield tmp_path
    node.image_store.cache_clear()


@pytest.fixture
def enqueued(monkeypatch):
    """Jobs are recorded instead of being sent to Celery."""
    sent = []
    monkeypatch.setattr("panel.jobs.services._send_task", sent.append)
    return sent


def make_user(name, team=None, role=Membership.Role.OPERATOR, **extra):
    user = get_user_model().objects.create_user(name, password="pw-" + name, **extra)
    if team:
        Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def blue(db):
    return Team.objects.create(name="blue")


@pytest.fixture
def red(db):
    return Team.objects.create(name="red")


@pytest.fixture
def alice(blue):
    return make_user("alice", blue)


@pytest.fixture
def viewer(blue):
    return make_user("vera", blue, Membership.Role.VIEWER)


@pytest.fixture
def mallory(red):
    return make_user("mallory", red)


@pytest.fixture
def image(db):
    image = Image.objects.create(
        id="b" * 64,
        node=local_node(),
        config={"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, "rootfs": {"diff_ids": []}},
        layers=[],
        size=1_234_567,
        created=datetime(2020, 1, 1, tzinfo=UTC),
    )
    ImageTag.objects.create(image=image, repository="busybox", tag="1.29")
    return image


@pytest.fixture
def login(client):
    def login_as(user):
        client.force_login(user)
        return client

    return login_as


# ------------------------------------------------------------------ the browser tests

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots, gitignored
CHROMIUM = os.environ.get("DOCKYARD_TEST_CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium, headless, kept off the network it cannot reach here.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _logged_in_page(browser, live_stack, username, password):
    """A page logged in as ``username``; fails the test on any page error."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_stack.panel_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_stack.panel_url}/")
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser, live_stack):
    """A page logged in as the live stack's admin."""
    yield from _logged_in_page(browser, live_stack, live_stack.admin_username,
                               live_stack.admin_password)


@pytest.fixture
def operator_page(browser, live_stack):
    """A page logged in as a new operator of the live stack's default team (not a site
    admin), for the refusals of what only site admins may ask for."""
    username, password = f"op-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership\n"
        "from panel.teams.services import default_team\n"
        f"user = get_user_model().objects.create_user({username!r}, password={password!r})\n"
        "Membership.objects.create(user=user, team=default_team(), role='operator')\n"))
    yield from _logged_in_page(browser, live_stack, username, password)
