"""Capabilities in all five sets after execve, as Docker 20.10.14+ sets them (real kernel)."""

import pytest

from workers.runtime import security
from workers.runtime.spec import SpecError, validate

DEFAULT = 0xA80425FB  # Docker's default set
NET_RAW = 1 << 13
SYS_ADMIN = 1 << 21


def _node_bounding() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


def caps_of(run, **kw) -> dict:
    code, out, err = run(["grep", "^Cap", "/proc/self/status"], **kw)
    assert code == 0, (out, err)
    return {line.split(":")[0]: int(line.split()[1], 16) for line in out.splitlines()}


def test_default_root(run):
    caps = caps_of(run)
    assert caps == {"CapInh": 0, "CapPrm": DEFAULT, "CapEff": DEFAULT, "CapBnd": DEFAULT,
                    "CapAmb": 0}


def test_non_root_user_has_no_effective_caps(run):
    caps = caps_of(run, user="nobody")
    assert caps == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": DEFAULT, "CapAmb": 0}


def test_cap_add_and_drop_with_docker_spellings(run):
    caps = caps_of(run, cap_add=["sys_admin"], cap_drop=["Net_Raw"])
    want = DEFAULT - NET_RAW + SYS_ADMIN
    assert caps == {"CapInh": 0, "CapPrm": want, "CapEff": want, "CapBnd": want, "CapAmb": 0}


def test_cap_drop_all_keeps_only_added(run):
    assert caps_of(run, cap_drop=["ALL"]) == dict.fromkeys(
        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    caps = caps_of(run, cap_drop=["all"], cap_add=["CAP_KILL"])
    assert caps["CapEff"] == caps["CapBnd"] == 1 << 5


def test_cap_add_all_minus_drop(run):
    caps = caps_of(run, cap_add=["ALL"], cap_drop=["MKNOD"])
    assert caps["CapBnd"] == _node_bounding() & ~(1 << 27)
    assert caps["CapInh"] == caps["CapAmb"] == 0


def test_privileged_has_every_capability(run):
    node = _node_bounding()
    caps = caps_of(run, privileged=True)
    assert caps == {"CapInh": 0, "CapPrm": node, "CapEff": node, "CapBnd": node, "CapAmb": 0}


def test_no_new_privileges(run):
    code, out, _ = run(["grep", "NoNewPrivs", "/proc/self/status"], no_new_privileges=True)
    assert code == 0 and out.split()[-1] == "1"
    code, out, _ = run(["grep", "NoNewPrivs", "/proc/self/status"])
    assert out.split()[-1] == "0"


def test_unknown_capability_is_refused(make_spec):
    with pytest.raises(SpecError, match='unknown capability: "CAP_NOPE"'):
        validate(make_spec(["true"], cap_add=["nope"]))


def test_container_caps_follow_docker_rules():
    assert security.container_caps({}) == [c for c in security.CAP_NAMES
                                           if c in security.DEFAULT_CAPS]
    assert security.container_caps({"cap_drop": ["all"], "cap_add": ["net_admin"]}) == [
        "CAP_NET_ADMIN"]
    assert "CAP_NET_RAW" not in security.container_caps({"cap_drop": ["net_raw"]})
