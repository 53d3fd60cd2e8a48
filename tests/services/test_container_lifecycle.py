import pytest
from django.core.exceptions import PermissionDenied

from panel.containers import services
from panel.containers.models import Container
from panel.errors import Conflict, NotFound, NotModified
from panel.jobs.models import Job


@pytest.fixture
def container(owner, team, image):
    return services.create(acting_user=owner, team=team, name="web",
                           config={"Image": "busybox:1.29"})


def test_start_enqueues_a_job_on_the_node_queue(owner, container, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start(acting_user=owner, container=container)
    assert (job.kind, job.target_id, job.state) == ("container.start", container.id, "queued")
    assert enqueued == [job]
    assert job.node.queue == "node.local"


def test_start_of_running_container_is_not_modified(owner, container):
    Container.objects.filter(pk=container.pk).update(state="running")
    container.refresh_from_db()
    with pytest.raises(NotModified):
        services.start(acting_user=owner, container=container)
    assert not Job.objects.exists()


def test_remove_running_needs_force(owner, container):
    Container.objects.filter(pk=container.pk).update(state="running")
    container.refresh_from_db()
    with pytest.raises(Conflict, match="Stop the container before attempting removal"):
        services.remove(acting_user=owner, container=container)
    job = services.remove(acting_user=owner, container=container, force=True)
    assert job.payload == {"force": True}
    container.refresh_from_db()
    assert container.state == "removing"


def test_kill_needs_a_running_container_and_a_valid_signal(owner, container):
    with pytest.raises(Conflict, match="is not running"):
        services.kill(acting_user=owner, container=container, signal="TERM")
    Container.objects.filter(pk=container.pk).update(state="running")
    container.refresh_from_db()
    job = services.kill(acting_user=owner, container=container, signal="TERM")
    assert job.payload == {"signal": 15}


def test_resolve_by_name_id_and_prefix(owner, container):
    assert services.resolve(owner, "web") == container
    assert services.resolve(owner, "/web") == container
    assert services.resolve(owner, container.id) == container
    assert services.resolve(owner, container.id[:6]) == container


def test_outsider_sees_nothing(outsider, container):
    with pytest.raises(NotFound):
        services.resolve(outsider, "web")
    with pytest.raises(PermissionDenied):
        services.stop(acting_user=outsider, container=container)
