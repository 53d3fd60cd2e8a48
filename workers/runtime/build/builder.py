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
                                           container is removed whatever happens.
                                           argv: the complete command (a shell-form RUN comes
                                           already wrapped: ["/bin/sh", "-c", "make"]); env:
                                           ["K=V", ...], the image's Env plus the build args in
                                           effect; user, workdir: the image config's User and
                                           WorkingDir ("" = root, /); shell: the stage's SHELL
                                           list (informational: argv is complete).
                                           The host logs " ---> Running in <12 hex>\n" when the
                                           container starts and, after an exit code 0,
                                           "Removing intermediate container <12 hex>\n". It
                                           raises BuildCancelled when cancelled() turns true
                                           while the step runs (after removing the container).
                                           A process that cannot start: exit 127/126, or a
                                           BuildError with the runtime's message.
                                           layer_tar: a file the builder then owns (adds to the
                                           store, deletes); best under store.tmp.
    register(image_id, config, parent_id) -> None
                                           the new step image exists in the store: record it
                                           (an intermediate image for `docker images -a`);
                                           parent_id: the step's parent image ("" after FROM
                                           scratch); also called for cache hits and the final
                                           image (tagging it is the caller's, at the end)
    log(text: str) -> None                 a piece of Docker's build output ("Step 1/5 : ...\n")
    cancelled() -> bool                    polled between steps and by run()
    check_quota(added_bytes: int) -> None  raises BuildError when the team's storage is full;
                                           called with a new layer's tar size before the layer
                                           is added to the store

Builder(store, host, options: BuildOptions).build(context_dir) -> BuildResult
  context_dir is read, never changed; its .dockerignore applies to COPY/ADD (context.py).
  Output in Docker's classic words: "Step N/M : INSTRUCTION args", " ---> Using cache",
  " ---> <12 hex>", "# Executing 1 build trigger", the unused build-args warning (the host
  adds the RUN container lines; the caller "Successfully built/tagged"). Steps that make no
  container (metadata, COPY, ADD, WORKDIR) print no "Running in" line.
  Images: architecture/os from the base, "config", "container_config" (Cmd = what Docker
  puts there: the "#(nop)" comment or the RUN command), history entries with Docker's
  created_by ("/bin/sh -c #(nop)  CMD [\"sh\"]", "/bin/sh -c #(nop) COPY file:<hash> in /x ",
  "|1 A=b /bin/sh -c make"), "empty_layer": true for steps that change no file.
  Cache: images/buildcache/<sha256 of (parent id, the instruction after substitution, the
  content hash of COPY/ADD sources)> -> image id, used unless options.no_cache and only while
  that image's config and layers are in the store.
  Errors: BuildError(message, code=exit code or None); a failing RUN says
  "The command '/bin/sh -c exit 3' returned a non-zero code: 3". BuildCancelled when
  host.cancelled() turned true.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import posixpath
import re
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

import requests

from ..images import ImageError, _unlink, canonical_json
from ..spec import DEFAULT_PATH, SpecError, signal_number
from . import dockerfile as D
from .context import (
    Context,
    Entry,
    RootFS,
    clean,
    content_hash,
    glob,
    resolve,
    unpack,
    write_layer,
)

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DOWNLOAD_TIMEOUT = 60
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}


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


@dataclass
class _Stage:
    """The state of the stage being built (Docker's dispatchState)."""
    name: str
    image_id: str                          # "" until a FROM scratch stage commits
    config: dict                           # the current image's full config
    args: dict[str, str | None] = field(default_factory=dict)  # declared ARGs, defaults
    cmd_set: bool = False
    maintainer: str = ""

    @property
    def run(self) -> dict:
        return self.config["config"]


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _env_map(env_list) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env_list or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: ["a" "b c"]."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def _go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                return f"{ns / size:g}{unit}"
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    seconds = f"{ns / 10**9:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def _parse_duration(text: str, flag: str) -> int:
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if not text or pos != len(text):
        raise BuildError(f"invalid argument \"{text}\" for \"--{flag}\" flag: "
                         f"time: invalid duration \"{text}\"")
    return total


