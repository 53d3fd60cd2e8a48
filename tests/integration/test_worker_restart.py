"""A container and its log stream go on while the worker restarts; nothing the user made is lost."""

import time

import pytest

pytestmark = pytest.mark.live


def _log_lines(container) -> list[str]:
    return container.logs(stdout=True, stderr=True).decode().splitlines()


def test_container_and_logs_survive_worker_restart(live_stack, docker_client):
    container = docker_client.containers.run(
        "busybox:1.29",
        ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"],
        detach=True,
        name="survivor",
    )
    try:
        container.reload()
        pid_before = container.attrs["State"]["Pid"]
        assert container.status == "running" and pid_before > 0

        live_stack.restart_worker()
        lines_after_restart = len(_log_lines(container))
        time.sleep(1.0)
        assert len(_log_lines(container)) > lines_after_restart, "the log stopped growing"

        container.reload()
        assert container.status == "running"
        assert container.attrs["State"]["Pid"] == pid_before  # adopted, not restarted

        # The new worker controls the adopted container.
        container.stop(timeout=1)
        container.reload()
        assert container.status == "exited"
    finally:
        container.remove(force=True)


def test_exit_while_worker_is_down_is_recorded(live_stack, docker_client):
    container = docker_client.containers.run(
        "busybox:1.29", ["sh", "-c", "sleep 1; exit 7"], detach=True, name="quitter"
    )
    try:
        live_stack.stop_worker()
        time.sleep(2.0)  # the container exits while no worker runs
        live_stack.start_worker()
        assert container.wait(timeout=20)["StatusCode"] == 7
        container.reload()
        assert container.status == "exited"
        assert container.attrs["State"]["ExitCode"] == 7
    finally:
        container.remove(force=True)
