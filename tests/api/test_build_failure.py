"""A failing build through the real CLI: the RUN step's output, Docker's message with the
command and the exit code, the CLI's exit status, and nothing left behind (no RUN
container, no tag); a Dockerfile that does not parse fails before any step."""

from .build_helpers import build_containers, write_context


def _absent(cli, ref: str) -> bool:
    return cli("image", "inspect", ref).returncode != 0


def test_failing_run_reports_step_command_and_exit_code(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": ("FROM busybox:1.29\n"
                       "RUN echo first-step > /first\n"
                       "RUN echo about-to-fail && exit 3\n"
                       "RUN echo never\n"),
    })
    tag = build_tags("fails")
    r = cli("build", "-t", tag, str(ctx), timeout=180)
    assert r.returncode == 3, f"{r.stdout}\n{r.stderr}"
    assert "Step 3/4 : RUN echo about-to-fail && exit 3" in r.stdout
    assert "about-to-fail" in r.stdout.split("Step 3/4", 1)[1]
    assert "Step 4/4" not in r.stdout
    assert ("The command '/bin/sh -c echo about-to-fail && exit 3' returned a non-zero "
            "code: 3") in r.stderr
    assert _absent(cli, tag)
    assert build_containers(cli) == []


def test_failing_exec_form_run(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": 'FROM busybox:1.29\nRUN ["sh", "-c", "exit 7"]\n',
    })
    tag = build_tags("exec")
    r = cli("build", "-q", "-t", tag, str(ctx), timeout=180)
    assert r.returncode == 7
    assert "returned a non-zero code: 7" in r.stderr
    assert _absent(cli, tag)
    assert build_containers(cli) == []


def test_unknown_instruction_fails_before_any_step(cli, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox:1.29\nFORM nothing\n"})
    tag = build_tags("parse")
    r = cli("build", "-t", tag, str(ctx))
    assert r.returncode == 1
    assert "unknown instruction" in r.stderr.lower() and "FORM" in r.stderr.upper()
    assert "Step 1/" not in r.stdout
    assert _absent(cli, tag)
