"""`--change` of docker commit and docker import: Dockerfile instructions applied to a run
config (Docker's casing: Cmd, Entrypoint, Env, ExposedPorts, Labels, OnBuild, User, Volumes,
WorkingDir, StopSignal)."""

import copy
import io
import json
import posixpath
import shlex

from dockerfile_parse import DockerfileParser

from panel.errors import InvalidParameter


def _json_list(value: str) -> list[str] | None:
    """The exec form's JSON array of strings, None when the value is not one."""
    try:
        parsed = json.loads(value) if value.startswith("[") else None
    except json.JSONDecodeError:
        return None
    if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
        return parsed
    return None


def _json_or_shell(value: str) -> list[str]:
    """The exec form or the shell form (`/bin/sh -c ...`)."""
    exec_form = _json_list(value)
    return exec_form if exec_form is not None else ["/bin/sh", "-c", value]


def _pairs(instruction: str, value: str) -> list[tuple[str, str]]:
    """ENV/LABEL: `key=value ...` (quoted as a shell would) or the old `key value`."""
    words = shlex.split(value)
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, rest = value.strip().partition(" ")
        if instruction == "LABEL" or not rest.strip():
            raise InvalidParameter(f"{instruction} names can not be blank"
                                   if not key else f"{instruction} must have two arguments")
        return [(key, rest.strip())]
    pairs = []
    for word in words:
        key, sep, val = word.partition("=")
        if not sep or not key:
            raise InvalidParameter(f"Syntax error - can't find = in {word!r}. "
                                   "Must be of the form: name=value")
        pairs.append((key, val))
    return pairs


def _set_env(config: dict, key: str, value: str) -> None:
    env = [e for e in config.get("Env") or [] if e.partition("=")[0] != key]
    config["Env"] = [*env, f"{key}={value}"]


def _port(spec: str) -> str:
    port, _, proto = spec.partition("/")
    if not port.replace("-", "").isdigit():
        raise InvalidParameter(f"Invalid containerPort: {port}")
    return f"{port}/{(proto or 'tcp').lower()}"


def apply_changes(config: dict, changes: list[str]) -> dict:
    """A copy of ``config`` with each change applied in order; an instruction that a commit
    cannot carry (RUN, COPY, FROM...) is Docker's 400."""
    result = copy.deepcopy(config or {})
    if not changes:
        return result
    parser = DockerfileParser(fileobj=io.BytesIO())
    parser.content = "\n".join(changes) + "\n"
    cmd_set = False
    for entry in parser.structure:
        instruction, value = entry["instruction"], entry["value"].strip()
        if instruction == "CMD":
            result["Cmd"] = _json_or_shell(value)
            cmd_set = True
        elif instruction == "ENTRYPOINT":
            result["Entrypoint"] = _json_or_shell(value)
            if not cmd_set:  # as in a Dockerfile: a new entrypoint drops the inherited CMD
                result["Cmd"] = None
        elif instruction == "ENV":
            for key, val in _pairs("ENV", value):
                _set_env(result, key, val)
        elif instruction == "LABEL":
            result["Labels"] = {**(result.get("Labels") or {}), **dict(_pairs("LABEL", value))}
        elif instruction == "EXPOSE":
            ports = result.get("ExposedPorts") or {}
            result["ExposedPorts"] = {**ports, **{_port(p): {} for p in value.split()}}
        elif instruction == "VOLUME":
            paths = _json_list(value)
            paths = value.split() if paths is None else paths
            result["Volumes"] = {**(result.get("Volumes") or {}), **{p: {} for p in paths}}
        elif instruction == "WORKDIR":
            result["WorkingDir"] = posixpath.join(result.get("WorkingDir") or "/", value)
        elif instruction == "USER":
            result["User"] = value
        elif instruction == "ONBUILD":
            result["OnBuild"] = [*(result.get("OnBuild") or []), value]
        elif instruction == "STOPSIGNAL":
            result["StopSignal"] = value
        else:
            raise InvalidParameter(f"{instruction.lower()} is not a valid change command")
    return result


def merge(config: dict, base: dict) -> dict:
    """Docker's commit merge: what ``config`` leaves unset comes from ``base`` (the
    container's config); Env, Labels, ExposedPorts and Volumes gain the base's other keys."""
    result = copy.deepcopy(config)
    result["User"] = result.get("User") or base.get("User") or ""
    names = {e.partition("=")[0] for e in result.get("Env") or []}
    result["Env"] = [*(result.get("Env") or []),
                     *(e for e in base.get("Env") or [] if e.partition("=")[0] not in names)]
    for key in ("Labels", "ExposedPorts", "Volumes"):
        merged = {**(base.get(key) or {}), **(result.get(key) or {})}
        result[key] = merged or None
    if not result.get("Entrypoint"):
        if not result.get("Cmd"):
            result["Cmd"] = base.get("Cmd")
        if result.get("Entrypoint") is None:
            result["Entrypoint"] = base.get("Entrypoint")
    result["WorkingDir"] = result.get("WorkingDir") or base.get("WorkingDir") or ""
    stop_signal = result.pop("StopSignal", None) or base.get("StopSignal")
    if stop_signal:
        result["StopSignal"] = stop_signal
    return result
