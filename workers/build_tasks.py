"""The `image.build` job: the worker's side of the builder (workers/runtime/build/builder.py).

The context (a spooled tar, or a shallow git clone) is unpacked under
`<STATE_ROOT>/builds/<job id>/`, removed with the spool file whatever happens. `BuildHost`
gives the builder what needs Django: FROM images through the images services (pulled
inline with the pull job's code), RUN steps as real Dockyard containers, the step images'
rows, the job's progress, cancellation and the team's storage quota.
"""

import json
import logging
import os
import shutil
import subprocess
import time

from django.conf import settings

from panel.containers import services as containers
from panel.containers.models import Container
from panel.errors import DockyardError, NotFound
from panel.events import publish
from panel.images import credentials, quota, references, spool
from panel.images import services as images
from panel.images.models import Image
from panel.jobs import services as jobs
from panel.jobs.models import Job
from workers import image_tasks, node
from workers.runtime import archive
from workers.runtime.build import context as build_context
from workers.runtime.build.builder import (
    BuildCancelled,
    Builder,
    BuildError,
    BuildOptions,
    RunOutcome,
)
from workers.runtime.container import NotRunning, StartError

log = logging.getLogger(__name__)

CANCEL_POLL = 0.5  # seconds between two looks at Job.cancel_requested while a step runs
GIT_TIMEOUT = 600  # seconds a clone of a remote context may take
BUILD_LABEL = "dockyard.build"  # on a RUN step's container: the build job's id


def _node_tasks():
    """workers.tasks (the start and removal of containers), imported when first needed:
    it imports this module."""
    from workers import tasks

    return tasks


def _builds_dir() -> str:
    path = os.path.join(str(settings.STATE_ROOT), "builds")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


class BuildHost:
    """What the builder asks of the node, for one build job."""

    def __init__(self, job: Job, store):
        self.job = job
        self.store = store
        self._auth = credentials.unseal(job.payload["auth"]) if job.payload.get("auth") else {}

    # -- output, cancellation, quota ------------------------------------------------------
    def log(self, text: str) -> None:
        publish.job_progress(self.job.id, {"stream": text})

    def cancelled(self) -> bool:
        return jobs.cancelled(self.job.id)

    def check_quota(self, added_bytes: int) -> None:
        try:
            quota.check_storage(self.job.team, added_bytes)
        except quota.StorageQuotaExceeded as exc:
            error = BuildError(str(exc))
            error.http_status = exc.status
            raise error from None

    # -- images ---------------------------------------------------------------------------
    def base_image(self, ref: str) -> str:
        """A FROM image: the one the team sees under that name, else (or with --pull) pulled
        now, in this job."""
        if not self.job.payload.get("pull"):
            try:
                image = images.resolve(self.job.actor, ref)
            except NotFound:
                image = None
            if image is not None and self._in_store(image):
                return image.id
        try:
            parsed = references.parse(ref)
        except DockyardError as exc:
            raise BuildError(str(exc)) from None
        sealed = images._sealed_auth(self._auth.get(parsed.registry), self.job.team,
                                     parsed.registry)
        result = image_tasks.pull_ref(self.job, str(parsed), sealed_auth=sealed)
        return result["id"].removeprefix("sha256:")

    def _in_store(self, image: Image) -> bool:
        return all(self.store.has_layer(d) for d in image.layers) and \
            self.store.has_blob(f"sha256:{image.id}")

    def register(self, image_id: str, config: dict, parent_id: str) -> None:
        layers = (config.get("rootfs") or {}).get("diff_ids") or []
        images.register_image(config=config, image_id=image_id, layers=layers,
                              size=sum(self.store.layer_size(d) for d in set(layers)),
                              node=self.job.node, team=self.job.team, parent=parent_id or "",
                              acting_user=self.job.actor,
                              source=self.job.payload.get("source") or "system")

    # -- RUN --------------------------------------------------------------------------------
    def run(self, image_id: str, argv: list[str], *, env, user: str, workdir: str,
            shell=None) -> RunOutcome:
        """One RUN step in a container of the build's team on the default bridge, removed
        (runtime, network, row) whatever happens; outside the team's container quotas."""
        container = containers.create(
            acting_user=self.job.actor, team=self.job.team,
            source=self.job.payload.get("source") or "system",
            config={"Image": image_id, "Entrypoint": [""], "Cmd": list(argv), "Env": list(env),
                    "User": user or "", "WorkingDir": workdir or "",
                    "Labels": {BUILD_LABEL: str(self.job.id)}},
            host_config={"NetworkMode": "default"}, build_step=True)
        try:
            self.log(f" ---> Running in {container.short_id}\n")
            exit_code = self._run_to_the_end(container)
            if exit_code != 0:
                return RunOutcome(exit_code=exit_code, layer_tar=None)
            layer_tar = self._diff(container)
        finally:
            Container.objects.filter(pk=container.pk).update(state=Container.State.REMOVING)
            _node_tasks().remove_from_node(container, actor=self.job.actor,
                                           anonymous_volumes=True)
        self.log(f"Removing intermediate container {container.short_id}\n")
        return RunOutcome(exit_code=0, layer_tar=layer_tar)

    def _run_to_the_end(self, container: Container) -> int:
        """Start the container, forward its output, wait for its exit; on a cancel kill it
        and raise BuildCancelled. A process that cannot start exits 126/127, as Docker's."""
        rt = node.runtime()
        try:
            _node_tasks().start_on_node(container)
        except StartError as exc:
            self.log(f"{exc}\n")
            return 127 if "not found" in str(exc) or "no such file" in str(exc) else 126
        output = _LogFollower(rt.logs_path(container.id))
        next_cancel_check = time.monotonic() + CANCEL_POLL
        while True:
            try:
                exit_code = rt.wait(container.id, timeout=0.1)
            except TimeoutError:
                exit_code = None
            text = output.read()
            if text:
                self.log(text)
            if exit_code is not None:
                return exit_code
            if time.monotonic() >= next_cancel_check:
                next_cancel_check = time.monotonic() + CANCEL_POLL
                if self.cancelled():
                    try:
                        rt.kill(container.id, "SIGKILL")
                    except NotRunning:
                        pass
                    raise BuildCancelled("the build was cancelled")

    def _diff(self, container: Container) -> str:
        """The step's changes as a layer tar under the store's tmp (the builder owns it)."""
        upper = os.path.join(node.runtime().containers, container.id, "upper")
        path = os.path.join(self.store.tmp, f"run-{container.id}.tar")
        try:
            with open(path, "xb") as out:
                archive.diff_tar(upper, out, id_shift=image_tasks._id_shift(container))
        except BaseException:
            _unlink(path)
            raise
        return path


