"""The run form's Resources section and the container page's Limits card in a browser: a
container run with --memory 256m / --cpus 0.75 from the form shows them (and its cgroup has
them); a limit changed with the card's form (docker update) reaches the running container."""

import json
import re
import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

IMAGE = "busybox:1.29"
MiB = 1024 * 1024


def _host_config(live_stack, name):
    r = live_stack.docker_cli("inspect", name, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]["HostConfig"]


def test_run_with_limits_then_update_from_the_page(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-lim-{secrets.token_hex(3)}"
    url = live_stack.panel_url
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(f"{url}/containers/new/")
        page.fill("#id_image", IMAGE)
        page.fill("#id_name", name)
        page.fill("#id_command", "sleep 120")
        page.click("#resource-settings > summary")
        page.fill("#id_memory", "256m")
        page.fill("#id_cpus", "0.75")
        page.fill("#id_cpu_shares", "512")
        page.fill("#id_pids_limit", "64")
        page.screenshot(path=str(ARTIFACTS / "run-form-resources.png"), full_page=True)
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/"))
        card = page.locator("#limits")
        expect(card).to_contain_text("256 MiB")
        expect(card).to_contain_text("0.75")
        expect(card).to_contain_text("512")
        hc = _host_config(live_stack, name)
        assert (hc["Memory"], hc["NanoCpus"], hc["CpuShares"], hc["PidsLimit"]) == (
            256 * MiB, 750_000_000, 512, 64)

        # the card's form: docker update of the running container
        page.reload()
        expect(page.locator("#limits-form")).to_be_visible(timeout=30_000)
        page.fill("#limits-form input[name=memory]", "300m")
        page.fill("#limits-form input[name=pids_limit]", "40")
        page.click("#limits-form button[type=submit]")
        expect(page.locator("body")).to_contain_text("Update of the limits")
        for _ in range(50):
            if "300 MiB" in page.locator("#limits").inner_text():
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(page.locator("#limits")).to_contain_text("300 MiB")
        expect(page.locator("#limits")).to_contain_text("40")
        hc = _host_config(live_stack, name)
        assert (hc["Memory"], hc["PidsLimit"]) == (300 * MiB, 40)
        page.locator("#limits").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "container-limits.png"), full_page=True)

        # a bad value is refused with Docker's words
        page.fill("#limits-form input[name=memory]", "2m")
        page.click("#limits-form button[type=submit]")
        expect(page.locator("body")).to_contain_text("Minimum memory limit allowed is 6MB")
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)


def test_run_form_refuses_bad_limits(live_stack, page):
    from playwright.sync_api import expect

    page.goto(f"{live_stack.panel_url}/containers/new/")
    page.fill("#id_image", IMAGE)
    page.click("#resource-settings > summary")
    page.fill("#id_memory", "lots")
    page.fill("#id_cpus", "99")
    page.click("button[type=submit]:has-text('Run')")
    expect(page.locator("#resource-settings")).to_contain_text("Enter a size such as 256m")
    expect(page.locator("#resource-settings")).to_contain_text("Range of CPUs is from 0.01 to")
    page.screenshot(path="/tmp/dyA/run-form-errors.png", full_page=True)
