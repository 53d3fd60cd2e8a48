"""The run form's process settings, rename and the Processes section; the services behind
them (rename, host-namespace policy, joining another container's namespaces)."""

import os
import re
import secrets

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers import services
from panel.containers.models import Container
from panel.containers.policy import Forbidden
from panel.errors import Conflict, InvalidParameter

from .conftest import make_user

TINI = "/usr/bin/tini-static"


@pytest.fixture
def box(alice, blue, image):
    return Container.objects.create(id="c" * 64, name="blue-box", team=blue, node=image.node,
                                    image=image, image_ref="busybox:1.29", spec={"Config": {}})


# --------------------------------------------------------------------------- run form


def test_form_shows_the_process_settings(login, alice, image):
    content = login(alice).get("/containers/new/").content.decode()
    for field in ("user", "working_dir", "entrypoint", "labels", "restart_policy", "init",
                  "stop_signal", "stop_timeout"):
        assert f'id="id_{field}"' in content, field
    assert '<details class="advanced" id="process-settings">' in content  # closed
    assert '<option value="unless-stopped">' in content


@pytest.mark.skipif(not os.path.isfile(TINI), reason="tini not installed")
def test_run_with_process_settings(login, alice, image, enqueued):
    response = login(alice).post("/containers/new/", {
        "image": "busybox:1.29", "name": "web2", "command": "-c 'echo hi'",
        "user": "nobody:tty", "working_dir": "/srv", "entrypoint": "sh",
        "labels": "tier=web\nflag\n", "restart_policy": "on-failure", "init": "on",
        "stop_signal": "usr1", "stop_timeout": "3",
    })
    assert response.status_code == 302
    c = Container.objects.get(name="web2")
    assert (c.user, c.working_dir, c.entrypoint, c.cmd) == ("nobody:tty", "/srv", ["sh"],
                                                            ["-c", "echo hi"])
    assert c.labels == {"tier": "web", "flag": ""}
    config, host_config = c.spec["Config"], c.spec["HostConfig"]
    assert (config["StopSignal"], config["StopTimeout"]) == ("USR1", 3)
    assert host_config == {"RestartPolicy": {"Name": "on-failure"}, "Init": True}
    from panel.containers.specs import runtime_spec

    spec = runtime_spec(c, ["/nonexistent"])
    assert spec.init_path == TINI and spec.args == ["sh", "-c", "echo hi"]
    assert (spec.stop_signal, spec.stop_timeout, spec.user) == ("USR1", 3, "nobody:tty")


@pytest.mark.parametrize("data, field, message", [
    ({"user": "a b"}, "user", "invalid user"),
    ({"working_dir": "relative"}, "working_dir", "absolute path"),
    ({"entrypoint": "'open"}, "entrypoint", "Cannot split"),
    ({"labels": "=v"}, "labels", "needs a key"),
    ({"stop_signal": "SIGNOPE"}, "stop_signal", "Unknown signal"),
    ({"stop_timeout": "-5"}, "stop_timeout", "greater than or equal to -1"),
    ({"restart_policy": "sometimes"}, "restart_policy", "Select a valid choice"),
])
def test_process_settings_errors_create_nothing(login, alice, image, enqueued, data, field,
                                                message):
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field]), errors
    assert '<details class="advanced" id="process-settings" open>' in response.content.decode()
    assert not Container.objects.exists()
    assert enqueued == []


# --------------------------------------------------------------------------- rename


def test_rename_service_and_audit(alice, box, viewer, image, blue):
    services.rename(acting_user=alice, container=box, new_name="green-box")
    box.refresh_from_db()
    assert box.name == "green-box"
    event = AuditEvent.objects.get(action="container.rename")
    assert (event.before, event.after) == ({"name": "blue-box"}, {"name": "green-box"})
    other = Container.objects.create(id="d" * 64, name="other", team=blue, node=image.node,
                                     image=image, image_ref="busybox:1.29", spec={})
    with pytest.raises(Conflict) as exc:
        services.rename(acting_user=alice, container=box, new_name="other")
    assert exc.value.message == (
        f'Conflict. The container name "/other" is already in use by container "{other.id}". '
        "You have to remove (or rename) that container to be able to reuse that name.")
    for bad in ("", "-x", "a b", "/"):
        with pytest.raises(InvalidParameter):
            services.rename(acting_user=alice, container=box, new_name=bad)
    with pytest.raises(InvalidParameter, match="same name"):
        services.rename(acting_user=alice, container=box, new_name="green-box")
    with pytest.raises(PermissionDenied):
        services.rename(acting_user=viewer, container=box, new_name="viewer-box")
    box.refresh_from_db()
    assert box.name == "green-box"
    assert AuditEvent.objects.filter(action="container.rename").count() == 1


