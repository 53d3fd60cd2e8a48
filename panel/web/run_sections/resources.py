"""The run form's Resources section: memory, CPUs, pids and block IO limits."""

from . import RunSection


class ResourcesSection(RunSection):
    section_id = "resource-settings"
    section_title = "Resources"
    section_summary = "memory, CPUs, pids and block IO limits"

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        pass
