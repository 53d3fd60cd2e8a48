"""Builds: `docker build` and the panel's build page. Owner: helper H (see /work/notes/builds.md).

build(user, *, context_path="", remote="", tags=(), dockerfile="Dockerfile", build_args=None,
      target="", no_cache=False, pull=False, labels=None, team=None, source="panel",
      job_id=None) -> Job
    Job `image.build`. `context_path` is a spooled context tar (the job removes it);
    `remote` a git URL (https://, http://, git://, with Docker's #ref:subdir fragment).
    Progress: Docker's build JSON on the job's group: {"stream": "Step 1/5 : FROM x\\n"},
    {"aux": {"ID": "sha256:..."}}. Result: {"id": "sha256:...", "tags": [...]}; on failure
    the error is Docker's text and result {"status": 400, "code": <RUN's exit code>}.
cancel(user, job_id, *, source="panel") -> None
    Stops a queued or running build (jobs.services.request_cancel); its RUN container is
    killed and removed, nothing is tagged.
"""
