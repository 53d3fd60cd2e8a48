"""The bridge records what the state files say, also when a shim's event never arrived."""

import pytest

from panel.containers import services
from panel.containers.models import Container
from panel.events.bridge import EventBridge
from workers.runtime.container import ContainerState


class StateFiles:
    """Stands in for the node's runtime: only what the state files would say."""

    def __init__(self):
        self.states = {}

    def state(self, container_id):
        return self.states[container_id]


@pytest.fixture
def running(owner, team, image):
    container = services.create(acting_user=owner, team=team, name="web",
                                config={"Image": "busybox:1.29"})
    Container.objects.filter(pk=container.pk).update(state="running", pid=42)
    return container


@pytest.fixture
def bridge(running):
    return EventBridge("redis://127.0.0.1:1/0", running.node, StateFiles())


def test_event_records_the_exit(bridge, running):
    bridge.runtime.states[running.id] = ContainerState(running.id, "exited", exit_code=3)
    bridge.handle({"container": running.id, "status": "exited"})
    running.refresh_from_db()
    assert (running.state, running.exit_code, running.pid) == ("exited", 3, 0)


def test_lost_event_heals_on_the_quiet_check(bridge, running):
    bridge.runtime.states[running.id] = ContainerState(running.id, "exited", exit_code=0)
    bridge.check_running()
    running.refresh_from_db()
    assert running.state == "exited"


def test_unknown_container_in_an_event_is_ignored(bridge):
    bridge.handle({"container": "f" * 64, "status": "exited"})
