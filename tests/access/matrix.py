"""The access matrix: what each URL pattern and websocket route needs, and what each principal
of the world (tests/access/conftest.py) must get.

A rule's `scope`:
- "any": every signed-in user (lists are filtered to what the user sees), no refusal.
- "team": acts in the user's own team (the one new objects go to): allowed when the user's
  role there grants `permission`, else 403. The outsider acts in red, as an operator.
- "object": acts on one of blue's objects (`kind`): 404 for who cannot see blue's objects
  (the outsider, the auditor), 403 for a role without `permission`, allowed otherwise.
- "team-page": blue's team pages: like "object" for the team itself.
- "auditor": the audit log: allowed for roles with "audit", else 404.
- "site": site admins only: 404 (users pages) or 403 (`refusal`).
- "self": the user's own account (sign-in, tokens, 2FA): not part of the role matrix.
Site admins are allowed everything.

`form`: a panel form that names the team in a field: a refusal re-renders the form (200)
with the message instead of a 403 page.
"""

import json
from dataclasses import dataclass, field

from panel.teams.services import ROLE_PERMISSIONS

from .conftest import context_tar


@dataclass(frozen=True)
class Rule:
    scope: str
    permission: str = "view"
    path: str = ""  # formatted with w=world
    data: dict = field(default_factory=dict)  # panel: POST data; API: JSON body
    query: str = ""
    body: bytes = b""
    form: bool = False
    refusal: int = 403  # "site" rules: the status of a refusal


def permissions_of(principal: str) -> set:
    role = "operator" if principal == "outsider" else principal
    return set(ROLE_PERMISSIONS.get(role, ()))


def expected(rule: Rule, principal: str):
    """"ok", 403 or 404."""
    granted = permissions_of(principal)
    if principal == "site_admin" or rule.scope in ("any", "self"):
        return "ok"
    if rule.scope == "team":
        return "ok" if rule.permission in granted else 403
    if rule.scope in ("object", "team-page"):
        if principal == "outsider" or "view" not in granted:
            return 404
        return "ok" if rule.permission in granted else 403
    if rule.scope == "auditor":
        return "ok" if "audit" in granted else 404
    if rule.scope == "site":
        return rule.refusal
    raise AssertionError(f"unknown scope {rule.scope}")


def obj(permission, path, **extra):
    return Rule("object", permission, path, **extra)


def team(permission, path, **extra):
    return Rule("team", permission, path, **extra)


def any_user(path, **extra):
    return Rule("any", path=path, **extra)


C = "/containers/{w.container.id}"
I = "/images/{w.image.id}"  # noqa: E741

