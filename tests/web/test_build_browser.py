"""The build pages in a real browser, on the live stack: a build whose log arrives live from its
first line and ends in "Successfully built", an uploaded context, a failing RUN shown with its
step, command and exit code, Cancel stopping a `RUN sleep 30` step, and a viewer's notice
instead of the form.

Screenshots go to test-artifacts/ (gitignored): build-form.png, build-running.png,
build-succeeded.png, build-reopened.png, build-cached.png, build-upload.png, build-failed.png,
build-cancelled.png, build-viewer.png.
"""

import io
import secrets
import tarfile
import time

import pytest

from .conftest import ARTIFACTS, _logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.live]

LIVE_DOCKERFILE = """FROM busybox:1.29
ARG GREETING=hello
RUN echo "$GREETING from the build" > /greeting && for i in $(seq 1 60); do echo line $i; done \\
    && sleep 2 && echo after the pause
ENV MODE=web
CMD ["cat", "/greeting"]
"""


def _tag(name: str) -> str:
    return f"web-build-{name}-{secrets.token_hex(3)}:1.0"


def _open_form(live_stack, page):
    page.goto(f"{live_stack.panel_url}/images/")
    page.click(".page-head a:has-text('Build')")
    page.wait_for_url(f"{live_stack.panel_url}/images/build/")


def _start(page, dockerfile: str, tag: str = ""):
    page.check("input[name=source][value=dockerfile]")
    page.fill("#id_dockerfile_text", dockerfile)
    page.fill("#id_tags", tag)
    page.click("#build-form-card button:has-text('Build')")


def _leftovers(live_stack, tag: str) -> list[str]:
    """What a failed or cancelled build must not leave: its tag, its RUN containers."""
    found = []
    if live_stack.docker_cli("image", "inspect", tag).returncode == 0:
        found.append(tag)
    listed = live_stack.docker_cli("ps", "-aq", "--filter", "label=dockyard.build")
    found += listed.stdout.split()
    return found


def _log_is_at_its_end(page) -> bool:
    return page.evaluate("""() => { const log = document.getElementById('build-log');
        return log.scrollHeight > log.clientHeight
            && log.scrollHeight - log.scrollTop - log.clientHeight < 24; }""")


