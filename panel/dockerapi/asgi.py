"""The Docker API's ASGI app: Django's handler, routed through the API's own URLconf.

The panel's URLconf (panel.urls) does not include the API, so the API is reachable only
through the front server (panel/dockerapi/server.py), which authenticates every request and
puts the user's id in the ASGI scope under `dockyard_user_id` (and the team its API token is
scoped to under `dockyard_token_team_id`). This handler copies them onto the request and sets
`request.urlconf`, which Django's resolver honours per request: the same settings, middleware
and database, but a separate set of URLs. A client cannot forge the
user or team: HTTP headers never reach the scope keys.
"""

from django.core.handlers.asgi import ASGIHandler
from django.test.utils import override_settings

URLCONF = "panel.dockerapi.urls"
USER_SCOPE_KEY = "dockyard_user_id"
TEAM_SCOPE_KEY = "dockyard_token_team_id"
# The panel's middleware (sessions, CSRF, messages, frame options) has nothing to do for
# API clients and costs a thread hop per request; the front server authenticates.
API_MIDDLEWARE: list[str] = []


class DockerApiHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        with override_settings(MIDDLEWARE=API_MIDDLEWARE):
            super().load_middleware(is_async=is_async)

    def create_request(self, scope, body_file):
        request, error_response = super().create_request(scope, body_file)
        if request is not None:
            request.urlconf = URLCONF
            request.dockyard_user_id = scope.get(USER_SCOPE_KEY)
            request.dockyard_token_team_id = scope.get(TEAM_SCOPE_KEY)
        return request, error_response


def get_api_application() -> DockerApiHandler:
    import django

    django.setup(set_prefix=False)
    return DockerApiHandler()
