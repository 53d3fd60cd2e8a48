"""The run form's Storage section: `-v`, `--mount`, `--tmpfs` and `--volumes-from`.

Each field takes one flag's value per line and is turned into Docker's request as the docker
CLI does it (HostConfig.Binds, Mounts, Tmpfs, VolumesFrom). The request's rules are
panel.containers.mounts.validate's: each line is checked with it on its own, so an error
names its line."""

import csv
import os
import re

from django import forms

from panel.containers import mounts as container_mounts
from panel.containers import policy
from panel.containers import services as containers
from panel.containers.resources import parse_bytes
from panel.errors import DockyardError, InvalidParameter

from . import RunSection

_TRUE = {"1", "t", "true"}  # Go's strconv.ParseBool, as the docker CLI reads readonly=...
_FALSE = {"0", "f", "false"}


def _parse_bool(key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise forms.ValidationError(f"invalid value for {key}: {value}")


def _key_value_into(mapping: dict | None, value: str) -> dict:
    """``volume-label=k=v`` / ``volume-opt=k=v``: one more entry of a map."""
    key, _, item = value.partition("=")
    return {**(mapping or {}), key: item}


def parse_mount(text: str) -> dict:
    """One ``--mount`` value as Docker's Mount object, read as the docker CLI reads it."""
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise forms.ValidationError(f"cannot read {text!r} as comma-separated fields") from None
    mount = {"Type": "volume"}  # the CLI's default type
    options = {"bind": {}, "volume": {}, "tmpfs": {}}
    for field in fields:
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if not sep:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                options["volume"]["NoCopy"] = True
            else:
                raise forms.ValidationError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = value.lower()
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "dst", "destination"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _parse_bool(key, value)
        elif key == "bind-propagation":
            options["bind"]["Propagation"] = value.lower()
        elif key == "volume-nocopy":
            options["volume"]["NoCopy"] = _parse_bool(key, value)
        elif key == "volume-label":
            options["volume"]["Labels"] = _key_value_into(options["volume"].get("Labels"), value)
        elif key == "volume-driver":
            options["volume"].setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            config = options["volume"].setdefault("DriverConfig", {})
            config["Options"] = _key_value_into(config.get("Options"), value)
        elif key == "tmpfs-size":
            try:
                options["tmpfs"]["SizeBytes"] = parse_bytes(value)
            except InvalidParameter:
                raise forms.ValidationError(f"invalid value for {key}: {value}") from None
        elif key == "tmpfs-mode":
            try:
                options["tmpfs"]["Mode"] = int(value, 8)
            except ValueError:
                raise forms.ValidationError(f"invalid value for {key}: {value}") from None
        else:
            raise forms.ValidationError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise forms.ValidationError("target is required (dst=/path)")
    for kind, found in options.items():
        if not found:
            continue
        if mount["Type"] != kind:
            raise forms.ValidationError(
                f"cannot mix '{kind}-*' options with mount type '{mount['Type']}'")
        mount[f"{kind.capitalize()}Options"] = found
    return mount


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the non-empty lines that are not # comments. (The fields keep
    leading blank lines, strip=False, so that the numbers are those the user sees.)"""
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")]


def _check_each(items: list[tuple[str, dict]], errors: list[str]) -> None:
    """Validate each (where, request part) alone, so that an error says where it is; raise
    the ``errors`` found so far and these together."""
    for where, host_config in items:
        try:
            container_mounts.validate({}, host_config)
        except DockyardError as exc:
            errors.append(f"{where}: {exc.message}")
    if errors:
        raise forms.ValidationError(errors)


def _textarea(placeholder: str, rows: int = 2):
    return forms.Textarea(attrs={"rows": rows, "placeholder": placeholder, "spellcheck": "false",
                                 "autocomplete": "off"})


class StorageSection(RunSection):
    section_id = "storage-settings"
    section_title = "Storage"
    section_summary = "volumes, bind mounts and tmpfs"
    # Words of the services' errors (lowercased), the field they belong to; the first match
    # wins. clean() catches most of them first; these place what only create() can tell.
    error_fields = (("volumes-from", "volumes_from"), ("invalid mount config", "mounts"),
                    ("tmpfs", "tmpfs"), ("volume", "volumes"), ("bind", "volumes"),
                    ("mount", "mounts"))

    volumes = forms.CharField(
        label="Volumes (-v)", required=False, strip=False,
        widget=_textarea("cass-shared:/var/lib/cassandra/data\n/srv/conf:/etc/app:ro"),
        help_text="One per line: NAME:/path for a named volume (created if missing), "
                  "/host/path:/path to bind a host directory (as the team's policy "
                  "allows), add :ro for read-only. A path alone, like /data, is a new "
                  "anonymous volume.",
    )
    mounts = forms.CharField(
        label="Mounts (--mount)", required=False, strip=False,
        widget=_textarea("type=volume,src=cass-shared,dst=/data\n"
                         "type=bind,src=/srv/conf,dst=/etc/nginx,readonly\n"
                         "type=tmpfs,dst=/cache,tmpfs-size=64m", rows=3),
        help_text="One per line, comma-separated: type=volume|bind|tmpfs, src=, dst=, readonly; "
                  "bind-propagation=rslave; volume-nocopy, volume-label=k=v; tmpfs-size=64m, "
                  "tmpfs-mode=1770.",
    )
    tmpfs = forms.CharField(
        label="tmpfs (--tmpfs)", required=False, strip=False,
        widget=_textarea("/run\n/cache:rw,size=64m,mode=1777"),
        help_text="One path per line, with mount options after a colon. Memory-backed, gone "
                  "with the container; defaults rw,nosuid,nodev,noexec,relatime.",
    )
    volumes_from = forms.CharField(
        label="Volumes from (--volumes-from)", required=False, max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "db-1, cache:ro", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="Containers whose volumes and mounts this one gets too, separated by commas; "
                  ":ro or :rw overrides their mode.",
    )

    def clean_volumes(self):
        lines = _lines(self.cleaned_data["volumes"])
        _check_each([(f"Line {number} ({line})", {"Binds": [line]}) for number, line in lines],
                    [])
        return [line for _, line in lines]

    def clean_mounts(self):
        found, checks, errors = [], [], []
        for number, line in _lines(self.cleaned_data["mounts"]):
            try:
                mount = parse_mount(line)
            except forms.ValidationError as exc:
                errors.append(f"Line {number} ({line}): {exc.messages[0]}")
                continue
            found.append(mount)
            checks.append((f"Line {number} ({line})", {"Mounts": [mount]}))
        _check_each(checks, errors)
        return found

    def clean_tmpfs(self):
        found, checks = {}, []
        for number, line in _lines(self.cleaned_data["tmpfs"]):
            path, _, options = line.partition(":")
            found[path] = options
            checks.append((f"Line {number} ({line})", {"Tmpfs": {path: options}}))
        _check_each(checks, [])
        return found

    def clean_volumes_from(self):
        names = [name for name in re.split(r"[,\s]+", self.cleaned_data["volumes_from"]) if name]
        _check_each([(name, {"VolumesFrom": [name]}) for name in names], [])
        errors = []
        for name in names:  # looked up here too, so that a wrong name is shown on this field
            try:
                containers.resolve(self.user, name.partition(":")[0])
            except DockyardError as exc:
                errors.append(exc.message)
        if errors:
            raise forms.ValidationError(errors)
        return names

    def clean(self):
        """The host-bind policy, asked here too so that a refusal names the field it is about
        (the services ask again at create: they decide)."""
        cleaned = super().clean()
        # the chosen team, or the only one (the form has no team field then)
        team = self.teams.get(cleaned.get("team") or "") or next(iter(self.teams.values()), None)
        binds = [container_mounts.parse_bind(line) for line in cleaned.get("volumes") or []]
        for field, sources in (
                ("volumes", [e["Source"] for e in binds if e["Type"] == "bind"]),
                ("mounts", [os.path.normpath(m["Source"]) for m in cleaned.get("mounts") or []
                            if m["Type"] == "bind"])):
            try:
                policy.check_host_binds(self.user, team, sources)
            except DockyardError as exc:
                self.add_error(field, exc.message)
        return cleaned

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        for key, field in (("Binds", "volumes"), ("Mounts", "mounts"), ("Tmpfs", "tmpfs"),
                           ("VolumesFrom", "volumes_from")):
            if data.get(field):
                host_config[key] = data[field]