def test_a_build_with_a_live_log(live_stack, page):
    from playwright.sync_api import expect

    url = live_stack.panel_url
    tag = _tag("live")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _open_form(live_stack, page)
        expect(page.locator("nav.mainnav a.active")).to_have_text("Images")
        page.screenshot(path=str(ARTIFACTS / "build-form.png"), full_page=True)
        _start(page, LIVE_DOCKERFILE, "Not A Tag!")  # a form error, in place
        expect(page.locator("#build-form-card .field-error")).to_contain_text(
            "invalid reference format")
        expect(page.locator("#build")).to_be_hidden()
        assert page.url == f"{url}/images/build/"
        expect(page.locator("#id_dockerfile_text")).to_have_value(LIVE_DOCKERFILE)

        page.fill("#id_tags", tag)
        page.fill("#id_build_args", "GREETING=hi")
        page.click("#build-form-card button:has-text('Build')")
        page.wait_for_url(f"{url}/images/builds/*/")
        box = page.locator("#build")
        log = box.locator("#build-log")
        expect(log).to_contain_text("line 60", timeout=120_000)
        # live: the RUN step's output is there while the step still runs
        expect(box.locator("#build-state")).to_have_text("running")
        expect(box.locator(".build-step[data-step='3']")).to_have_attribute("data-state",
                                                                            "running")
        expect(box.locator("#build-step")).to_contain_text("Step 3 of 5: RUN echo")
        assert _log_is_at_its_end(page)  # the log follows its new lines
        page.screenshot(path=str(ARTIFACTS / "build-running.png"), full_page=True)

        expect(box.locator("#build-state")).to_have_text("succeeded", timeout=120_000)
        text = log.inner_text()
        assert text.startswith("Step 1/5 : FROM busybox:1.29"), text[:200]  # no line lost
        for line in ("Step 2/5 : ARG GREETING=hello", "line 1\n", "after the pause",
                     "Step 5/5 : CMD [\"cat\", \"/greeting\"]", "Successfully built ",
                     f"Successfully tagged {tag}"):
            assert line in text, line
        steps = box.locator(".build-step")
        expect(steps).to_have_count(5)
        expect(box.locator(".build-step[data-state=done], .build-step[data-state=cached]")
               ).to_have_count(5)
        assert box.locator("#build-progress").evaluate("m => m.value === m.max")
        expect(box.locator("#build-cancel")).to_be_hidden()
        outcome = box.locator(".build-outcome[data-state=succeeded]")
        expect(outcome).to_contain_text(tag)
        assert _log_is_at_its_end(page)
        page.screenshot(path=str(ARTIFACTS / "build-succeeded.png"), full_page=True)
        log.evaluate("log => { log.scrollTop = 0; }")  # scrolling up to read: no more following
        expect(box.locator("#build-follow")).not_to_be_checked()
        log.evaluate("log => { log.scrollTop = log.scrollHeight; }")
        expect(box.locator("#build-follow")).to_be_checked()

        build_url = page.url
        outcome.locator("a.built-tag").click()
        page.wait_for_url(f"{url}/images/*/")
        expect(page.locator("h1")).to_have_text(tag)
        expect(page.locator("#image-config")).to_contain_text("MODE=web")
        ran = live_stack.docker_cli("run", "--rm", tag)
        assert ran.stdout == "hi from the build\n", ran

        page.goto(f"{url}/images/build/")  # the recent builds lead back to it
        page.click(f"#recent-builds a:has-text('{tag}')")
        page.wait_for_url(build_url)
        expect(page.locator(".build-outcome[data-state=succeeded]")).to_contain_text(tag)
        expect(page.locator("#build-meta")).to_contain_text("it took")
        expect(page.locator("#build-log-note")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "build-reopened.png"), full_page=True)

        _open_form(live_stack, page)  # the same build again: every step after FROM is cached
        page.fill("#id_build_args", "GREETING=hi")
        _start(page, LIVE_DOCKERFILE, tag)
        expect(page.locator("#build-state")).to_have_text("succeeded", timeout=120_000)
        expect(page.locator(".build-step[data-state=cached]")).to_have_count(4)
        expect(page.locator("#build-step")).to_have_text("All 5 steps done, 4 from the cache")
        expect(page.locator(".build-step[data-step='3']")).to_have_attribute("data-state",
                                                                             "cached")
        expect(page.locator("#build-log")).not_to_contain_text("line 1\n")
        page.screenshot(path=str(ARTIFACTS / "build-cached.png"), full_page=True)
    finally:
        live_stack.docker_cli("rmi", "-f", tag)


def _context_archive(path):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("docker/Dockerfile.app",
                            b"FROM busybox:1.29\nWORKDIR /srv\nCOPY message.txt .\n"
                            b"CMD [\"cat\", \"/srv/message.txt\"]\n"),
                           ("message.txt", b"copied from the upload\n")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))


def test_an_uploaded_context(live_stack, page, tmp_path):
    from playwright.sync_api import expect

    tag = _tag("upload")
    archive = tmp_path / "context.tar.gz"
    _context_archive(archive)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _open_form(live_stack, page)
        page.check("input[name=source][value=upload]")
        expect(page.locator("#id_dockerfile_text")).to_be_hidden()
        page.set_input_files("#id_context", str(archive))
        page.fill("#id_dockerfile", "docker/Dockerfile.app")
        page.fill("#id_tags", tag)
        page.click("#build-form-card button:has-text('Build')")
        box = page.locator("#build")
        expect(box.locator("#build-state")).to_have_text("succeeded", timeout=120_000)
        expect(box.locator("#build-log")).to_contain_text("Step 3/4 : COPY message.txt .")
        expect(box.locator(".build-outcome")).to_contain_text(tag)
        page.screenshot(path=str(ARTIFACTS / "build-upload.png"), full_page=True)
        ran = live_stack.docker_cli("run", "--rm", tag)
        assert ran.stdout == "copied from the upload\n", ran
    finally:
        live_stack.docker_cli("rmi", "-f", tag)


