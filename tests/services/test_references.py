import pytest

from panel.errors import InvalidParameter
from panel.images.references import parse


@pytest.mark.parametrize(
    "ref, repository, tag",
    [
        ("busybox", "busybox", "latest"),
        ("busybox:1.29", "busybox", "1.29"),
        ("docker.io/library/busybox:1.29", "busybox", "1.29"),
        ("dia_ch3/dockerfile:latest", "dia_ch3/dockerfile", "latest"),
        ("localhost:5000/app", "localhost:5000/app", "latest"),
        ("localhost:5000/app:v1", "localhost:5000/app", "v1"),
    ],
)
def test_parse(ref, repository, tag):
    parsed = parse(ref)
    assert (parsed.repository, parsed.tag) == (repository, tag)


@pytest.mark.parametrize("ref", ["Busybox", "busybox:", "a b", "busybox:-x"])
def test_invalid(ref):
    with pytest.raises(InvalidParameter):
        parse(ref)
