"""The access matrix of the panel's pages: every URL pattern of panel.urls (not the Django
admin) has a rule, and each principal gets what its role allows."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from .checks import check_row, routes
from .matrix import PANEL


def test_every_panel_pattern_has_a_rule():
    listed = {route for route, _method in PANEL}
    missing = [route for route, _callback in routes("panel.urls") if route not in listed]
    assert not missing, f"panel URL patterns without an access rule: {missing}"


def _data(rule):
    data = dict(rule.data)
    if data.get("archive") == "tar":  # an upload field
        data["archive"] = SimpleUploadedFile("image.tar", b"not a tar")
    return data


@pytest.mark.parametrize("key", [key for key, rule in PANEL.items() if rule.path],
                         ids=lambda key: f"{key[1]} /{key[0]}")
def test_panel_page(key, world, db, client):
    rule = PANEL[key]
    path = rule.path.format(w=world)

    def ask(user):
        client.force_login(user)
        if key[1] == "GET":
            return client.get(path, HTTP_USER_AGENT="matrix-browser").status_code
        return client.post(path, _data(rule), HTTP_USER_AGENT="matrix-browser").status_code

    problems = check_row(world, rule, ask)
    assert not problems, "\n".join(problems)