def test_rename_view(login, alice, mallory, viewer, box):
    client = login(alice)
    page = client.get(f"/containers/{box.id}/").content.decode()
    assert f'action="/containers/{box.id}/rename/"' in page
    response = client.post(f"/containers/{box.id}/rename/", {"name": "renamed"}, follow=True)
    assert "Renamed blue-box to renamed." in response.content.decode()
    box.refresh_from_db()
    assert box.name == "renamed"
    response = client.post(f"/containers/{box.id}/rename/", {"name": "bad name"}, follow=True)
    assert "Invalid container name (bad name)" in response.content.decode()
    assert login(mallory).post(f"/containers/{box.id}/rename/", {"name": "x1"}).status_code == 404
    response = login(viewer).post(f"/containers/{box.id}/rename/", {"name": "x2"}, follow=True)
    assert "You may not operate in team blue" in response.content.decode()
    assert f'action="/containers/{box.id}/rename/"' not in response.content.decode()
    box.refresh_from_db()
    assert box.name == "renamed"


def test_processes_of_a_stopped_container(login, alice, mallory, box):
    content = login(alice).get(f"/containers/{box.id}/top/").content.decode()
    assert "blue-box is not running: no processes." in content
    page = login(alice).get(f"/containers/{box.id}/").content.decode()
    assert 'id="processes"' in page and "processes.js" in page
    assert login(mallory).get(f"/containers/{box.id}/top/").status_code == 404


# --------------------------------------------------------------------------- namespaces


def test_host_namespaces_are_a_site_admin_privilege(alice, blue, image, enqueued):
    for field in ("PidMode", "IpcMode", "UTSMode"):
        with pytest.raises(Forbidden, match="policy of team blue does not allow") as exc:
            services.create(acting_user=alice, team=blue,
                            config={"Image": "busybox:1.29"}, host_config={field: "host"})
        assert exc.value.status == 403
    assert not Container.objects.exists()
    admin = make_user("root", is_superuser=True)
    c = services.create(acting_user=admin, team=blue, config={"Image": "busybox:1.29"},
                        host_config={"PidMode": "host", "IpcMode": "host", "UTSMode": "host"})
    from panel.containers.specs import runtime_spec

    spec = runtime_spec(c, ["/x"])
    assert (spec.pid_mode, spec.ipc_mode, spec.uts_mode) == ("host", "host", "host")


def test_joining_a_container(alice, box, blue, image, mallory, enqueued):
    with pytest.raises(InvalidParameter, match="No such container: nosuch"):
        services.create(acting_user=alice, team=blue, config={"Image": "busybox:1.29"},
                        host_config={"PidMode": "container:nosuch"})
    with pytest.raises(Conflict, match="is not running"):
        services.create(acting_user=alice, team=blue, config={"Image": "busybox:1.29"},
                        host_config={"IpcMode": "container:blue-box"})
    Container.objects.filter(pk=box.pk).update(state="running")
    c = services.create(acting_user=alice, team=blue, config={"Image": "busybox:1.29"},
                        host_config={"IpcMode": "container:blue-box",
                                     "PidMode": f"container:{box.id[:10]}"})
    assert c.spec["Joins"] == {"pid": box.id, "ipc": box.id}
    assert c.spec["HostConfig"]["IpcMode"] == "container:blue-box"  # as asked, like Docker
    from panel.containers.specs import runtime_spec

    spec = runtime_spec(c, ["/x"])
    assert (spec.pid_mode, spec.ipc_mode) == (f"container:{box.id}", f"container:{box.id}")
    # another team's container is not there for them
    with pytest.raises(InvalidParameter, match="No such container"):
        services.create(acting_user=mallory, config={"Image": "busybox:1.29"},
                        host_config={"PidMode": "container:blue-box"})
    for host_config, message in (({"PidMode": "bogus"}, "invalid PID mode: bogus"),
                                 ({"IpcMode": "container:"}, "invalid IPC mode"),
                                 ({"UTSMode": "container:x"}, "invalid UTS mode"),
                                 ({"GroupAdd": "tty"}, "GroupAdd must be a list"),
                                 ({"Init": "yes"}, "Init must be a boolean")):
        with pytest.raises(InvalidParameter, match=message):
            services.create(acting_user=alice, team=blue, config={"Image": "busybox:1.29"},
                            host_config=host_config)


