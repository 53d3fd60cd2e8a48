"""The audit page in a real browser, on the live stack: filters, details, and the live tail.

Screenshot: test-artifacts/audit.png."""

import secrets
from pathlib import Path

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _record(live_stack, action, outcome, repr_):
    """A row as a service would write it, from another process (published on commit)."""
    live_stack.manage("shell", "-c", (
        "from panel.audit.services import record\n"
        "from panel.teams.services import default_team\n"
        f"record({action!r}, actor=None, team=default_team(), obj_type='container', "
        f"obj_id={repr_!r}, obj_repr={repr_!r}, source='api', outcome={outcome!r}, "
        "params={'privileged': True, 'image': 'busybox:1.29'})\n"))


def test_filter_details_and_live_tail(live_stack, page):
    from playwright.sync_api import expect

    tag = secrets.token_hex(3)
    url = live_stack.panel_url
    ARTIFACTS.mkdir(exist_ok=True)
    _record(live_stack, "container.start", "success", f"ok-{tag}")
    _record(live_stack, "policy.denied", "denied", f"refused-{tag}")

    page.click("nav.mainnav a:has-text('Audit')")
    page.wait_for_url(f"{url}/audit/")
    expect(page.locator("#audit-table")).to_contain_text(f"ok-{tag}")
    page.select_option("#id_outcome", "denied")
    page.click("button:has-text('Apply filters')")
    page.wait_for_url(f"{url}/audit/?*outcome=denied*")
    table = page.locator("#audit-table")
    expect(table).to_contain_text(f"refused-{tag}")
    expect(table).not_to_contain_text(f"ok-{tag}")
    expect(table.locator("tbody .badge:not(.badge-bad)")).to_have_count(0)
    with page.expect_download() as download:  # streamed by Daphne, with the page's filters
        page.click("a:has-text('Export CSV')")
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert f"refused-{tag}" in exported and f"ok-{tag}" not in exported
    assert download.value.suggested_filename.startswith("dockyard-audit-")

    page.check("#audit-live")
    expect(page.locator("#audit-live-state")).to_have_class("live on")
    _record(live_stack, "container.start", "success", f"late-ok-{tag}")
    _record(live_stack, "quota.exceeded", "denied", f"late-refused-{tag}")
    newest = table.locator("tbody").first
    expect(newest).to_contain_text(f"late-refused-{tag}", timeout=20_000)
    expect(newest).to_contain_text("quota.exceeded")
    expect(table).not_to_contain_text(f"late-ok-{tag}")
    expect(page.locator("#audit-noun")).to_have_text("events")
    newest.locator("button:has-text('Details')").click()
    expect(newest.locator(".audit-details")).to_be_visible()
    expect(newest.locator(".audit-json")).to_contain_text('"privileged": true')
    page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)