class _LogFollower:
    """New lines of a container's json-file log, as the shim appends them."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def read(self) -> str:
        """What the container wrote since the last call (complete log entries only)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return ""
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        pieces = []
        for raw in complete.splitlines():
            try:
                pieces.append(json.loads(raw)["log"])
            except (ValueError, KeyError):
                continue
        return "".join(pieces)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------ contexts

def _git(job: Job, args: list[str], cwd: str) -> None:
    """One git command for a remote context: only network protocols, no prompt, no
    system or user config; cancellable."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": cwd, "LANG": "C",
           "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    command = ["git", "-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
               "-c", "protocol.http.allow=always", "-c", "protocol.git.allow=always", *args]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + GIT_TIMEOUT
    try:
        while True:
            try:
                _, stderr = proc.communicate(timeout=CANCEL_POLL)
                break
            except subprocess.TimeoutExpired:
                if jobs.cancelled(job.id):
                    raise BuildCancelled("the build was cancelled") from None
                if time.monotonic() > deadline:
                    raise BuildError(f"git {args[0]} took more than {GIT_TIMEOUT}s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise BuildError("unable to prepare context: unable to 'git clone' to temporary "
                         f"context directory: {message}")


def _clone(job: Job, remote: str, work: str) -> str:
    """Docker's git context: URL#ref:subdir, a shallow fetch of ref (default HEAD) with
    its submodules; the subdir is the context. The .git dir is not part of it."""
    url, _, fragment = remote.partition("#")
    ref, _, subdir = fragment.partition(":")
    repo = os.path.join(work, "repo")
    os.mkdir(repo, 0o700)
    _git(job, ["init", "-q"], repo)
    _git(job, ["fetch", "-q", "--depth", "1", "--", url, ref or "HEAD"], repo)
    _git(job, ["checkout", "-q", "FETCH_HEAD"], repo)
    _git(job, ["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"], repo)
    shutil.rmtree(os.path.join(repo, ".git"))
    context_dir = os.path.realpath(os.path.join(repo, subdir))
    if os.path.commonpath([context_dir, repo]) != repo or not os.path.isdir(context_dir):
        raise BuildError(f"unable to prepare context: the subdirectory {subdir!r} "
                         "is not a directory of the repository")
    return context_dir


def _context_dir(job: Job, work: str) -> str:
    if job.payload.get("remote"):
        return _clone(job, job.payload["remote"], work)
    target = os.path.join(work, "context")
    os.mkdir(target, 0o700)
    build_context.unpack(spool.check_spooled(job.payload["context_path"]), target,
                         max_size=settings.MAX_LAYER_SIZE)
    return target


# ------------------------------------------------------------------------------ the job

def _remove_leftovers(job: Job, work: str) -> None:
    """A redelivered job (the worker died during the build): its step containers and its
    context dir from the first attempt."""
    for container in Container.objects.filter(team=job.team):
        if container.labels.get(BUILD_LABEL) == str(job.id):
            _node_tasks().remove_from_node(container, actor=job.actor, anonymous_volumes=True)
    shutil.rmtree(work, ignore_errors=True)


def build_image(job: Job) -> dict:
    payload = job.payload
    store = node.image_store()
    work = os.path.join(_builds_dir(), str(job.id))
    _remove_leftovers(job, work)
    try:
        os.mkdir(work, 0o700)
        context_dir = _context_dir(job, work)
        options = BuildOptions(dockerfile=payload.get("dockerfile") or "Dockerfile",
                               build_args=payload.get("build_args") or {},
                               target=payload.get("target") or "",
                               no_cache=bool(payload.get("no_cache")),
                               pull=bool(payload.get("pull")),
                               labels=payload.get("labels") or {},
                               max_layer_size=settings.MAX_LAYER_SIZE)
        host = BuildHost(job, store)
        result = Builder(store, host, options).build(context_dir)
    finally:
        if payload.get("context_path"):
            spool.discard(payload["context_path"])
        shutil.rmtree(work, ignore_errors=True)
    image = Image.objects.get(pk=result.image_id)
    tags = payload.get("tags") or []
    images.register_image(config=image.config, image_id=image.id, layers=image.layers,
                          size=image.size, node=job.node, team=job.team, tags=tags,
                          acting_user=job.actor, source=payload.get("source") or "system")
    publish.job_progress(job.id, {"aux": {"ID": image.docker_id}})
    host.log(f"Successfully built {image.short_id}\n")
    for tag in tags:
        host.log(f"Successfully tagged {tag}\n")
    return {"id": image.docker_id, "tags": tags}


BUILD_HANDLERS: dict = {
    "image.build": build_image,
}
