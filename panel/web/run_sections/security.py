"""The run form's Security section: capabilities, privileged, seccomp, read-only root, devices."""

from . import RunSection


class SecuritySection(RunSection):
    section_id = "security-settings"
    section_title = "Security"
    section_summary = "capabilities, privileged, seccomp, read-only root, devices"

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        pass
