"""`docker build` from the real CLI through the classic builder (POST /build): several -t,
--build-arg, --label, -f with --target, the cache and --no-cache, -q, a gzipped context on
stdin, and plain `docker build` (no DOCKER_BUILDKIT, no buildx) taking the classic path."""

import re

from .build_helpers import SHORT_ID, tar_context, write_context
from .conftest import raw_request

BASE = "busybox:1.29"


def _ok(result):
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result


def _image_id(cli, ref: str) -> str:
    return _ok(cli("image", "inspect", "-f", "{{.Id}}", ref)).stdout.strip()


def test_tags_build_args_labels_and_the_run_output(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": (f"FROM {BASE}\n"
                       "ARG GREETING=hello\n"
                       "ENV GREETING=$GREETING\n"
                       "LABEL stage=final\n"
                       "COPY hello.txt /data/hello.txt\n"
                       'RUN echo "$GREETING from run" > /data/run.txt && echo run-output\n'
                       'CMD ["cat", "/data/hello.txt", "/data/run.txt"]\n'),
        "hello.txt": "hello file\n",
    })
    first, second = build_tags("tags"), build_tags("tags")
    iidfile = tmp_path / "iid"
    r = _ok(cli("build", "-t", first, "-t", second, "--build-arg", "GREETING=bonjour",
                "--label", "built.by=dyapi", "--iidfile", str(iidfile), str(ctx), timeout=180))
    out = r.stdout
    assert "Step 1/8 : FROM busybox:1.29" in out  # --label is a LABEL step at the end
    assert "Step 6/8 : RUN" in out
    assert "run-output" in out  # the RUN step's own output is streamed
    assert re.search(rf"Successfully built {SHORT_ID}\n", out)
    assert f"Successfully tagged {first}" in out and f"Successfully tagged {second}" in out
    assert _image_id(cli, first) == _image_id(cli, second) == iidfile.read_text()  # aux ID
    labels = _ok(cli("image", "inspect", "-f", "{{json .Config.Labels}}", first)).stdout
    assert '"stage":"final"' in labels and '"built.by":"dyapi"' in labels
    r = _ok(cli("run", "--rm", first))
    assert r.stdout == "hello file\nbonjour from run\n"


def test_dockerfile_elsewhere_and_target(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "build/Dockerfile.multi": (f"FROM {BASE} AS base\n"
                                   "RUN echo base > /stage\n"
                                   "FROM base AS final\n"
                                   "RUN echo final > /stage\n"),
    })
    base, final = build_tags("base"), build_tags("final")
    dockerfile = str(ctx / "build" / "Dockerfile.multi")
    _ok(cli("build", "-f", dockerfile, "--target", "base", "-t", base, str(ctx), timeout=180))
    _ok(cli("build", "-f", dockerfile, "-t", final, str(ctx), timeout=180))
    assert _ok(cli("run", "--rm", base, "cat", "/stage")).stdout == "base\n"
    assert _ok(cli("run", "--rm", final, "cat", "/stage")).stdout == "final\n"


def test_dockerfile_on_stdin(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"a.txt": "from the directory\n"})
    with_context, alone = build_tags("stdinf"), build_tags("alone")
    # -f-: the CLI adds the Dockerfile to the directory's context under a random name
    _ok(cli("build", "-f-", "-t", with_context, str(ctx), timeout=180,
            input=f"FROM {BASE}\nCOPY a.txt /a.txt\n"))
    assert _ok(cli("run", "--rm", with_context, "cat", "/a.txt")).stdout == "from the directory\n"
    # `docker build - < Dockerfile`: a context of just that Dockerfile
    _ok(cli("build", "-t", alone, "-", timeout=180,
            input=f"FROM {BASE}\nRUN echo alone > /alone\n"))
    assert _ok(cli("run", "--rm", alone, "cat", "/alone")).stdout == "alone\n"


def test_cache_and_no_cache(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": f"FROM {BASE}\nCOPY a.txt /a.txt\nRUN cat /proc/sys/kernel/random/uuid > /id\n",
        "a.txt": "a\n",
    })
    tag = build_tags("cache")
    first = _ok(cli("build", "-t", tag, str(ctx), timeout=180))
    assert "Using cache" not in first.stdout
    built = _image_id(cli, tag)
    again = _ok(cli("build", "-t", tag, str(ctx), timeout=180))
    assert again.stdout.count(" ---> Using cache") == 2  # COPY and RUN
    assert _image_id(cli, tag) == built
    fresh = _ok(cli("build", "--no-cache", "-t", tag, str(ctx), timeout=180))
    assert "Using cache" not in fresh.stdout
    assert _image_id(cli, tag) != built  # the RUN ran again (a new random id)


def test_quiet_prints_only_the_image_id(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {BASE}\nRUN echo noisy\n"})
    tag = build_tags("quiet")
    r = _ok(cli("build", "-q", "--no-cache", "-t", tag, str(ctx), timeout=180))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout)
    assert r.stdout.strip() == _image_id(cli, tag)


def test_gzipped_context_on_stdin(cli, build_tags):
    body = tar_context({"Dockerfile": f"FROM {BASE}\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
                        "msg": "from a gzipped context\n"}, compress=True)
    tag = build_tags("stdin")
    _ok(cli("build", "-t", tag, "-", input=body, text=False, timeout=180))
    assert _ok(cli("run", "--rm", tag)).stdout == "from a gzipped context\n"


def test_plain_docker_build_takes_the_classic_builder(live_stack, cli, build_tags, tmp_path):
    status, headers, _ = raw_request(live_stack, "GET", "/_ping")
    headers = {name.lower(): value for name, value in headers.items()}
    assert status == 200 and headers.get("builder-version") == "1"
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {BASE}\nLABEL plain=yes\n"})
    tag = build_tags("plain")
    # the CLI's default (DOCKER_BUILDKIT unset): without buildx it falls back to POST /build
    r = _ok(cli("build", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": ""}, timeout=180))
    assert "legacy builder is deprecated" in r.stderr
    assert f"Successfully tagged {tag}" in r.stdout
    # BuildKit explicitly asked for: the CLI needs buildx, which is not there
    r = cli("build", "-t", tag, str(ctx), env={"DOCKER_BUILDKIT": "1"})
    assert r.returncode != 0 and "buildx" in r.stderr


def test_build_prune_answers_like_an_empty_cache(live_stack):
    status, _, body = raw_request(live_stack, "POST", "/v1.41/build/prune")
    assert (status, body) == (200, {"CachesDeleted": [], "SpaceReclaimed": 0})
