"""The Stats card's JSON view with Django's test client: who may read it (whoever may see the
container), the figures of a container that does not run, and the card on the page."""

import pytest

from panel.containers.models import Container

from .conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def box(alice, blue, image):
    return Container.objects.create(id="d" * 64, name="blue-box", team=blue, node=image.node,
                                    image=image, image_ref="busybox:1.29", spec={"Config": {}})


def test_stats_of_a_container_that_does_not_run(login, alice, viewer, box):
    for user in (alice, viewer):  # operators and viewers of the team alike
        response = login(user).get(f"/containers/{box.id}/stats/")
        assert response.status_code == 200
        assert response.json() == {
            "running": False, "read": "0001-01-01T00:00:00Z", "cpu_total": 0, "system_cpu": 0,
            "online_cpus": 0, "memory_usage": 0, "memory_limit": 0, "net_rx": 0, "net_tx": 0,
            "blk_read": 0, "blk_write": 0, "pids": 0, "pids_limit": 0}


def test_stats_are_for_the_containers_team_only(client, login, mallory, box):
    assert login(mallory).get(f"/containers/{box.id}/stats/").status_code == 404
    client.logout()
    response = client.get(f"/containers/{box.id}/stats/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    root = make_user("root", is_superuser=True)
    assert login(root).get(f"/containers/{box.id}/stats/").status_code == 200


def test_the_card_is_on_the_container_page(login, alice, box):
    page = login(alice).get(f"/containers/{box.id}/").content.decode()
    assert 'id="stats"' in page and f'data-url="/containers/{box.id}/stats/"' in page
    assert "stats.js" in page
    for chart in ("stat-cpu", "stat-memory", "stat-net", "stat-blk", "stat-pids"):
        assert f'id="{chart}"' in page
