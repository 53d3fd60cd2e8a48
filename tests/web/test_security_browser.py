"""The run form's Security section in a browser: a container run with --cap-drop shows it on
its page (and really lacks the capability); a non-admin asking for --privileged sees why not."""

import re
import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

IMAGE = "busybox:1.29"


def test_cap_drop_from_the_form_shows_on_the_container_page(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-sec-{secrets.token_hex(3)}"
    url = live_stack.panel_url
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.fill("#id_command", "sh -c 'grep CapBnd /proc/self/status; sleep 60'")
        page.click("#security-settings > summary")
        page.fill("#id_cap_drop", "net_raw, MKNOD")
        page.check("#id_read_only")
        page.check("#id_no_new_privileges")
        page.screenshot(path=str(ARTIFACTS / "run-form-security.png"), full_page=True)
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/"))
        card = page.locator("#security")
        expect(card.locator("#security-cap-drop")).to_have_text("NET_RAW, MKNOD")
        expect(card).to_contain_text("Docker's default profile")
        expect(card.locator("dd").nth(4)).to_have_text("yes")  # no new privileges
        expect(card.locator("dd").nth(5)).to_have_text("yes")  # read-only root
        # the default set 0xa80425fb without NET_RAW (bit 13) and MKNOD (bit 27)
        expect(page.locator("#log-output")).to_contain_text("00000000a00405fb",
                                                            timeout=30_000)
        card.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "container-security.png"), full_page=True)
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)


def test_privileged_is_refused_to_a_non_admin_with_a_clear_error(live_stack, operator_page):
    from playwright.sync_api import expect

    page = operator_page
    name = f"web-priv-{secrets.token_hex(3)}"
    url = live_stack.panel_url
    try:
        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.click("#security-settings > summary")
        page.check("#id_privileged")
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(f"{url}/containers/new/")
        section = page.locator("#security-settings")
        expect(section).to_have_attribute("open", "")
        error = section.locator(".field.has-error .field-error")
        expect(error).to_contain_text("--privileged")
        expect(error).to_contain_text("policy of team default does not allow")
        error.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "run-form-privileged-refused.png"), full_page=True)
        r = live_stack.docker_cli("ps", "-a", "--format", "{{.Names}}")
        assert name not in r.stdout.split()
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)