class Builder:
    def __init__(self, store, host, options: BuildOptions):
        self.store = store
        self.host = host
        self.options = options
        self.cache_dir = os.path.join(store.images, "buildcache")
        self.step = 0
        self.total = 0
        self.cached = 0
        self.images: list[str] = []
        self.meta: dict[str, str | None] = {}
        self.consumed: set[str] = set()
        self.stages: list[_Stage] = []
        self.escape = "\\"

    # -- the whole build -------------------------------------------------------------
    def build(self, context_dir: str) -> BuildResult:
        try:
            return self._build(context_dir)
        except BuildError:
            raise
        except (ImageError, SpecError) as e:
            raise BuildError(str(e)) from None

    def _build(self, context_dir: str) -> BuildResult:
        self.context = Context(context_dir)
        name = clean(self.options.dockerfile or "Dockerfile")
        try:
            with open(os.path.join(self.context.root, name), encoding="utf-8-sig") as f:
                text = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BuildError(f"Cannot locate specified Dockerfile: {name}") from None
        parsed = D.parse(text, name)
        self.escape = parsed.escape
        stages = parsed.stages
        if self.options.target:
            target = self.options.target.lower()
            names = [s.name for s in stages]
            if target not in names:
                raise BuildError(f"failed to reach build target {self.options.target} in "
                                 "Dockerfile")
            stages = stages[:names.index(target) + 1]
        label_step = self._label_instruction()
        self.total = (len(parsed.meta_args) + sum(1 + len(s.instructions) for s in stages)
                      + (1 if label_step else 0))
        for inst in parsed.meta_args:
            self._announce(inst)
            for key, default in D.arg_pairs(inst, self.escape):
                value = self._sub(default, self._meta_env()) if default is not None else None
                self.consumed.add(key)
                self.meta[key] = self.options.build_args.get(key, value)
        for stage in stages:
            self._stage(stage)
        last = self.stages[-1]
        if label_step:
            self._announce(label_step)
            self._dispatch(last, label_step)
            self._done(last)
        if not last.image_id:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(self.options.build_args) - self.consumed - D.PROXY_ARGS)
        if unused:
            self.host.log(f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                          "consumed\n")
        return BuildResult(last.image_id, self.total, self.cached, list(self.images))

    def _label_instruction(self) -> D.Instruction | None:
        labels = self.options.labels
        if not labels:
            return None
        text = " ".join(f"{json.dumps(k)}='{labels[k]}'" for k in sorted(labels))
        return D.Instruction("LABEL", "LABEL " + text, text, 0)

    def _announce(self, inst: D.Instruction) -> None:
        if self.host.cancelled():
            raise BuildCancelled("build cancelled")
        self.step += 1
        self.host.log(f"Step {self.step}/{self.total} : {inst.original}\n")

    def _done(self, st: _Stage) -> None:
        self.host.log(f" ---> {st.image_id[:12]}\n")

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta.items() if v is not None}

    def _sub(self, word: str, env: dict[str, str]) -> str:
        try:
            return D.substitute(word, env, self.escape)
        except D.DockerfileError as e:
            raise BuildError(f"failed to process {json.dumps(word)}: {e}") from None

    # -- stages -------------------------------------------------------------------------
    def _stage(self, stage: D.Stage) -> None:
        self._announce(stage.start)
        base = self._sub(stage.base, self._meta_env())
        if not base:
            raise BuildError(f"base name ({stage.base}) should not be blank")
        previous = next((s for s in self.stages if s.name and s.name == base.lower()), None)
        if previous is not None:
            image_id, config = previous.image_id, copy.deepcopy(previous.config)
        elif base.lower() == "scratch":
            image_id, config = "", {"architecture": "amd64", "os": "linux", "config": {},
                                    "rootfs": {"type": "layers", "diff_ids": []}}
        else:
            image_id = self.host.base_image(base)
            config = self.store.get_config(image_id)
        config["config"] = dict(config.get("config") or {})
        st = _Stage(stage.name, image_id, config)
        run = st.run
        env = run.get("Env") or []
        if "PATH" not in _env_map(env):
            run["Env"] = list(env) + ["PATH=" + DEFAULT_PATH]
        triggers = run.pop("OnBuild", None) or []
        self.stages.append(st)
        if triggers:
            word = "trigger" if len(triggers) == 1 else "triggers"
            self.host.log(f"# Executing {len(triggers)} build {word}\n")
            for trigger in triggers:
                try:
                    parsed = D.parse(f"FROM scratch\n{trigger}\n")
                except D.DockerfileError as e:
                    raise BuildError(f"invalid ONBUILD trigger {trigger!r}: {e}") from None
                for inst in parsed.stages[0].instructions:
                    self._dispatch(st, inst)
        if st.image_id:
            self._done(st)
        else:
            self.host.log(" ---> \n")
        for inst in stage.instructions:
            self._announce(inst)
            self._dispatch(st, inst)
            self._done(st)

    def _dispatch(self, st: _Stage, inst: D.Instruction) -> None:
        handler = getattr(self, "_do_" + inst.cmd.lower())
        handler(st, inst)

    # -- the environment of a step --------------------------------------------------------
    def _args_in_effect(self, st: _Stage) -> dict[str, str]:
        """Docker's BuildArgs.FilterAllowed: declared ARGs (and proxies given with
        --build-arg) with a value, unless an ENV of the same name overrides them."""
        env = _env_map(st.run.get("Env"))
        out: dict[str, str] = {}
        for key, default in st.args.items():
            if key in self.options.build_args:
                value = self.options.build_args[key]
            elif default is None:
                value = self.meta.get(key)
            else:
                value = default
            if value is not None and key not in env:
                out[key] = value
        for key in D.PROXY_ARGS & set(self.options.build_args) - set(out) - set(env):
            out[key] = self.options.build_args[key]
        return out

    def _env(self, st: _Stage) -> dict[str, str]:
        return {**self._args_in_effect(st), **_env_map(st.run.get("Env"))}

    # -- committing a step ----------------------------------------------------------------
    def _nop(self, st: _Stage, text: str, single: bool = False) -> list[str]:
        shell = list(st.run.get("Shell") or DEFAULT_SHELL)
        return shell + (["#(nop) " + text] if single else ["#(nop) ", text])

    def _cache_key(self, st: _Stage, cmd: list[str], contents: str) -> str:
        return hashlib.sha256(canonical_json(
            [st.image_id, cmd, st.run, st.maintainer, contents])).hexdigest()

    def _cached(self, key: str) -> str | None:
        if self.options.no_cache:
            return None
        try:
            with open(os.path.join(self.cache_dir, key)) as f:
                image_id = f.read().strip()
            config = self.store.get_config(image_id)
        except (OSError, ImageError, ValueError):
            return None
        if all(self.store.has_layer(d) for d in config["rootfs"]["diff_ids"]):
            return image_id
        return None

    def _use(self, st: _Stage, image_id: str, config: dict) -> None:
        self.host.register(image_id, config, st.image_id)
        st.image_id, st.config = image_id, config
        if image_id not in self.images:
            self.images.append(image_id)

    def _try_cache(self, st: _Stage, key: str) -> bool:
        image_id = self._cached(key)
        if image_id is None:
            return False
        self.host.log(" ---> Using cache\n")
        self.cached += 1
        self._use(st, image_id, self.store.get_config(image_id))
        return True

    def _commit(self, st: _Stage, cmd: list[str], key: str, layer_tar: str | None) -> None:
        """A new image: the stage's config (already changed) plus the layer, if any."""
        diff_id = None
        if layer_tar is not None and not _changes_nothing(layer_tar, self._rootfs(st)):
            self.host.check_quota(os.path.getsize(layer_tar))
            diff_id = self.store.add_layer_tar(layer_tar, max_size=self.options.max_layer_size)
        now = _now()
        parent = st.config
        entry = {"created": now, "created_by": " ".join(cmd)}
        if diff_id is None:
            entry["empty_layer"] = True
        diff_ids = list((parent.get("rootfs") or {}).get("diff_ids") or [])
        config = {
            "architecture": parent.get("architecture") or "amd64",
            "os": parent.get("os") or "linux",
            "config": st.run,
            "container_config": {**st.run, "Cmd": cmd},
            "created": now,
            "history": list(parent.get("history") or []) + [entry],
            "rootfs": {"type": "layers", "diff_ids": diff_ids + ([diff_id] if diff_id else [])},
        }
        if parent.get("variant"):
            config["variant"] = parent["variant"]
        if st.maintainer:
            config["author"] = st.maintainer
        image_id = self.store.put_config(config)
        os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.store.tmp, prefix="cache-")
        with os.fdopen(fd, "w") as f:
            f.write(image_id)
        os.replace(tmp, os.path.join(self.cache_dir, key))
        self._use(st, image_id, config)

    def _metadata(self, st: _Stage, text: str, change, single: bool = False) -> None:
        """A step that only changes the config: ``change(run_config)`` on a copy."""
        run = copy.deepcopy(st.run)
        change(run)
        st.config = {**st.config, "config": run}
        cmd = self._nop(st, text, single)
        key = self._cache_key(st, cmd, "")
        if not self._try_cache(st, key):
            self._commit(st, cmd, key, None)

    # -- instructions -----------------------------------------------------------------------
    def _do_env(self, st, inst):
        env = self._env(st)
        pairs = [(self._sub(k, env), self._sub(v, env))
                 for k, v in D.key_values(inst, self.escape)]

        def change(run):
            current = list(run.get("Env") or [])
            for key, value in pairs:
                item = f"{key}={value}"
                index = next((i for i, e in enumerate(current)
                              if e.partition("=")[0] == key), None)
                if index is None:
                    current.append(item)
                else:
                    current[index] = item
            run["Env"] = current
        self._metadata(st, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), change)

    def _do_label(self, st, inst):
        env = self._env(st)
        pairs = [(self._sub(k, env), self._sub(v, env))
                 for k, v in D.key_values(inst, self.escape)]

        def change(run):
            run["Labels"] = {**(run.get("Labels") or {}), **dict(pairs)}
        self._metadata(st, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), change)

    def _do_maintainer(self, st, inst):
        st.maintainer = inst.args
        self._metadata(st, "MAINTAINER " + inst.args, lambda run: None)

    def _do_arg(self, st, inst):
        env = self._env(st)
        parts = []
        for key, default in D.arg_pairs(inst, self.escape):
            value = self._sub(default, env) if default is not None else None
            st.args[key] = value
            self.consumed.add(key)
            parts.append(key if value is None else f"{key}={value}")
        self._metadata(st, "ARG " + " ".join(parts), lambda run: None)

    def _do_user(self, st, inst):
        user = self._sub(inst.args, self._env(st))
        self._metadata(st, "USER " + user, lambda run: run.__setitem__("User", user))

    def _do_stopsignal(self, st, inst):
        sig = self._sub(inst.args, self._env(st))
        try:
            signal_number(sig)
        except SpecError:
            raise BuildError(f"Invalid signal: {sig}") from None
        self._metadata(st, "STOPSIGNAL " + sig,
                       lambda run: run.__setitem__("StopSignal", sig))

    def _do_expose(self, st, inst):
        env = self._env(st)
        words = [self._sub(w, env) for w in inst.args.split()]
        ports: dict[str, dict] = {}
        for word in words:
            port, _, proto = word.partition("/")
            proto = (proto or "tcp").lower()
            first, _, last = port.partition("-")
            if not first.isdigit() or (last and not last.isdigit()) or proto not in (
                    "tcp", "udp", "sctp"):
                raise BuildError(f"Invalid containerPort: {word}")
            for number in range(int(first), int(last or first) + 1):
                ports[f"{number}/{proto}"] = {}

        def change(run):
            run["ExposedPorts"] = {**(run.get("ExposedPorts") or {}), **ports}
        self._metadata(st, "EXPOSE " + " ".join(words), change)

    def _do_volume(self, st, inst):
        env = self._env(st)
        paths = [self._sub(w, env) for w in D.json_or_words(inst.args)]
        if not paths or any(not p.strip() for p in paths):
            raise BuildError("VOLUME specified can not be an empty string")

        def change(run):
            run["Volumes"] = {**(run.get("Volumes") or {}), **{p: {} for p in paths}}
        self._metadata(st, f"VOLUME [{' '.join(paths)}]", change)

    def _command(self, st: _Stage, args: str) -> list[str]:
        parsed = D.exec_form(args)
        if parsed is not None:
            return parsed
        return list(st.run.get("Shell") or DEFAULT_SHELL) + [args]

    def _do_cmd(self, st, inst):
        cmd = self._command(st, inst.args)
        st.cmd_set = True
        self._metadata(st, "CMD " + _go_quote_list(cmd), lambda run: run.__setitem__("Cmd", cmd))

    def _do_entrypoint(self, st, inst):
        entrypoint = self._command(st, inst.args)

        def change(run):
            run["Entrypoint"] = entrypoint
            if not st.cmd_set:
                run["Cmd"] = None
        self._metadata(st, "ENTRYPOINT " + _go_quote_list(entrypoint), change)

    def _do_shell(self, st, inst):
        shell = D.exec_form(inst.args)
        self._metadata(st, f"SHELL [{' '.join(shell)}]",
                       lambda run: run.__setitem__("Shell", shell))

    def _do_onbuild(self, st, inst):
        def change(run):
            run["OnBuild"] = list(run.get("OnBuild") or []) + [inst.args]
        self._metadata(st, "ONBUILD " + inst.args, change)

    def _do_healthcheck(self, st, inst):
        kind, _, rest = inst.args.partition(" ")
        if kind.upper() == "NONE":
            check = {"Test": ["NONE"]}
        else:
            rest = rest.strip()
            if not rest:
                raise BuildError("Missing command after HEALTHCHECK CMD")
            parsed = D.exec_form(rest)
            check = {"Test": ["CMD"] + parsed if parsed is not None else ["CMD-SHELL", rest]}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                              ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                if flag in inst.flags:
                    value = _parse_duration(inst.flags[flag], flag)
                    if 0 < value < 10**6:
                        raise BuildError(f"{key} \"{flag}\" cannot be less than 1ms")
                    check[key] = value
            if "retries" in inst.flags:
                try:
                    check["Retries"] = int(inst.flags["retries"])
                except ValueError:
                    raise BuildError(f"invalid argument \"{inst.flags['retries']}\" for "
                                     "\"--retries\" flag") from None
                if check["Retries"] < 0:
                    raise BuildError("--retries cannot be negative")
        text = ("&{" + _go_quote_list(check["Test"]) + " " + " ".join(
            f'"{_go_duration(check.get(k, 0))}"'
            for k in ("Interval", "Timeout", "StartPeriod")) +
            f" {_go_char(check.get('Retries', 0))}}}")
        self._metadata(st, "HEALTHCHECK " + text,
                       lambda run: run.__setitem__("Healthcheck", check))

    def _do_workdir(self, st, inst):
        path = self._sub(inst.args, self._env(st))
        workdir = posixpath.normpath(posixpath.join(st.run.get("WorkingDir") or "/", path))
        fs = self._rootfs(st)
        target = resolve(fs, clean(workdir))
        entries = [] if _fs_isdir(fs, target) else _with_parents(
            fs, [Entry(target, "dir", 0o755, 0, 0, int(time.time()))])
        run = copy.deepcopy(st.run)
        run["WorkingDir"] = workdir
        st.config = {**st.config, "config": run}
        cmd = self._nop(st, "WORKDIR " + workdir, single=True)
        key = self._cache_key(st, cmd, content_hash(entries))
        if not self._try_cache(st, key):
            self._commit_entries(st, cmd, key, entries)

    def _do_run(self, st, inst):
        if not st.image_id:
            raise BuildError("Please provide a source image with `from` prior to run")
        argv = self._command(st, inst.args)
        args = self._args_in_effect(st)
        shown = sorted(f"{k}={v}" for k, v in args.items()
                       if k not in D.PROXY_ARGS or k in st.args)
        cmd = ([f"|{len(shown)}"] + shown if args else []) + argv
        key = self._cache_key(st, cmd, "")
        if self._try_cache(st, key):
            return
        outcome = self.host.run(st.image_id, argv,
                                env=list(st.run.get("Env") or []) + [
                                    f"{k}={v}" for k, v in sorted(args.items())],
                                user=st.run.get("User") or "",
                                workdir=st.run.get("WorkingDir") or "",
                                shell=list(st.run.get("Shell") or DEFAULT_SHELL))
        try:
            if outcome.exit_code != 0:
                raise BuildError(f"The command '{' '.join(argv)}' returned a non-zero code: "
                                 f"{outcome.exit_code}", code=outcome.exit_code)
            if self.host.cancelled():
                raise BuildCancelled("build cancelled")
            self._commit(st, cmd, key, outcome.layer_tar)
        finally:
            if outcome.layer_tar:
                _unlink(outcome.layer_tar)

    def _do_copy(self, st, inst):
        self._copy(st, inst, add=False)

    def _do_add(self, st, inst):
        self._copy(st, inst, add=True)

    # -- COPY and ADD -----------------------------------------------------------------------
    def _rootfs(self, st: _Stage) -> RootFS:
        return RootFS(self.store.layer_dirs(st.image_id) if st.image_id else [])

    def _source_fs(self, st: _Stage, inst: D.Instruction):
        ref = inst.flags.get("from")
        if ref is None:
            return self.context
        current = len(self.stages) - 1
        stage = None
        if ref.isdigit():
            index = int(ref)
            if index >= current:
                raise BuildError(f"invalid from flag value {ref}: refers to current build "
                                 "stage" if index == current else
                                 f"invalid from flag value {ref}: stage not found")
            stage = self.stages[index]
        else:
            stage = next((s for s in self.stages[:current] if s.name == ref.lower()), None)
        if stage is not None:
            return RootFS(self.store.layer_dirs(stage.image_id) if stage.image_id else [])
        return RootFS(self.store.layer_dirs(self.host.base_image(ref)))

    def _copy(self, st: _Stage, inst: D.Instruction, add: bool) -> None:
        env = self._env(st)
        words = [self._sub(w, env) for w in D.json_or_words(inst.args)]
        sources, dest = words[:-1], words[-1]
        try:
            with tempfile.TemporaryDirectory(dir=self.store.tmp, prefix="copy-") as scratch:
                entries, described = self._copy_plan(st, inst, add, sources, dest, scratch)
                digest = content_hash(entries)
                kind = described if len(sources) == 1 else "multi"
                chown = inst.flags.get("chown")
                text = (f"{inst.cmd} {'--chown=' + chown + ' ' if chown else ''}"
                        f"{kind}:{digest} in {self._dest(st, dest)} ")
                cmd = self._nop(st, text, single=True)
                key = self._cache_key(st, cmd, digest)
                if not self._try_cache(st, key):
                    self._commit_entries(st, cmd, key, entries)
        except ImageError as e:
            raise BuildError(f"{inst.cmd} failed: {e}") from None

    def _dest(self, st: _Stage, dest: str) -> str:
        if dest.startswith("/"):
            return dest
        joined = posixpath.join("/", st.run.get("WorkingDir") or "/", dest)
        return posixpath.normpath(joined) + ("/" if dest.endswith("/") else "")

    def _copy_plan(self, st, inst, add, sources, dest, scratch) -> tuple[list[Entry], str]:
        src_fs = self._source_fs(st, inst)
        fs = self._rootfs(st)
        uid = gid = None
        if inst.flags.get("chown"):
            uid, gid = _chown_ids(fs, self._sub(inst.flags["chown"], self._env(st)))
        chmod = _chmod(inst.flags["chmod"]) if inst.flags.get("chmod") else None
        dest = self._dest(st, dest)
        ends_in_slash = dest.endswith("/")
        infos: list[tuple[object, str, bool]] = []   # (fs, rel, may unpack)
        for n, src in enumerate(sources):
            if add and re.match(r"^https?://", src):
                infos.append(self._download(src, scratch, n))
                continue
            if src_fs is self.context and posixpath.normpath(src).startswith("../"):
                raise BuildError(f"Forbidden path outside the build context: {src} ()")
            if any(c in src for c in "*?["):
                matches = glob(src_fs, src)
                infos += [(src_fs, m, add) for m in matches]
                continue
            rel = resolve(src_fs, clean(src))
            if src_fs.lstat(rel) is None:
                raise BuildError("file not found in build context or excluded by "
                                 f".dockerignore: stat {src}: file does not exist")
            infos.append((src_fs, rel, add))
        if not infos:
            raise BuildError("no source files were specified")
        if len(infos) > 1 and not ends_in_slash:
            raise BuildError(f"When using {inst.cmd} with more than one source file, the "
                             "destination must be a directory and end with a /")
        target = resolve(fs, clean(dest))
        entries: list[Entry] = []
        unpacked_entries: list[Entry] = []   # an archive's own owners and modes
        described = "file"
        for n, (source_fs, rel, may_unpack) in enumerate(infos):
            rel = resolve(source_fs, rel)
            st_src = source_fs.lstat(rel)
            if st_src is None:
                raise BuildError(f"file not found in build context or excluded by "
                                 f".dockerignore: stat {rel}: file does not exist")
            if stat.S_ISDIR(st_src.st_mode):
                described = "dir"
                if not _fs_isdir(fs, target):
                    entries.append(_entry(target, st_src, source_fs.path(rel), uid or 0,
                                          gid or 0))
                entries += _tree(source_fs, rel, target, uid, gid, keep_owners=False)
            elif may_unpack and _is_archive(source_fs.path(rel)):
                unpacked = os.path.join(scratch, f"unpacked-{n}")
                os.mkdir(unpacked)
                unpack(source_fs.path(rel), unpacked, max_size=self.options.max_layer_size)
                unpacked_entries += _tree(Context(unpacked, ignore=False), "", target, None,
                                          None, keep_owners=True)
            else:
                name = target
                if ends_in_slash or _fs_isdir(fs, target):
                    name = clean(f"{target}/{posixpath.basename(rel)}")
                entries.append(_entry(name, st_src, source_fs.path(rel), uid or 0, gid or 0))
        if chmod is not None:
            for e in entries:
                e.mode = e.mode if e.kind == "symlink" else chmod
        return _with_parents(fs, entries + unpacked_entries), described

    def _download(self, url: str, scratch: str, n: int):
        try:
            resp = requests.get(url, stream=True, timeout=_DOWNLOAD_TIMEOUT)
        except requests.RequestException as e:
            raise BuildError(f"failed to GET {url}: {e}") from None
        with resp:
            if resp.status_code >= 400:
                raise BuildError(f"failed to GET {url} with status {resp.status_code} "
                                 f"{resp.reason}: {resp.text[:200]}")
            name = ""
            if resp.headers.get("Content-Disposition"):
                msg = Message()
                msg["content-disposition"] = resp.headers["Content-Disposition"]
                name = posixpath.basename(msg.get_filename() or "")
            name = name or posixpath.basename(urlparse(url).path)
            if not name or name in (".", ".."):
                raise BuildError(f"cannot determine filename for source {url}")
            folder = os.path.join(scratch, f"url-{n}")
            os.mkdir(folder)
            path = os.path.join(folder, name)
            size = 0
            with open(path, "wb") as out:
                for chunk in resp.iter_content(1 << 16):
                    size += len(chunk)
                    if self.options.max_layer_size and size > self.options.max_layer_size:
                        raise BuildError(f"download of {url} is larger than the limit")
                    out.write(chunk)
            os.chmod(path, 0o600)
            modified = resp.headers.get("Last-Modified")
            if modified:
                try:
                    when = parsedate_to_datetime(modified).timestamp()
                    os.utime(path, (when, when))
                except (TypeError, ValueError):
                    pass
        return (Context(folder, ignore=False), name, False)

    def _commit_entries(self, st: _Stage, cmd: list[str], key: str,
                        entries: list[Entry]) -> None:
        fd, tar_path = tempfile.mkstemp(dir=self.store.tmp, prefix="step-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                write_layer(entries, out)
            self._commit(st, cmd, key, tar_path)
        finally:
            _unlink(tar_path)


def _go_char(n: int) -> str:
    return "'" + repr(chr(n))[1:-1] + "'" if 0 <= n < 0x110000 else str(n)


def _changes_nothing(tar_path: str, fs: RootFS) -> bool:
    """Whether a layer tar only repeats dirs the image has as they are (a RUN's upper dir
    holds the dirs of the runtime's mount points, /etc for /etc/hosts): an empty layer."""
    with tarfile.open(tar_path, "r:") as tf:
        for member in tf:
            st = fs.lstat(member.name.rstrip("/"))
            if not member.isdir() or st is None or not stat.S_ISDIR(st.st_mode) or (
                    stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (
                    member.mode, member.uid, member.gid):
                return False
    return True


def _chmod(value: str) -> int:
    """--chmod's octal mode (BuildKit's flag; it applies to the copied files and dirs)."""
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise BuildError(f"invalid chmod parameter: {value}")
    return mode


def _is_archive(path: str) -> bool:
    try:
        with tarfile.open(path, "r:*") as tf:
            tf.next()
        return True
    except (tarfile.TarError, OSError, EOFError):
        return False


def _fs_isdir(fs, rel: str) -> bool:
    if not rel:
        return True
    st = fs.lstat(rel)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _entry(name: str, st: os.stat_result, path: str, uid, gid) -> Entry:
    mode = st.st_mode
    kind = ("dir" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else
            "fifo" if stat.S_ISFIFO(mode) else "file" if stat.S_ISREG(mode) else "")
    if not kind:
        raise BuildError(f"cannot copy {name!r}: not a file, directory or symlink")
    return Entry(name, kind, stat.S_IMODE(mode),
                 st.st_uid if uid is None else uid, st.st_gid if gid is None else gid,
                 int(st.st_mtime), path if kind == "file" else "",
                 os.readlink(path) if kind == "symlink" else "")


def _tree(fs, rel: str, target: str, uid, gid, *, keep_owners: bool) -> list[Entry]:
    """The contents of dir ``rel`` of ``fs`` under ``target``, owned by root (Docker's COPY)
    or ``uid``/``gid``; ``keep_owners`` for an unpacked archive."""
    out: list[Entry] = []
    owner = (None, None) if keep_owners else (uid or 0, gid or 0)
    for name in fs.listdir(rel):
        child = f"{rel}/{name}" if rel else name
        st = fs.lstat(child)
        out.append(_entry(clean(f"{target}/{name}"), st, fs.path(child), *owner))
        if stat.S_ISDIR(st.st_mode):
            out += _tree(fs, child, clean(f"{target}/{name}"), uid, gid,
                         keep_owners=keep_owners)
    return out


def _with_parents(fs: RootFS, entries: list[Entry]) -> list[Entry]:
    """``entries`` after entries for their parent dirs: as the image has them (the overlay
    shows the top layer's dir), or new ones owned by root, 0755."""
    names = {e.name for e in entries}
    parents = {"/".join(e.name.split("/")[:i]) for e in entries
               for i in range(1, e.name.count("/") + 1)} - names
    out = []
    for rel in sorted(parents):
        st = fs.lstat(rel)
        if st is not None and stat.S_ISDIR(st.st_mode):
            out.append(Entry(rel, "dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                             int(st.st_mtime)))
        else:
            out.append(Entry(rel, "dir", 0o755, 0, 0, int(time.time())))
    return out + entries


def _chown_ids(fs: RootFS, spec: str) -> tuple[int, int]:
    """Docker's classic parseChownFlag: names looked up in the image's /etc/passwd and
    /etc/group; a lone user is also looked up as the group."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise BuildError("invalid chown string format: " + spec)
    user, group = (parts[0], parts[0]) if len(parts) == 1 else parts
    return (_lookup(fs, "etc/passwd", user, "can't find uid for user", "no such user"),
            _lookup(fs, "etc/group", group, "can't find gid for group", "no such group"))


def _lookup(fs: RootFS, file: str, name: str, what: str, missing: str) -> int:
    if name.isdigit():
        return int(name)
    path = fs.path(resolve(fs, file))
    if path is None or not os.path.isfile(path):
        raise BuildError(f"{what} {name}: open /{file}: no such file or directory")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                return int(fields[2])
    raise BuildError(f"{what} {name}: {missing}: {name}")
