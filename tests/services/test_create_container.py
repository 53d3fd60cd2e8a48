import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers import services
from panel.containers.models import Container
from panel.errors import Conflict, InvalidParameter, NotFound


def create(user, team, **config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29", **config},
                           name=config.pop("name", None))


def test_create_records_container_and_audit(owner, team, image, enqueued):
    container = services.create(acting_user=owner, team=team, name="web",
                                config={"Image": "busybox:1.29", "Cmd": ["sleep", "600"],
                                        "Env": ["A=1"], "Labels": {"x": "y"}})
    assert len(container.id) == 64 and container.state == "created"
    assert (container.cmd, container.env, container.labels) == (["sleep", "600"], ["A=1"], {"x": "y"})
    assert container.image == image
    event = AuditEvent.objects.get(action="container.create")
    assert (event.actor, event.object_id) == (owner, container.id)
    assert enqueued == []  # created only: the worker prepares the root at start


def test_generated_name_when_none_given(owner, team, image):
    container = create(owner, team)
    assert "_" in container.name


def test_unknown_image_is_404_and_creates_nothing(owner, team, image):
    with pytest.raises(NotFound, match="No such image: busybox:nope"):
        services.create(acting_user=owner, team=team, config={"Image": "busybox:nope"})
    assert not Container.objects.exists()
    assert not AuditEvent.objects.exists()


def test_name_in_use_is_409_and_creates_nothing(owner, team, image):
    services.create(acting_user=owner, team=team, name="web", config={"Image": "busybox:1.29"})
    with pytest.raises(Conflict, match='The container name "/web" is already in use'):
        services.create(acting_user=owner, team=team, name="web", config={"Image": "busybox:1.29"})
    assert Container.objects.count() == 1


@pytest.mark.parametrize(
    "config, host_config, message",
    [
        ({"Cmd": 5}, {}, "Cmd must be a list"),
        ({"WorkingDir": "relative"}, {}, "needs to be an absolute path"),
        ({}, {"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy"),
        ({"StopSignal": "SIGNOPE"}, {}, "Invalid signal"),
        ({"Env": ["=x"]}, {}, "invalid environment variable"),
    ],
)
def test_bad_values_are_400(owner, team, image, config, host_config, message):
    with pytest.raises(InvalidParameter, match=message):
        services.create(acting_user=owner, team=team, config={"Image": "busybox:1.29", **config},
                        host_config=host_config)
    assert not Container.objects.exists()


def test_bad_name_is_400(owner, team, image):
    with pytest.raises(InvalidParameter, match="Invalid container name"):
        services.create(acting_user=owner, team=team, name="bad name!", config={"Image": "busybox:1.29"})


def test_viewer_may_not_create(viewer, team, image):
    with pytest.raises(PermissionDenied):
        create(viewer, team)
