"""`docker events` through the real CLI and docker-py: Docker's event shape, `since`
replaying the stored history, `until` ending the stream, filters."""

import json
import subprocess
import threading
import time

from .conftest import raw_request

IMAGE = "busybox:1.29"


def _events(cli, *args):
    r = cli("events", "--format", "{{json .}}", *args, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_lifecycle_events_replayed_with_since_and_until(cli, names):
    since = f"{time.time() - 1:.3f}"
    name = names("ev")
    r = cli("run", "--name", name, IMAGE, "sh", "-c", "exit 3")
    assert r.returncode == 3
    cid = cli("inspect", "-f", "{{.Id}}", name).stdout.strip()
    assert cli("rm", name).returncode == 0
    until = f"{time.time() + 1:.3f}"
    events = _events(cli, "--since", since, "--until", until, "--filter", f"container={cid}")
    actions = [e["Action"] for e in events]
    assert actions[0] == "create" and actions[-1] == "destroy", actions
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, actions
    assert actions.index("start") < actions.index("die") < actions.index("destroy")
    die = events[actions.index("die")]
    assert die["Type"] == "container" and die["id"] == cid and die["status"] == "die"
    assert die["Actor"]["ID"] == cid and die["scope"] == "local"
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["name"] == name
    assert die["Actor"]["Attributes"]["image"] == IMAGE and die["from"] == IMAGE
    assert die["time"] == die["timeNano"] // 10**9
    times = [e["timeNano"] for e in events]
    assert times == sorted(times)

    only = _events(cli, "--since", since, "--until", until, "--filter", f"container={name}",
                   "--filter", "event=die")
    assert [e["Action"] for e in only] == ["die"]
    assert _events(cli, "--since", since, "--until", until, "--filter", f"container={cid}",
                   "--filter", "type=image") == []


def test_live_stream_with_docker_py(docker_client, names):
    name = names("live")
    seen = []
    stream = docker_client.events(decode=True, filters={"container": name})
    done = threading.Event()

    def follow():
        for event in stream:
            seen.append(event)
            if event.get("Action") == "destroy":
                break
        done.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    time.sleep(0.5)
    c = docker_client.containers.run(IMAGE, ["sleep", "100"], name=name, detach=True,
                                     labels={"dy.test": "yes"})
    c.pause()
    c.unpause()
    c.kill()
    c.wait(timeout=30)
    c.remove()
    assert done.wait(30), [e.get("Action") for e in seen]
    stream.close()
    actions = [e["Action"] for e in seen]
    for wanted in ("create", "start", "pause", "unpause", "kill", "die", "destroy"):
        assert wanted in actions, actions
    assert all(e["Actor"]["Attributes"].get("dy.test") == "yes" for e in seen)
    kill = seen[actions.index("kill")]
    assert kill["Actor"]["Attributes"]["signal"] == "9"


def test_label_filter_and_cli_stream(live_stack, cli, names):
    name = names("lbl")
    proc = subprocess.Popen(
        [__import__("shutil").which("docker") or "/usr/local/bin/docker", "-H",
         live_stack.docker_host, "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}",
         "--filter", "label=dy.kind=events-test"],
        stdout=subprocess.PIPE, text=True,
        env={"DOCKER_CONFIG": str(live_stack.tmp / "docker-config"), "PATH": "/usr/bin:/bin"})
    try:
        time.sleep(1.0)
        other = names("other")
        assert cli("run", "--name", other, IMAGE, "true").returncode == 0
        assert cli("run", "--rm", "--name", name, "--label", "dy.kind=events-test", IMAGE,
                   "true").returncode == 0
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(x.startswith("destroy") for x in lines):
            lines.append(proc.stdout.readline().strip())
        assert f"start {name}" in lines and f"destroy {name}" in lines, lines
        assert not any(other in x for x in lines)
    finally:
        proc.kill()
        proc.wait()


def test_bad_parameters(live_stack):
    status, _h, body = raw_request(live_stack, "GET", "/v1.41/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
    assert status == 400 and "invalid filter 'bogus'" in body["message"]
    status, _h, body = raw_request(live_stack, "GET", "/v1.41/events?since=yesterday")
    assert status == 400