# --------------------------------------------------------------------------- in a browser


@pytest.mark.browser
@pytest.mark.skipif(not os.path.isfile(TINI), reason="tini not installed")
def test_browser_run_form_fields_processes_and_rename(live_stack, page):
    from playwright.sync_api import expect

    name = f"web-more-{secrets.token_hex(3)}"
    renamed = name + "-b"
    page.goto(f"{live_stack.panel_url}/containers/new/")
    page.fill("#id_image", "busybox:1.29")
    page.fill("#id_name", name)
    page.fill("#id_command", "-c 'echo started as $(id -un) in $(pwd); sleep 600'")
    page.click("#process-settings summary")
    page.fill("#id_user", "nobody")
    page.fill("#id_working_dir", "/srv/work")
    page.fill("#id_entrypoint", "sh")
    page.fill("#id_labels", "tier=web")
    page.select_option("#id_restart_policy", "on-failure")
    page.check("#id_init")
    page.fill("#id_stop_signal", "SIGUSR1")
    page.fill("#id_stop_timeout", "2")
    page.check("#id_detach")
    try:
        page.click("button[type=submit]:has-text('Run')")
        page.wait_for_url(re.compile(r"/containers/[0-9a-f]{64}/$"))
        expect(page.locator("#state-badge")).to_have_text("running", timeout=30_000)
        expect(page.locator("#log-output")).to_contain_text("started as nobody in /srv/work",
                                                            timeout=15_000)
        # Processes: tini as PID 1 of the container, the command under it; refreshed live
        table = page.locator("#top-table")
        expect(table).to_contain_text("/sbin/docker-init -- sh -c", timeout=15_000)
        expect(table.locator("thead")).to_contain_text("PPID")
        page.select_option("#top-args", "aux")
        expect(table.locator("thead")).to_contain_text("%MEM", timeout=10_000)
        expect(table.locator("tbody tr")).to_have_count(2, timeout=10_000)  # tini, sh -> sleep
        page.click("#top-refresh")
        expect(table).to_contain_text("sleep 600")
        inspect = live_stack.docker_cli("inspect", "--format",
                                        "{{.Config.User}}|{{.Config.WorkingDir}}|"
                                        "{{json .Config.Entrypoint}}|{{.Config.Labels.tier}}|"
                                        "{{.HostConfig.RestartPolicy.Name}}|{{.HostConfig.Init}}|"
                                        "{{.Config.StopSignal}}|{{.Config.StopTimeout}}", name)
        assert inspect.stdout.strip() == \
            'nobody|/srv/work|["sh"]|web|on-failure|true|SIGUSR1|2', inspect.stderr

        # rename from the container page
        page.click("details.rename summary")
        page.fill("#rename-name", renamed)
        page.click("button:has-text('Save name')")
        expect(page.locator(".message-success")).to_contain_text(f"Renamed {name} to {renamed}.")
        expect(page.locator("h1")).to_contain_text(renamed)
        r = live_stack.docker_cli("ps", "--filter", f"name={renamed}", "--format", "{{.Names}}")
        assert r.stdout.split() == [renamed]
        # a name in use is refused with Docker's message
        taken = live_stack.docker_cli("create", "--name", name, "busybox:1.29")
        assert taken.returncode == 0, taken.stderr
        page.click("details.rename summary")
        page.fill("#rename-name", name)
        page.click("button:has-text('Save name')")
        expect(page.locator(".message-error")).to_contain_text(
            f'The container name "/{name}" is already in use')
        expect(page.locator("h1")).to_contain_text(renamed)
    finally:
        for n in (name, renamed):
            live_stack.docker_cli("rm", "-f", n, timeout=60)


def test_names_and_prefixes_resolve_like_docker(alice, box, blue, image):
    twin = Container.objects.create(id="c" * 63 + "d", name="twin", team=blue, node=image.node,
                                    image=image, image_ref="busybox:1.29", spec={})
    assert services.resolve(alice, "blue-box") == box
    assert services.resolve(alice, "/blue-box") == box
    assert services.resolve(alice, "c" * 64) == box
    assert services.resolve(alice, "c" * 63 + "d") == twin
    with pytest.raises(InvalidParameter, match="multiple IDs found with provided prefix: ccc"):
        services.resolve(alice, "ccc")
