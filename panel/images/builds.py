"""Builds: `docker build` and the panel's build page.

build(user, *, context_path="", remote="", tags=(), dockerfile="Dockerfile", build_args=None,
      target="", no_cache=False, pull=False, labels=None, registry_auth=None, team=None,
      source="panel", job_id=None) -> Job
    Job `image.build` (handler: workers/build_tasks.py). `context_path` is a spooled context
    tar (the job removes it); `remote` a git URL (https://, http://, git://, github.com/...,
    with Docker's #ref:subdir fragment). `registry_auth`: Docker's X-Registry-Config
    ({server address: {"username", "password"} or {"identitytoken"}}) for the FROM pulls,
    sealed for the job; the team's stored logins are used for the other registries.
    Progress: Docker's build JSON on the job's group: {"stream": "Step 1/5 : FROM x\\n"},
    pull progress while a FROM image is pulled, {"aux": {"ID": "sha256:..."}}. Result:
    {"id": "sha256:...", "tags": [...]}; on failure the error is Docker's text and result
    {"status": 400, "code": <RUN's exit code>} (403 for the storage quota).
cancel(user, job_id, *, source="panel") -> None
    Stops a queued or running build (jobs.services.request_cancel); its RUN container is
    killed and removed, nothing is tagged. A build that already ended is left as it is.
"""

import re
import uuid

from django.db import transaction

from panel.audit import services as audit
from panel.errors import InvalidParameter, NotFound, string_map
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.teams.services import check_permission

from . import credentials, references, services, spool

_REMOTE = re.compile(r"^(https?|git)://[^\s]+$")


def normalize_remote(remote: str) -> str:
    """A git URL the node may clone: Docker's `github.com/x/y` becomes https; local paths,
    file:// and ssh (git@...) are refused (the node has no keys, and its files are not the
    user's)."""
    remote = remote.strip()
    if remote.startswith("github.com/"):
        remote = f"https://{remote}"
    if not _REMOTE.match(remote):
        raise InvalidParameter(f"unsupported remote context {remote!r}: a git URL "
                               "(https://, http:// or git://) is expected")
    ref = remote.partition("#")[2].partition(":")[0]
    if ref.startswith("-"):
        raise InvalidParameter(f"invalid git reference {ref!r}")
    return remote


def _build_args(build_args) -> dict:
    """Docker's buildargs: a null value (``--build-arg X`` with X unset) is no value."""
    build_args = build_args or {}
    if not isinstance(build_args, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str))
            for k, v in build_args.items()):
        raise InvalidParameter("buildargs must be an object of strings")
    return {k: v for k, v in build_args.items() if v is not None}


def _sealed_registry_auth(registry_auth) -> str:
    if not registry_auth:
        return ""
    if not isinstance(registry_auth, dict):
        raise InvalidParameter("X-Registry-Config must be an object")
    logins = {}
    for address, auth in registry_auth.items():
        if isinstance(auth, dict) and any(auth.get(k) for k in
                                          ("username", "password", "identitytoken")):
            logins[credentials.normalize_registry(address)] = {
                k: auth.get(k) or "" for k in ("username", "password", "identitytoken")}
    return credentials.seal(logins) if logins else ""


def build(user, *, context_path: str = "", remote: str = "", tags=(),
          dockerfile: str = "Dockerfile", build_args: dict | None = None, target: str = "",
          no_cache: bool = False, pull: bool = False, labels: dict | None = None,
          registry_auth: dict | None = None, team=None, source: str = "panel",
          job_id=None) -> Job:
    if bool(context_path) == bool(remote):
        raise InvalidParameter("a build needs either a context or a remote URL")
    if context_path:
        context_path = spool.check_spooled(context_path)
    else:
        remote = normalize_remote(remote)
    tags = [str(references.parse_tag(t)) for t in tags]  # a bad tag: 400 before any work
    args = _build_args(build_args)
    labels = string_map(labels, "labels")
    dockerfile = dockerfile or "Dockerfile"
    team = services._acting_team(user, team)
    check_permission(user, team, "operate")
    what = tags[0] if tags else (remote or "docker build")
    with transaction.atomic():
        audit.record("image.build", actor=user, team=team, obj_type="image", obj_id="",
                     obj_repr=what[:200],
                     after={"tags": tags, "remote": remote, "dockerfile": dockerfile,
                            "target": target, "build_args": sorted(args), "no_cache": no_cache,
                            "pull": pull},
                     source=source)
        return services._enqueue(
            "image.build", user=user, team=team, target_repr=what, job_id=job_id,
            payload={"context_path": context_path, "remote": remote, "tags": tags,
                     "dockerfile": dockerfile, "build_args": args, "target": target,
                     "no_cache": bool(no_cache), "pull": bool(pull), "labels": labels,
                     "auth": _sealed_registry_auth(registry_auth), "source": source})


def cancel(user, job_id, *, source: str = "panel") -> None:
    try:
        job_id = uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"No such build: {job_id}") from None
    job = jobs.resolve(user, job_id, kinds="image.build", message=f"No such build: {job_id}")
    check_permission(user, job.team, "operate")
    with transaction.atomic():
        if jobs.request_cancel(job):
            audit.record("image.build.cancel", actor=user, team=job.team, obj_type="job",
                         obj_id=str(job.id), obj_repr=job.target_repr, source=source)
