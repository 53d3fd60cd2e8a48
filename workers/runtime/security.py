"""What a container process may do: capabilities, no_new_privs, seccomp, read-only and
masked paths, sysctls (the Resources and security issue).

Runs in the container's init (C2): ``harden_rootfs`` right after pivot_root, while the
process still has every capability; ``apply_process`` last, right before execve.
"""


def harden_rootfs(cfg: dict) -> None:
    """Read-only root, sysctls: after pivot_root, before the user is switched."""


def apply_process(cfg: dict) -> None:
    """Capabilities, no_new_privs and seccomp: the last step before execve."""
