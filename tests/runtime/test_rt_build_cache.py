"""The build cache: an unchanged rebuild reuses every step (same ids, " ---> Using cache",
no container run); a changed COPY source rebuilds from that step on; a changed file's mtime
alone does not; a changed build arg misses the RUN that sees it; no_cache rebuilds all; a
cached image whose layer is gone is not used."""

import os

from buildkit import build, host, read, write_context  # noqa: F401

DOCKERFILE = """\
FROM busybox
ARG FLAVOR=plain
RUN echo base > /base
COPY app.txt /app/
RUN cat /app/app.txt > /app/seen
ENV DONE=1
"""


def test_cache_hits_and_misses(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "app.txt": "v1"})
    first = build(store, host, ctx)
    assert first.cached_steps == 0 and len(host.runs) == 2
    made = list(first.images)

    host.output.clear()
    again = build(store, host, ctx)
    assert again.image_id == first.image_id and again.images == made
    assert again.cached_steps == 5 and len(host.runs) == 2          # no new container
    assert host.text.count(" ---> Using cache\n") == 5

    os.utime(os.path.join(ctx, "app.txt"), (1, 1))                   # times are not content
    assert build(store, host, ctx).image_id == first.image_id

    write_context(ctx, {"app.txt": "v2"})
    host.output.clear()
    changed = build(store, host, ctx)
    assert changed.cached_steps == 2                                 # ARG, first RUN
    assert changed.images[:2] == made[:2] and not set(changed.images[2:]) & set(made)
    assert read(store, changed.image_id, "app/seen") == "v2"
    assert len(host.runs) == 3

    host.output.clear()
    other_arg = build(store, host, ctx, build_args={"FLAVOR": "spicy"})
    assert other_arg.cached_steps == 1 and len(host.runs) == 5       # both RUNs see FLAVOR

    host.output.clear()
    fresh = build(store, host, ctx, no_cache=True)
    assert fresh.cached_steps == 0 and "Using cache" not in host.text
    assert fresh.image_id != changed.image_id and len(host.runs) == 7


def test_cache_entry_without_its_layer_is_not_used(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "app.txt": "v1"})
    first = build(store, host, ctx)
    copy_image = store.get_config(first.images[2])
    store.delete_layer(copy_image["rootfs"]["diff_ids"][-1])
    again = build(store, host, ctx)
    assert again.cached_steps == 2 and read(store, again.image_id, "app/seen") == "v1"
