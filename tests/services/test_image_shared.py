"""Two teams that hold the same content share one image row: both see and use it."""

import pytest

from panel.errors import NotFound
from panel.images import services as images
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team

pytestmark = pytest.mark.django_db

CONFIG = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
          "rootfs": {"type": "layers", "diff_ids": []}}


@pytest.fixture
def teams(django_user_model):
    out = {}
    for name in ("blue", "red", "green"):
        team = Team.objects.create(name=name)
        user = django_user_model.objects.create_user(name)
        Membership.objects.create(user=user, team=team, role=Membership.Role.OPERATOR)
        out[name] = (team, user)
    return out


def _register(team, tag):
    return images.register_image(config=CONFIG, image_id="e" * 64, layers=[], size=0,
                                 node=local_node(), team=team, tags=[tag])


def test_second_team_sees_and_uses_the_same_content(teams):
    (blue, _blue_user), (red, red_user), (_green, green_user) = (
        teams["blue"], teams["red"], teams["green"])
    _register(blue, "app:blue")
    with pytest.raises(NotFound):
        images.resolve(red_user, "app:blue")
    image = _register(red, "app:red")
    assert image.team == blue  # the first holder stays the owner
    assert images.resolve(red_user, "app:red").id == "e" * 64
    assert images.visible_images(red_user).count() == 1  # one row, not one per join
    images.tag(red_user, "app:red", "app", "again", source="panel")  # red may act on it
    with pytest.raises(NotFound):
        images.resolve(green_user, "app:red")


def test_a_sharing_team_lets_go_without_deleting_the_owners_image(teams):
    (blue, blue_user), (red, red_user) = teams["blue"], teams["red"]
    _register(blue, "app:blue")
    _register(red, "app:red")
    records = images.remove(red_user, "e" * 64, force=True, source="api")
    assert records == []  # by id: nothing of red's to untag, red just stops holding it
    with pytest.raises(NotFound):
        images.resolve(red_user, "e" * 64)
    image = images.resolve(blue_user, "app:blue")
    assert {str(t) for t in image.tags.all()} == {"app:blue", "app:red"}
    _register(red, "app:red")
    assert images.remove(red_user, "app:red", source="api") == [{"Untagged": "app:red"}]
    assert images.resolve(blue_user, "app:blue").id == "e" * 64
