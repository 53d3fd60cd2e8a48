"""Run a parsed Dockerfile: one image per step, a layer per step that changes files, a cache.

Owner: helper G (see /work/notes/builds.md). Contract:

class BuildHost (what the worker's handler provides; Django lives on that side):
    base_image(ref: str) -> str            image id (hex) of a FROM image, pulled if missing
                                           (always with options.pull); never called for scratch
    run(image_id, argv, *, env, user, workdir, shell) -> RunOutcome
                                           runs one RUN step in a real Dockyard container made
                                           from image_id, streams its output through log(),
                                           and returns the exit code and a layer tar of its
                                           changes (archive.diff_tar of the upper dir); the
                                           container is removed whatever happens
    register(image_id, config, parent_id) -> None
                                           the new step image exists in the store: record it
                                           (an intermediate image for `docker images -a`)
    log(text: str) -> None                 a piece of Docker's build output ("Step 1/5 : ...\n")
    cancelled() -> bool                    polled between steps and by run()
    check_quota(added_bytes: int) -> None  raises BuildError when the team's storage is full

Builder(store, host, options: BuildOptions).build(context_dir) -> BuildResult
  Output in Docker's classic words: "Step N/M : INSTRUCTION args", " ---> Using cache",
  " ---> Running in <12 hex>", " ---> <12 hex>", "Removing intermediate container <12 hex>".
  Cache: images/buildcache/<sha256 of (parent id, the instruction after substitution, the
  content hash of COPY/ADD sources)> -> image id, used unless options.no_cache and only while
  that image's config and layers are in the store.
  Errors: BuildError(message, code=exit code or None); a failing RUN says
  "The command '/bin/sh -c exit 3' returned a non-zero code: 3". BuildCancelled when
  host.cancelled() turned true.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..images import ImageError


class BuildError(ImageError):
    http_status = 400

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class BuildCancelled(BuildError):
    pass


@dataclass
class RunOutcome:
    exit_code: int
    layer_tar: str | None  # path of the diff as a layer tar; None if the step failed


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"          # path inside the context
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    max_layer_size: int | None = None


@dataclass
class BuildResult:
    image_id: str                          # hex, the target stage's last image
    steps: int
    cached_steps: int
    images: list[str] = field(default_factory=list)   # every step image made or reused


class Builder:
    def __init__(self, store, host, options: BuildOptions):
        self.store = store
        self.host = host
        self.options = options

    def build(self, context_dir: str) -> BuildResult:
        raise NotImplementedError
