"""The images pages in a real browser, on the live stack, against a registry on loopback.

Screenshots go to test-artifacts/ (gitignored): image-pull.png, image-detail.png,
image-push.png, image-load.png, images.png, image-pull-failed.png, registry-credentials.png,
registry-login-refused.png.
"""

import json
import os
import secrets
import tarfile

import pytest
from registry import file_layer

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _layers() -> list[bytes]:
    """Three layers, one of them a few MB so that it downloads in several progress steps."""
    return [file_layer("etc/greeting", b"hello from the registry\n"),
            file_layer("opt/blob.bin", os.urandom(6 << 20)),
            file_layer("opt/notes.txt", b"third layer\n")]


# The image's config as a build makes it: its history names each layer's step.
CONFIG = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/opt"},
          "history": [{"created": "2025-01-01T00:00:00Z", "created_by": f"COPY {step}"}
                      for step in ("greeting /etc/", "blob.bin /opt/", "notes.txt /opt/")]}


def _follow_job(page, *, timeout=120_000):
    """Wait for the progress card's job to succeed; returns the card."""
    from playwright.sync_api import expect

    box = page.locator("#job-progress")
    expect(box).to_be_visible()
    expect(box.locator("#job-state")).to_have_text("succeeded", timeout=timeout)
    expect(box.locator(".job-outcome[data-state=succeeded]")).to_be_visible()
    return box


def test_pull_with_live_progress_save_and_load(live_stack, page, registry, tmp_path):
    from playwright.sync_api import expect

    url = live_stack.panel_url
    ref = f"{registry.host}/web-pull-{secrets.token_hex(3)}:latest"
    pushed = f"{registry.host}/web-push-{secrets.token_hex(3)}:v1"
    registry.push_image(ref.split("/", 1)[1].rsplit(":", 1)[0], _layers(), CONFIG)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.click("nav.mainnav a:has-text('Images')")
        page.wait_for_url(f"{url}/images/")
        page.click("a:has-text('Pull or load')")
        page.wait_for_url(f"{url}/images/pull/")
        page.fill("#pull-card input[name=reference]", ref)
        page.click("#pull-card button:has-text('Pull')")
        box = _follow_job(page)
        bars = box.locator(".job-layer")
        expect(bars).to_have_count(3)
        expect(box.locator(".job-layer[data-state=done]")).to_have_count(3)
        for index in range(3):
            meter = bars.nth(index).locator("progress")
            assert meter.evaluate("m => m.value === m.max && m.max > 0"), index
        statuses = box.locator(".layer-status").all_inner_texts()
        assert all(status == "Pull complete" for status in statuses), statuses
        expect(box.locator("#job-lines")).to_contain_text("Digest: sha256:")
        expect(box.locator("#job-lines")).to_contain_text(
            f"Status: Downloaded newer image for {ref}")
        expect(box.locator("#job-outcome")).to_contain_text(f"Image {ref}")
        assert page.url == f"{url}/images/pull/"  # followed on the page itself
        page.screenshot(path=str(ARTIFACTS / "image-pull.png"), full_page=True)

        box.locator("#job-outcome a").first.click()
        page.wait_for_url(f"{url}/images/*/")
        expect(page.locator("h1")).to_have_text(ref)
        expect(page.locator("#image-layers tbody tr")).to_have_count(3)
        expect(page.locator("#image-layers")).to_contain_text("6.298MB")
        expect(page.locator("#image-digests")).to_contain_text(
            f"{ref.rsplit(':', 1)[0]}@sha256:")
        expect(page.locator("#image-config")).to_contain_text("PATH=/bin")
        expect(page.locator("#image-history")).to_contain_text("COPY blob.bin /opt/")
        page.screenshot(path=str(ARTIFACTS / "image-detail.png"), full_page=True)
        detail_url = page.url

        page.fill(".tag-form input[name=target]", pushed)
        page.click(".tag-form button:has-text('Add tag')")
        expect(page.locator(".message-success")).to_contain_text(f"as {pushed}")
        page.select_option("#push-form select[name=tag]", pushed)
        page.click("#push-form button:has-text('Push')")
        page.wait_for_url(f"{url}/images/jobs/*/")
        box = _follow_job(page)
        expect(box.locator("#job-title")).to_have_text(f"Push {pushed}")
        expect(box.locator("#job-lines")).to_contain_text("v1: digest: sha256:")
        expect(box.locator("#job-outcome")).to_contain_text(f"Pushed {pushed}")
        assert registry.skopeo_inspect(pushed.split("/", 1)[1])["Layers"]
        page.screenshot(path=str(ARTIFACTS / "image-push.png"), full_page=True)
        page.goto(detail_url)
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator(f"#image-tags form:has(input[value='{pushed}']) button").click()
        expect(page.locator(".message-success")).to_contain_text(f"Untagged {pushed}")

        with page.expect_download() as download_info:
            page.click("button:has-text('Save (.tar)')")
        download = download_info.value
        expect(page.locator("button:has-text('Save (.tar)')")).to_be_enabled(timeout=10_000)
        assert download.suggested_filename.endswith("_latest.tar")
        saved = tmp_path / "saved.tar"
        download.save_as(saved)
        with tarfile.open(saved) as archive:
            manifest = json.load(archive.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [ref] and len(manifest[0]["Layers"]) == 3

        page.check("#remove-form input[name=force]")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#remove-form button:has-text('Remove')")
        page.wait_for_url(f"{url}/images/")
        expect(page.locator(".message-success")).to_contain_text("Deleted sha256:")
        assert live_stack.docker_cli("image", "inspect", ref).returncode != 0

        page.goto(f"{url}/images/pull/")
        page.set_input_files("#load-card input[type=file]", str(saved))
        page.click("#load-card button:has-text('Upload and load')")
        box = _follow_job(page)
        expect(box.locator("#job-outcome")).to_contain_text(ref)
        page.screenshot(path=str(ARTIFACTS / "image-load.png"), full_page=True)
        assert page.evaluate("document.querySelector('#pull-card input[name=job_id]').value")
        page.goto(detail_url)
        expect(page.locator("h1")).to_have_text(ref)  # the same id: the same image is back

        page.goto(f"{url}/images/")
        row = page.locator("#image-table tr", has_text=ref)
        expect(row.locator(".layers")).to_have_text("3")
        expect(row.locator(".users")).to_have_text("unused")
        page.screenshot(path=str(ARTIFACTS / "images.png"), full_page=True)
    finally:
        live_stack.docker_cli("rmi", "-f", ref, pushed)


def test_a_failed_pull_shows_the_registry_error(live_stack, page, registry):
    from playwright.sync_api import expect

    page.goto(f"{live_stack.panel_url}/images/pull/")
    page.fill("#pull-card input[name=reference]", f"{registry.host}/no-such-repo:latest")
    page.click("#pull-card button:has-text('Pull')")
    box = page.locator("#job-progress")
    expect(box.locator("#job-state")).to_have_text("failed", timeout=60_000)
    expect(box.locator(".job-outcome[data-state=failed]")).to_contain_text("no-such-repo")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "image-pull-failed.png"), full_page=True)
    page.fill("#pull-card input[name=reference]", "Not A Reference")
    page.click("#pull-card button:has-text('Pull')")
    expect(page.locator("#pull-card .field-error")).to_contain_text("invalid reference format")


