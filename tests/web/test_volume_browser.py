"""The volumes page and the run form's Storage section in a real browser, on the live stack.

Screenshots go to test-artifacts/ (gitignored): volumes.png, run-form-storage.png,
container-mounts.png, storage-refused.png.
"""

import re
import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

IMAGE = "busybox:1.29"


def _volume_row(page, name):
    return page.locator(f"#volume-table tr[data-volume='{name}']")


def test_volume_from_the_page_used_by_a_container(live_stack, page):
    from playwright.sync_api import expect

    volume = f"web-vol-{secrets.token_hex(3)}"
    name = f"web-mounts-{secrets.token_hex(3)}"
    url = live_stack.panel_url
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.click("nav.mainnav a:has-text('Volumes')")
        page.wait_for_url(f"{url}/volumes/")
        page.fill("#id_name", volume)
        page.fill("#id_labels", "example=cassandra\ntier=db")
        page.click("button:has-text('Create volume')")
        expect(page.locator(".message-success")).to_contain_text(f"Volume {volume} created")
        row = _volume_row(page, volume)
        expect(row).to_contain_text("example=cassandra")
        expect(row).to_contain_text("tier=db")
        expect(row).to_contain_text("local")
        expect(row.locator(".users")).to_have_text("unused")
        listed = live_stack.docker_cli("volume", "inspect", volume)
        assert listed.returncode == 0 and '"example": "cassandra"' in listed.stdout, listed

        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.fill("#id_command", "sh -c 'echo kept > /data/note; sleep 300'")
        page.check("#id_detach")
        page.click("#storage-settings > summary")
        page.fill("#id_volumes", f"{volume}:/data")
        page.fill("#id_tmpfs", "/scratch:size=8m")
        page.locator("#storage-settings").screenshot(path=str(ARTIFACTS / "run-form-storage.png"))
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"))
        expect(page.locator("#state-badge")).to_have_text("running", timeout=30_000)
        mounts = page.locator("#mounts")
        volume_row = mounts.locator("tr[data-type=volume]")
        expect(volume_row).to_contain_text("/data")
        expect(volume_row.locator(f"a:has-text('{volume}')")).to_have_attribute(
            "href", f"/volumes/{volume}/")
        expect(volume_row).to_contain_text("rw")
        expect(mounts.locator("tr[data-type=tmpfs]")).to_contain_text("/scratch")
        page.screenshot(path=str(ARTIFACTS / "container-mounts.png"), full_page=True)

        page.goto(f"{url}/volumes/")
        row = _volume_row(page, volume)
        expect(row.locator(f".users a:has-text('{name}')")).to_be_visible()
        expect(row.locator(".size")).to_have_text("5B")  # "kept\n", written by the container
        page.screenshot(path=str(ARTIFACTS / "volumes.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button:has-text('Remove')").click()
        expect(page.locator(".message-error")).to_contain_text("in use")
        expect(_volume_row(page, volume)).to_have_count(1)

        removed = live_stack.docker_cli("rm", "-f", name, timeout=60)
        assert removed.returncode == 0, removed.stderr
        page.goto(f"{url}/volumes/{volume}/")
        expect(page.locator("h1")).to_contain_text(volume)
        expect(page.locator("#volume-users")).to_contain_text("None")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Remove')")
        page.wait_for_url(f"{url}/volumes/")
        expect(page.locator(".message-success")).to_contain_text(f"Volume {volume} removed")
        expect(_volume_row(page, volume)).to_have_count(0)
        assert live_stack.docker_cli("volume", "inspect", volume).returncode != 0
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)
        live_stack.docker_cli("volume", "rm", "-f", volume)


def test_host_bind_mount_is_refused_to_a_non_admin(live_stack, operator_page):
    from playwright.sync_api import expect

    page = operator_page
    name = f"web-bind-{secrets.token_hex(3)}"
    url = live_stack.panel_url
    try:
        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.click("#storage-settings > summary")
        page.fill("#id_volumes", "/etc:/host-etc:ro")
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(f"{url}/containers/new/")
        section = page.locator("#storage-settings")
        expect(section).to_have_attribute("open", "")
        error = section.locator(".field.has-error .field-error")
        expect(error).to_contain_text("/etc")
        expect(error).to_contain_text("does not allow bind mounts")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "storage-refused.png"), full_page=True)
        listed = live_stack.docker_cli("ps", "-a", "--filter", f"name={name}", "--format",
                                       "{{.Names}}")
        assert name not in listed.stdout  # nothing was created
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)