def test_a_failing_run_shows_its_step_command_and_exit_code(live_stack, page):
    from playwright.sync_api import expect

    tag = _tag("failed")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _open_form(live_stack, page)
        _start(page, "FROM busybox:1.29\nRUN echo before\nRUN echo about to fail && exit 3\n"
                     "RUN echo never\n", tag)
        box = page.locator("#build")
        expect(box.locator("#build-state")).to_have_text("failed", timeout=120_000)
        outcome = box.locator(".build-outcome[data-state=failed]")
        expect(outcome).to_contain_text("Step 3/4 (RUN echo about to fail && exit 3) failed")
        expect(outcome.locator(".exit-code")).to_have_text("3")
        expect(outcome.locator(".failed-command")).to_have_text(
            "/bin/sh -c echo about to fail && exit 3")
        expect(box.locator(".build-step[data-state=failed]")).to_have_attribute("data-step", "3")
        expect(box.locator(".build-step")).to_have_count(3)
        expect(box.locator("#build-log")).to_contain_text("about to fail")
        expect(box.locator("#build-log .stderr")).to_have_text(
            "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3\n")
        expect(box.locator("#build-log")).not_to_contain_text("Step 4/4")
        page.screenshot(path=str(ARTIFACTS / "build-failed.png"), full_page=True)
        assert _leftovers(live_stack, tag) == []
    finally:
        live_stack.docker_cli("rmi", "-f", tag)


def test_cancel_stops_a_running_step(live_stack, page):
    from playwright.sync_api import expect

    tag = _tag("cancel")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        _open_form(live_stack, page)
        _start(page, "FROM busybox:1.29\nRUN echo sleeping now && sleep 30\nRUN echo never\n", tag)
        box = page.locator("#build")
        expect(box.locator("#build-log")).to_contain_text("sleeping now", timeout=120_000)
        started = time.monotonic()
        page.once("dialog", lambda dialog: dialog.accept())
        box.locator("#build-cancel button").click()
        expect(box.locator("#build-cancel button")).to_have_text("Cancelling…")
        expect(box.locator("#build-state")).to_have_text("cancelled", timeout=30_000)
        assert time.monotonic() - started < 25  # the sleep was stopped, not waited for
        expect(box.locator(".build-outcome[data-cancelled]")).to_contain_text("Build cancelled")
        expect(box.locator(".build-step[data-step='2']")).to_have_attribute("data-state",
                                                                            "cancelled")
        expect(box.locator("#build-cancel")).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / "build-cancelled.png"), full_page=True)
        assert _leftovers(live_stack, tag) == []
    finally:
        live_stack.docker_cli("rmi", "-f", tag)


@pytest.fixture
def viewer_page(browser, live_stack):
    """A page logged in as a new viewer of the live stack's default team."""
    username, password = f"viewer-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    live_stack.manage("shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from panel.teams.models import Membership\n"
        "from panel.teams.services import default_team\n"
        f"user = get_user_model().objects.create_user({username!r}, password={password!r})\n"
        "Membership.objects.create(user=user, team=default_team(), role='viewer')\n"))
    yield from _logged_in_page(browser, live_stack, username, password)


def test_a_viewer_gets_a_read_only_notice(live_stack, viewer_page):
    from playwright.sync_api import expect

    page = viewer_page
    page.goto(f"{live_stack.panel_url}/images/")
    expect(page.locator(".page-head a:has-text('Build')")).to_have_count(0)
    page.goto(f"{live_stack.panel_url}/images/build/")
    expect(page.locator("#build-form-card")).to_contain_text("You may not build images")
    expect(page.locator("form[data-build-form]")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "build-viewer.png"), full_page=True)
