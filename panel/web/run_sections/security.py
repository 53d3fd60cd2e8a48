"""The run form's Security section: capabilities, privileged, seccomp, read-only root, devices."""

import re

from django import forms

from workers.runtime.security import normalize_cap

from . import RunSection

_DEVICE_MODE = re.compile(r"^[rwm]{1,3}$")


def parse_device(line: str) -> dict:
    """The docker CLI's --device syntax: /dev/x[:/dev/y][:rwm] -> a HostConfig.Devices entry."""
    parts = line.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise ValueError(f"invalid device specification: {line}")
    src, dst, perms = parts[0], parts[0], "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _DEVICE_MODE.match(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    if not _DEVICE_MODE.match(perms):
        raise ValueError(f"invalid device mode: {perms}")
    for path in (src, dst):
        if not path.startswith("/"):
            raise ValueError(f"{path} is not an absolute path")
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


class SecuritySection(RunSection):
    section_id = "security-settings"
    section_title = "Security"
    section_summary = "capabilities, privileged, seccomp, read-only root, devices"
    error_fields = (("--privileged", "privileged"), ("--device", "devices"),
                    ("custom device", "devices"), ("--cap-add", "cap_add"),
                    ("invalid capadd", "cap_add"), ("invalid capdrop", "cap_drop"),
                    ("seccomp", "seccomp_unconfined"))

    cap_add = forms.CharField(
        max_length=1000, required=False, label="Add capabilities",
        widget=forms.TextInput(attrs={"placeholder": "e.g. NET_ADMIN SYS_TIME",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="Names with or without CAP_, separated by spaces or commas; ALL for every "
                  "one (--cap-add). Beyond Docker's default set: as the team's policy allows.",
    )
    cap_drop = forms.CharField(
        max_length=1000, required=False, label="Drop capabilities",
        widget=forms.TextInput(attrs={"placeholder": "e.g. NET_RAW", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="E.g. NET_RAW (no ping, no raw sockets), or ALL (--cap-drop).",
    )
    read_only = forms.BooleanField(
        required=False, label="Read-only root filesystem (--read-only)",
        help_text="/dev, /proc, /sys, volumes and /etc/hosts stay as they are.",
    )
    no_new_privileges = forms.BooleanField(
        required=False, label="No new privileges (--security-opt no-new-privileges)",
        help_text="setuid programs and file capabilities cannot raise privileges.",
    )
    privileged = forms.BooleanField(
        required=False, label="Privileged (--privileged)",
        help_text="Every capability, every device of the node, writable /sys, no seccomp. "
                  "As the team's policy allows.",
    )
    seccomp_unconfined = forms.BooleanField(
        required=False, label="No seccomp filter (--security-opt seccomp=unconfined)",
        help_text="Without Docker's default syscall filter. As the team's policy allows.",
    )
    devices = forms.CharField(
        label="Devices", required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "/dev/video0:/dev/video0:rwm",
                                     "spellcheck": "false"}),
        help_text="One per line: /dev/x[:/dev/y][:rwm] (--device). As the team's policy "
                  "allows.",
    )

    @staticmethod
    def _caps(text: str) -> list[str]:
        names = [n for n in re.split(r"[\s,]+", text.strip()) if n]
        for name in names:
            try:
                normalize_cap(name)
            except ValueError as e:
                raise forms.ValidationError(f"{e}.") from None
        return names

    def clean_cap_add(self):
        return self._caps(self.cleaned_data["cap_add"])

    def clean_cap_drop(self):
        return self._caps(self.cleaned_data["cap_drop"])

    def clean_devices(self):
        out = []
        for line in self.cleaned_data["devices"].splitlines():
            if line.strip():
                try:
                    out.append(parse_device(line.strip()))
                except ValueError as e:
                    raise forms.ValidationError(f"{e}.") from None
        return out

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        for key, field in (("CapAdd", "cap_add"), ("CapDrop", "cap_drop"),
                           ("Devices", "devices")):
            if data.get(field):
                host_config[key] = data[field]
        if data.get("privileged"):
            host_config["Privileged"] = True
        if data.get("read_only"):
            host_config["ReadonlyRootfs"] = True
        options = []
        if data.get("no_new_privileges"):
            options.append("no-new-privileges")
        if data.get("seccomp_unconfined"):
            options.append("seccomp=unconfined")
        if options:
            host_config["SecurityOpt"] = options