# ------------------------------------------------------------------ the panel (panel.urls)
PANEL = {
    ("login/", "GET"): Rule("self", path="/login/"),
    ("login/code/", "GET"): Rule("self", path="/login/code/"),
    ("logout/", "POST"): Rule("self", path="/logout/"),
    ("admin/login/", "GET"): Rule("self", path="/admin/login/"),
    ("accounts/reset/<uidb64>/<token>/", "GET"): Rule("self", path="/accounts/reset/x/y/"),
    ("", "GET"): any_user("/"),
    ("containers/new/", "GET"): any_user("/containers/new/"),
    ("containers/new/", "POST"): team("operate", "/containers/new/",
                                      data={"image": "busybox:1.29"}, form=True),
    ("containers/<str:container_id>/", "GET"): obj("view", C + "/"),
    ("containers/<str:container_id>/row/", "GET"): obj("view", C + "/row/"),
    ("containers/<str:container_id>/details/", "GET"): obj("view", C + "/details/"),
    ("containers/<str:container_id>/rename/", "POST"): obj("operate", C + "/rename/",
                                                           data={"name": "renamed-box"}),
    ("containers/<str:container_id>/top/", "GET"): obj("view", C + "/top/"),
    ("containers/<str:container_id>/exec/", "POST"): obj("operate", C + "/exec/",
                                                         data={"command": "sh"}),
    ("containers/<str:container_id>/stats/", "GET"): obj("view", C + "/stats/"),
    ("containers/<str:container_id>/update/", "POST"): obj("operate", C + "/update/",
                                                           data={"cpu_shares": "512"}),
    ("containers/<str:container_id>/<str:action>/", "POST"): obj("operate", C + "/remove/"),
    ("jobs/", "GET"): any_user("/jobs/"),
    ("jobs/<uuid:job_id>/row/", "GET"): obj("view", "/jobs/{w.job.id}/row/"),
    ("images/", "GET"): any_user("/images/"),
    ("images/", "POST"): any_user("/images/", data={"prune": "all"}),
    ("images/pull/", "GET"): any_user("/images/pull/"),
    ("images/pull/", "POST"): team("operate", "/images/pull/",
                                   data={"reference": "127.0.0.1:5999/x:1"}, form=True),
    ("images/load/", "POST"): team("operate", "/images/load/", data={"archive": "tar"},
                                   form=True),
    ("images/jobs/<uuid:job_id>/", "GET"): obj("view", "/images/jobs/{w.job.id}/"),
    ("images/jobs/<uuid:job_id>/outcome/", "GET"): obj("view",
                                                       "/images/jobs/{w.job.id}/outcome/"),
    ("images/build/", "GET"): any_user("/images/build/"),
    ("images/build/", "POST"): team("operate", "/images/build/", form=True, data={
        "source": "dockerfile", "dockerfile_text": "FROM busybox:1.29\n", "tags": "x:1"}),
    ("images/builds/<uuid:job_id>/", "GET"): obj("view", "/images/builds/{w.build.id}/"),
    ("images/builds/<uuid:job_id>/cancel/", "POST"): obj("operate",
                                                         "/images/builds/{w.build.id}/cancel/"),
    ("images/credentials/", "GET"): any_user("/images/credentials/"),
    ("images/credentials/", "POST"): team("manage", "/images/credentials/", form=True, data={
        "registry": "127.0.0.1:5999", "username": "u", "password": "p"}),
    ("images/credentials/<int:credential_id>/remove/", "POST"): obj(
        "manage", "/images/credentials/{w.credential.pk}/remove/"),
    ("images/<str:image_id>/", "GET"): obj("view", I + "/"),
    ("images/<str:image_id>/tag/", "POST"): obj("operate", I + "/tag/",
                                                data={"target": "blue/app:2"}),
    ("images/<str:image_id>/remove/", "POST"): obj("operate", I + "/remove/",
                                                   data={"tag": "blue/app:1", "force": "on"}),
    ("images/<str:image_id>/push/", "POST"): obj("operate", I + "/push/",
                                                 data={"tag": "blue/app:1"}),
    ("images/<str:image_id>/save/", "POST"): obj("operate", I + "/save/"),
    ("volumes/", "GET"): any_user("/volumes/"),
    ("volumes/", "POST"): team("operate", "/volumes/", data={"name": "new-vol",
                                                            "driver": "local"}, form=True),
    ("volumes/<str:name>/", "GET"): obj("view", "/volumes/blue-vol/"),
    ("volumes/<str:name>/remove/", "POST"): obj("operate", "/volumes/blue-vol/remove/"),
    ("networks/", "GET"): any_user("/networks/"),
    ("networks/", "POST"): team("operate", "/networks/", form=True, data={
        "name": "new-net", "driver": "bridge", "scope": "local"}),
    ("networks/<str:name>/", "GET"): obj("view", "/networks/blue-net/"),
    ("networks/<str:name>/remove/", "POST"): obj("operate", "/networks/blue-lan/remove/"),
    ("networks/<str:name>/connect/", "POST"): obj("operate", "/networks/blue-net/connect/",
                                                  data={"container": "blue-spare"}),
    ("networks/<str:name>/disconnect/", "POST"): obj("operate",
                                                     "/networks/blue-net/disconnect/",
                                                     data={"container": "blue-box"}),
    ("networks/<str:name>/policy/", "POST"): obj("manage", "/networks/blue-net/policy/",
                                                 data={"src": "blue-box", "dst": "blue-box"}),
    ("teams/", "GET"): any_user("/teams/"),
    ("teams/", "POST"): Rule("site", path="/teams/", data={"name": "green"}),
    ("teams/<int:team_id>/", "GET"): Rule("team-page", "view", "/teams/{w.blue.pk}/"),
    ("teams/<int:team_id>/invite/", "POST"): Rule(
        "team-page", "manage", "/teams/{w.blue.pk}/invite/",
        data={"user": "newcomer", "role": "viewer"}),
    ("teams/<int:team_id>/members/<int:membership_id>/role/", "POST"): Rule(
        "team-page", "manage", "/teams/{w.blue.pk}/members/{w.membership.pk}/role/",
        data={"role": "operator"}),
    ("teams/<int:team_id>/members/<int:membership_id>/remove/", "POST"): Rule(
        "team-page", "manage", "/teams/{w.blue.pk}/members/{w.membership.pk}/remove/"),
    ("teams/<int:team_id>/policy/", "POST"): Rule(
        "team-page", "manage", "/teams/{w.blue.pk}/policy/", data={"max_containers": "5"}),
    ("teams/<int:team_id>/delete/", "POST"): Rule(
        "team-page", "own", "/teams/{w.blue.pk}/delete/", data={"confirm": "blue"}),
    ("users/", "GET"): Rule("site", path="/users/", refusal=404),
    ("users/<int:user_id>/active/", "POST"): Rule(
        "site", path="/users/{w.users[viewer].pk}/active/", refusal=404),
    ("users/<int:user_id>/site-admin/", "POST"): Rule(
        "site", path="/users/{w.users[viewer].pk}/site-admin/", refusal=404),
    ("users/<int:user_id>/reset-2fa/", "POST"): Rule(
        "site", path="/users/{w.users[viewer].pk}/reset-2fa/", refusal=404),
    ("users/<int:user_id>/password-link/", "POST"): Rule(
        "site", path="/users/{w.users[viewer].pk}/password-link/", refusal=404),
    ("audit/", "GET"): Rule("auditor", path="/audit/"),
    ("^audit/export\\.(?P<fmt>csv|jsonl)$", "GET"): Rule("auditor", path="/audit/export.csv"),
    ("account/", "GET"): Rule("self", path="/account/"),
    ("account/tokens/", "POST"): Rule("self", path="/account/tokens/"),
    ("account/tokens/<int:token_id>/revoke/", "POST"): Rule("self"),
    ("account/two-factor/enable/", "POST"): Rule("self"),
    ("account/two-factor/confirm/", "POST"): Rule("self"),
    ("account/two-factor/disable/", "POST"): Rule("self"),
    ("account/password/", "GET"): Rule("self", path="/account/password/"),
}

