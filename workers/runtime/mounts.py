"""Bind mounts, tmpfs and volumes inside a container's root (the Storage issue).

``mount_all(cfg, rootfs)`` runs in the container's init (C2) in its own mount namespace,
after /proc, /sys and /dev and before /etc/hosts and pivot_root.
"""


def mount_all(cfg: dict, rootfs: str) -> None:
    """Mount ``cfg["mounts"]`` under ``rootfs``, in order."""
