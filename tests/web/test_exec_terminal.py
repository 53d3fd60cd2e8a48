"""The container page's Exec form and its browser terminal (xterm.js over ws/exec/<id>/),
in a real browser against the live stack. Screenshot: test-artifacts/exec-terminal.png."""

import secrets

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def web(live_stack):
    name = f"web-exec-{secrets.token_hex(3)}"
    r = live_stack.docker_cli("run", "-d", "--name", name, "--hostname", "exechost",
                              "busybox:1.29", "sleep", "600")
    assert r.returncode == 0, r.stderr
    yield name, r.stdout.strip()
    live_stack.docker_cli("rm", "-f", name, timeout=60)


def _exec_inspect(live_stack, exec_id):
    from tests.api.conftest import raw_request

    status, _, body = raw_request(live_stack, "GET", f"/v1.41/exec/{exec_id}/json")
    assert status == 200, body
    return body


def test_exec_terminal_runs_a_shell_in_the_container(live_stack, page, web):
    from playwright.sync_api import expect

    name, container_id = web
    page.goto(f"{live_stack.panel_url}/containers/{container_id}/")
    page.fill("#exec-command", "sh")
    page.fill("#exec-workdir", "/tmp")
    page.click("#exec-open")
    # xterm.js paints nothing while it is out of view: look at it, as a person would
    page.locator("#exec-terminal").scroll_into_view_if_needed()
    box = page.locator("#exec-terminal")
    expect(box).to_have_attribute("data-state", "running", timeout=15_000)
    rows = box.locator(".xterm-rows")
    expect(rows).to_contain_text("#", timeout=15_000)  # the shell's prompt
    page.locator("#exec-terminal .xterm-helper-textarea").focus()
    page.keyboard.type("echo $((6*7)) $(hostname) $(pwd); ps -o pid,comm | head -2\n")
    expect(rows).to_contain_text("42 exechost /tmp", timeout=15_000)
    expect(rows).to_contain_text("1 sleep")  # the container's PID namespace
    page.keyboard.type("exit 3\n")
    expect(box).to_have_attribute("data-state", "exited", timeout=15_000)
    expect(box).to_have_attribute("data-exit-code", "3")
    expect(page.locator("#exec-status")).to_contain_text("exited with code 3")
    exec_id = box.get_attribute("data-exec-id")
    info = _exec_inspect(live_stack, exec_id)
    assert (info["Running"], info["ExitCode"], info["ProcessConfig"]["tty"]) == (False, 3, True)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "exec-terminal.png"), full_page=True)
    # the exec's output is not the container's log
    assert "exechost" not in page.locator("#log-output").inner_text()


def test_exec_form_errors_without_a_tty(live_stack, page, web):
    from playwright.sync_api import expect

    name, container_id = web
    page.goto(f"{live_stack.panel_url}/containers/{container_id}/")
    page.uncheck("#exec-tty")
    page.fill("#exec-command", "nosuch")
    page.click("#exec-open")
    # xterm.js paints nothing while it is out of view: look at it, as a person would
    page.locator("#exec-terminal").scroll_into_view_if_needed()
    expect(page.locator("#exec-error")).to_contain_text(
        'exec: "nosuch": executable file not found in $PATH', timeout=15_000)
    page.fill("#exec-command", "id")
    page.fill("#exec-user", "nosuchuser")
    page.click("#exec-open")
    # xterm.js paints nothing while it is out of view: look at it, as a person would
    page.locator("#exec-terminal").scroll_into_view_if_needed()
    expect(page.locator("#exec-error")).to_contain_text(
        "unable to find user nosuchuser: no matching entries in passwd file", timeout=15_000)
    page.fill("#exec-user", "nobody")
    page.fill("#exec-command", "sh -c 'id -u; echo err >&2'")
    page.click("#exec-open")
    # xterm.js paints nothing while it is out of view: look at it, as a person would
    page.locator("#exec-terminal").scroll_into_view_if_needed()
    box = page.locator("#exec-terminal")
    expect(box).to_have_attribute("data-state", "exited", timeout=15_000)
    expect(box.locator(".xterm-rows")).to_contain_text("65534")
    expect(box.locator(".xterm-rows")).to_contain_text("err")
    # a stopped container refuses exec with Docker's message
    assert live_stack.docker_cli("stop", "-t", "0", name).returncode == 0
    page.click("#exec-open")
    # xterm.js paints nothing while it is out of view: look at it, as a person would
    page.locator("#exec-terminal").scroll_into_view_if_needed()
    expect(page.locator("#exec-error")).to_contain_text(
        f"Container {container_id} is not running", timeout=15_000)
