"""RemoteRef.parse follows Docker's reference rules; is_insecure matches host, host:port, CIDR."""

import pytest

from workers.runtime import oci
from workers.runtime.registry import RegistryError, RemoteRef, is_insecure

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, expected", [
    ("busybox", ("docker.io", "library/busybox", "latest", "")),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", "")),
    ("user/app", ("docker.io", "user/app", "latest", "")),
    ("docker.io/library/alpine:3", ("docker.io", "library/alpine", "3", "")),
    ("index.docker.io/user/app", ("docker.io", "user/app", "latest", "")),
    ("localhost/app", ("localhost", "app", "latest", "")),
    ("localhost:5000/a/b:v1", ("localhost:5000", "a/b", "v1", "")),
    ("127.0.0.1:5000/a/b@" + DIGEST, ("127.0.0.1:5000", "a/b", "", DIGEST)),
    ("ghcr.io/o/r:t@" + DIGEST, ("ghcr.io", "o/r", "t", DIGEST)),
])
def test_parse(text, expected):
    ref = RemoteRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected


def test_names():
    assert RemoteRef.parse("busybox:1.36").name == "busybox"
    assert RemoteRef.parse("busybox").full_name == "docker.io/library/busybox"
    assert str(RemoteRef.parse("localhost:5000/a/b:v1")) == "localhost:5000/a/b:v1"


@pytest.mark.parametrize("text", ["", "UPPER/case", "a/b:", "a@sha256:abc", "a//b",
                                  "a/b:" + "t" * 129, "-a/b"])
def test_invalid(text):
    with pytest.raises(RegistryError) as e:
        RemoteRef.parse(text)
    assert e.value.http_status == 400
    assert "invalid reference format" in str(e.value)


def test_is_insecure():
    patterns = ["127.0.0.0/8", "localhost", "reg.lan:5000", "fd00::/8"]
    assert is_insecure("127.0.0.1:5000", patterns)
    assert is_insecure("127.9.9.9", patterns)
    assert is_insecure("localhost:5000", patterns)
    assert is_insecure("reg.lan:5000", patterns)
    assert is_insecure("[fd00::1]:5000", patterns)
    assert not is_insecure("reg.lan:5001", patterns)
    assert not is_insecure("reg.lan", patterns)
    assert not is_insecure("10.0.0.1:5000", patterns)
    assert not is_insecure("docker.io", patterns)
    assert not is_insecure("127.0.0.1:5000", [])


def test_host_platform_in_oci_words():
    import platform

    expected = {"x86_64": ("linux", "amd64", ""), "aarch64": ("linux", "arm64", "v8")}
    assert oci.host_platform() == expected.get(platform.machine(), oci.host_platform())


@pytest.mark.parametrize("text, expected", [
    ("linux/arm64/v8", ("linux", "arm64", "v8")),
    ("linux/amd64", ("linux", "amd64", "")),
])
def test_parse_platform(text, expected):
    assert oci.parse_platform(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux//v8", "a/b/c/d"])
def test_parse_platform_refuses_malformed(text):
    with pytest.raises(ValueError, match="invalid platform"):
        oci.parse_platform(text)
