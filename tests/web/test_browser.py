"""The panel in a real browser against the live stack: run from the form, watch it live.

Screenshots go to test-artifacts/ (gitignored): container-list.png, container-page.png.
"""

import re
import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _mark_no_reload(page):
    """A flag on window: a reload or navigation would drop it."""
    page.evaluate("window.__dockyardNoReload = true")


def _assert_no_reload(page):
    assert page.evaluate("window.__dockyardNoReload === true"), "the page was reloaded"


def _remove(live_stack, name):
    live_stack.docker_cli("rm", "-f", name, timeout=60)


def test_run_from_the_form_and_follow_it_live(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-run-{secrets.token_hex(3)}"
    page.click("text=Run a container")
    page.fill("#id_image", "busybox:1.29")
    page.fill("#id_name", name)
    page.fill("#id_command", 'sh -c "echo hello; sleep 2"')
    try:
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/"))
        _mark_no_reload(page)
        badge = page.locator("#state-badge")
        expect(page.locator("h1")).to_contain_text(name)
        expect(badge).to_have_text("running", timeout=30_000)
        expect(page.locator("#log-output")).to_contain_text("hello", timeout=15_000)
        expect(badge).to_have_text("exited", timeout=30_000)
        expect(page.locator("#status-text")).to_contain_text("Exited (0)")
        expect(page.locator("#log-empty")).to_be_hidden()
        _assert_no_reload(page)
        assert page.locator("#log-output").inner_text().count("hello") == 1  # no duplicates
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "container-page.png"), full_page=True)
    finally:
        _remove(live_stack, name)


def test_list_shows_cli_containers_without_reload(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-cli-{secrets.token_hex(3)}"
    _mark_no_reload(page)
    try:
        created = live_stack.docker_cli("create", "--name", name, "busybox:1.29", "sleep", "30")
        assert created.returncode == 0, created.stderr
        container_id = created.stdout.strip()
        row = page.locator(f"#c-{container_id}")
        expect(row).to_be_visible(timeout=15_000)
        expect(row).to_contain_text(name)
        expect(row.locator(".badge")).to_have_text("created")
        expect(row.locator(".status")).to_have_text("Created")

        started = live_stack.docker_cli("start", name)
        assert started.returncode == 0, started.stderr
        expect(row.locator(".badge")).to_have_text("running", timeout=30_000)
        expect(row.locator(".status")).to_contain_text("Up ")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "container-list.png"), full_page=True)

        removed = live_stack.docker_cli("rm", "-f", name, timeout=60)
        assert removed.returncode == 0, removed.stderr
        expect(row).to_have_count(0, timeout=30_000)
        _assert_no_reload(page)
    finally:
        _remove(live_stack, name)


def test_stop_and_remove_from_the_container_page(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-stop-{secrets.token_hex(3)}"
    page.goto(f"{live_stack.panel_url}/containers/new/")
    page.fill("#id_image", "busybox:1.29")
    page.fill("#id_name", name)
    page.fill("#id_command", "sleep 60")
    page.check("#id_detach")
    try:
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"))
        expect(page.locator(".message-success")).to_contain_text("in the background")
        badge = page.locator("#state-badge")
        expect(badge).to_have_text("running", timeout=30_000)
        page.click("button:has-text('Stop')")
        expect(page.locator(".message-success")).to_contain_text("Stop requested")
        # busybox sleep ignores SIGTERM as pid 1: the stop timeout (10 s) ends in SIGKILL.
        expect(badge).to_have_text("exited", timeout=40_000)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Remove')")
        page.wait_for_url(f"{live_stack.panel_url}/")
        expect(page.locator("tr", has_text=name)).to_have_count(0, timeout=30_000)

        page.goto(f"{live_stack.panel_url}/jobs/")
        for kind in ("container.start", "container.stop", "container.remove"):
            row = page.locator("tr", has_text=kind).filter(has_text=name).first
            expect(row.locator(".badge")).to_have_text("succeeded", timeout=30_000)
    finally:
        _remove(live_stack, name)
