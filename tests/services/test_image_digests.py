"""Digest references: parsing, lookup by RepoDigest, a digest held by one image only."""

from datetime import UTC, datetime

import pytest

from panel.errors import InvalidParameter, NotFound
from panel.images import references
from panel.images import services as images
from panel.images.models import Image
from panel.nodes.services import local_node

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("ref, repository, tag, digest, registry", [
    (f"busybox@{DIGEST}", "busybox", "", DIGEST, "docker.io"),
    (f"localhost:5000/a/b@{DIGEST}", "localhost:5000/a/b", "", DIGEST, "localhost:5000"),
    (f"docker.io/library/alpine:3@{DIGEST}", "alpine", "3", DIGEST, "docker.io"),
    ("registry.example.com/team/app:v1", "registry.example.com/team/app", "v1", "",
     "registry.example.com"),
])
def test_parse(ref, repository, tag, digest, registry):
    parsed = references.parse(ref)
    assert (parsed.repository, parsed.tag, parsed.digest, parsed.registry) == (
        repository, tag, digest, registry)


@pytest.mark.parametrize("ref", ["busybox@sha256:abc", "busybox@md5:" + "a" * 32, "a@"])
def test_invalid(ref):
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        references.parse(ref)


def test_a_digest_cannot_be_a_tag():
    with pytest.raises(InvalidParameter, match="refusing to create a tag with a digest"):
        references.parse_tag(f"app@{DIGEST}")


def test_resolve_and_move_digests(owner, team):
    def register(char, digests):
        return images.register_image(config={"created": "2023-05-01T10:00:00.123456789Z"},
                                     image_id=char * 64, layers=[], size=0, node=local_node(),
                                     team=team, repo_digests=digests)

    first = register("1", [f"app@{DIGEST}"])
    assert first.created == datetime(2023, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert images.resolve(owner, f"app@{DIGEST}") == first
    with pytest.raises(NotFound):
        images.resolve(owner, f"other@{DIGEST}")
    second = register("2", [f"app@{DIGEST}"])
    assert images.resolve(owner, f"app@{DIGEST}") == second
    assert Image.objects.get(pk=first.pk).repo_digests == []