def test_registry_credentials_never_shown_back(live_stack, page, basic_registry):
    from playwright.sync_api import expect

    url = live_stack.panel_url
    host = basic_registry.host
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{url}/images/")
    page.click("a:has-text('Registry credentials')")
    page.wait_for_url(f"{url}/images/credentials/")
    try:
        page.fill("#id_registry", host)
        page.fill("#id_username", basic_registry.username)
        page.fill("#id_password", "wrong-" + basic_registry.password)
        page.click("button:has-text('Log in and save')")
        expect(page.locator("#add-credential .form-error")).to_be_visible()
        assert basic_registry.password not in page.content()
        expect(page.locator("#id_password")).to_have_value("")
        page.screenshot(path=str(ARTIFACTS / "registry-login-refused.png"), full_page=True)

        page.fill("#id_password", basic_registry.password)
        page.click("button:has-text('Log in and save')")
        expect(page.locator(".message-success")).to_contain_text(f"Login to {host}")
        row = page.locator(f"#credential-table tr[data-registry='{host}']")
        expect(row).to_contain_text(basic_registry.username)
        assert basic_registry.password not in page.content()
        page.screenshot(path=str(ARTIFACTS / "registry-credentials.png"), full_page=True)

        # the team's login is what a pull from that registry uses
        name = f"{host}/web-private-{secrets.token_hex(3)}:latest"
        basic_registry.push_image(name.split("/", 1)[1].rsplit(":", 1)[0],
                                  [file_layer("etc/private", b"for members only\n")])
        page.goto(f"{url}/images/pull/")
        page.fill("#pull-card input[name=reference]", name)
        page.click("#pull-card button:has-text('Pull')")
        _follow_job(page, timeout=60_000)
        live_stack.docker_cli("rmi", "-f", name)

        page.goto(f"{url}/images/credentials/")
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("button:has-text('Remove')").click()
        expect(page.locator(".message-success")).to_contain_text("Removed the credentials")
        expect(page.locator(f"#credential-table tr[data-registry='{host}']")).to_have_count(0)
    finally:
        live_stack.manage("shell", "-c", (
            "from panel.images.models import RegistryCredential\n"
            f"RegistryCredential.objects.filter(registry={host!r}).delete()\n"))
