"""The container page in a real browser: Pause/Unpause/Restart buttons, the paused state
and the History section, live (CLI actions show up without a reload)."""

import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_pause_unpause_restart_and_history(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-hist-{secrets.token_hex(3)}"
    r = live_stack.docker_cli("run", "-d", "--name", name, "busybox:1.29", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        page.goto(f"{live_stack.panel_url}/containers/{cid}/")
        badge = page.locator("#state-badge")
        history = page.locator("#history")
        expect(badge).to_have_text("running", timeout=30_000)
        expect(history.locator("tr[data-action=create]")).to_have_count(1)
        expect(history.locator("tr[data-action=start]")).to_have_count(1)

        page.click("button:has-text('Pause')")
        expect(badge).to_have_text("paused", timeout=30_000)
        expect(page.locator("#status-text")).to_contain_text("(Paused)")
        row = history.locator("tr[data-action=pause]")
        expect(row).to_have_count(1, timeout=15_000)
        expect(row).to_contain_text(live_stack.admin_username)

        page.click("button:has-text('Unpause')")
        expect(badge).to_have_text("running", timeout=30_000)
        expect(history.locator("tr[data-action=unpause]")).to_have_count(1, timeout=15_000)

        # from the CLI: the page follows without a reload
        page.evaluate("window.__dockyardNoReload = true")
        assert live_stack.docker_cli("pause", name).returncode == 0
        expect(badge).to_have_text("paused", timeout=30_000)
        expect(history.locator("tr[data-action=pause]")).to_have_count(2, timeout=15_000)
        assert live_stack.docker_cli("unpause", name).returncode == 0
        expect(badge).to_have_text("running", timeout=30_000)
        assert page.evaluate("window.__dockyardNoReload === true"), "the page was reloaded"

        page.click("button:has-text('Restart')")
        expect(history.locator("tr[data-action=restart]")).to_have_count(1, timeout=60_000)
        expect(history.locator("tr[data-action=start]")).to_have_count(2)
        expect(history.locator("tr[data-action=die]")).to_have_count(1)
        expect(badge).to_have_text("running")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "container-history.png"), full_page=True)
        # the newest first
        assert history.locator("tbody tr").first.get_attribute("data-action") == "restart"
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)
