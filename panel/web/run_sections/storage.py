"""The run form's Storage section: bind mounts, volumes and tmpfs."""

from . import RunSection


class StorageSection(RunSection):
    section_id = "storage-settings"
    section_title = "Storage"
    section_summary = "bind mounts, volumes and tmpfs"

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        pass