# ------------------------------------------------------------------ the Docker API
AC = "/containers/blue-box"
AI = "/images/blue/app:1"


def _json(data: dict) -> bytes:
    return json.dumps(data).encode()


API = {
    ("_ping", "GET"): any_user("/_ping"),
    ("version", "GET"): any_user("/version"),
    ("info", "GET"): any_user("/info"),
    ("events", "GET"): any_user("/events", query="since=1&until=2"),
    ("system/df", "GET"): any_user("/system/df"),
    ("auth", "POST"): team("manage", "/auth", body=_json({
        "username": "u", "password": "p", "serveraddress": "127.0.0.1:5999"})),
    ("commit", "POST"): obj("operate", "/commit", query="container=blue-box&repo=blue/snap"),
    ("build", "POST"): team("operate", "/build", query="t=blue/built:1", body=context_tar()),
    ("build/prune", "POST"): any_user("/build/prune"),
    ("containers/json", "GET"): any_user("/containers/json", query="all=1"),
    ("containers/create", "POST"): team("operate", "/containers/create", query="name=new-box",
                                        body=_json({"Image": "busybox:1.29"})),
    ("containers/<str:ref>/json", "GET"): obj("view", AC + "/json"),
    ("containers/<str:ref>/start", "POST"): obj("operate", AC + "/start"),
    ("containers/<str:ref>/stop", "POST"): obj("operate", AC + "/stop"),
    ("containers/<str:ref>/restart", "POST"): obj("operate", AC + "/restart"),
    ("containers/<str:ref>/pause", "POST"): obj("operate", AC + "/pause"),
    ("containers/<str:ref>/unpause", "POST"): obj("operate", AC + "/unpause"),
    ("containers/<str:ref>/kill", "POST"): obj("operate", AC + "/kill"),
    ("containers/<str:ref>/wait", "POST"): obj("view", AC + "/wait"),
    ("containers/<str:ref>/logs", "GET"): obj("view", AC + "/logs", query="stdout=1"),
    ("containers/<str:ref>/top", "GET"): obj("view", AC + "/top"),
    ("containers/<str:ref>/rename", "POST"): obj("operate", AC + "/rename", query="name=r-box"),
    ("containers/<str:ref>/resize", "POST"): obj("operate", AC + "/resize", query="h=10&w=10"),
    ("containers/<str:ref>/stats", "GET"): obj("view", AC + "/stats", query="stream=0"),
    ("containers/<str:ref>/update", "POST"): obj("operate", AC + "/update",
                                                 body=_json({"CpuShares": 512})),
    ("containers/<str:ref>/export", "GET"): obj("operate", AC + "/export"),
    ("containers/<str:ref>/exec", "POST"): obj("operate", AC + "/exec",
                                               body=_json({"Cmd": ["sh"]})),
    ("exec/<str:exec_id>/json", "GET"): obj("view", "/exec/{w.exec.id}/json"),
    ("exec/<str:exec_id>/resize", "POST"): obj("operate", "/exec/{w.exec.id}/resize",
                                               query="h=10&w=10"),
    ("containers/<str:ref>", "DELETE"): obj("operate", AC, query="force=1"),
    ("images/json", "GET"): any_user("/images/json"),
    ("images/create", "POST"): team("operate", "/images/create",
                                    query="fromImage=127.0.0.1:5999/x&tag=1"),
    ("images/prune", "POST"): any_user("/images/prune"),
    ("images/load", "POST"): team("operate", "/images/load", body=context_tar()),
    ("images/get", "GET"): obj("operate", "/images/get", query="names=blue/app:1"),
    ("^images/(?P<name>.+)/json$", "GET"): obj("view", AI + "/json"),
    ("^images/(?P<name>.+)/history$", "GET"): obj("view", AI + "/history"),
    ("^images/(?P<name>.+)/push$", "POST"): obj("operate", AI + "/push"),
    ("^images/(?P<name>.+)/tag$", "POST"): obj("operate", AI + "/tag",
                                               query="repo=blue/app&tag=2"),
    ("^images/(?P<name>.+)/get$", "GET"): obj("operate", AI + "/get"),
    ("^images/(?P<name>.+)$", "DELETE"): obj("operate", AI, query="force=1"),
    ("volumes", "GET"): any_user("/volumes"),
    ("volumes/create", "POST"): team("operate", "/volumes/create",
                                     body=_json({"Name": "new-vol"})),
    ("volumes/prune", "POST"): any_user("/volumes/prune"),
    ("volumes/<str:name>", "GET"): obj("view", "/volumes/blue-vol"),
    ("volumes/<str:name>", "DELETE"): obj("operate", "/volumes/blue-vol"),
    ("networks", "GET"): any_user("/networks"),
    ("networks/create", "POST"): team("operate", "/networks/create",
                                      body=_json({"Name": "new-net"})),
    ("networks/prune", "POST"): any_user("/networks/prune"),
    ("networks/<str:ref>/connect", "POST"): obj("operate", "/networks/blue-net/connect",
                                                body=_json({"Container": "blue-spare"})),
    ("networks/<str:ref>/disconnect", "POST"): obj("operate", "/networks/blue-net/disconnect",
                                                   body=_json({"Container": "blue-box"})),
    ("networks/<str:ref>", "GET"): obj("view", "/networks/blue-net"),
    ("networks/<str:ref>", "DELETE"): obj("operate", "/networks/blue-lan"),
}
# Not an endpoint: the API's catch-all 404 ("page not found").
API_UNLISTED = {"^(?P<path>.*)$"}

# ------------------------------------------------------------------ websockets
WEBSOCKETS = {
    "ws/team/": any_user("/ws/team/"),
    "ws/containers/<str:container_id>/": obj("view", "/ws/containers/{w.container.id}/"),
    "ws/terminal/<str:kind>/<str:target_id>/": obj(
        "view", "/ws/terminal/container/{w.container.id}/"),
    "ws/exec/<str:exec_id>/": obj("operate", "/ws/exec/{w.exec.id}/"),
    "ws/jobs/<uuid:job_id>/": obj("view", "/ws/jobs/{w.job.id}/"),
    "ws/audit/": Rule("auditor", path="/ws/audit/"),
}
