#!/usr/bin/env python3
"""Dockyard vs Docker: `docker build` of the same 10-step Dockerfile, cold and warm.

    .venv/bin/python bench/bench_build.py [-n 3]

Each round, on each engine, through the real docker CLI with the classic builder
(DOCKER_BUILDKIT=0):
- cold: `docker build --no-cache` (every step runs: 3 RUN containers, a COPY of 40 files);
- warm: the same build again (every step from the cache);
- edit: one copied file changed (the COPY step and everything after it run again).

- Dockyard: a complete isolated stack started for the run (tests/live.py LiveStack: its own
  state root, redis, worker, API socket), so it never meets the dev stack; busybox:1.29 is
  the one `manage.py bootstrap` builds. RUN steps use the default bridge (Dockyard's builder
  has no other network mode).
- Docker: Debian's dockerd (tests/peers.py: own data and exec roots and socket, no firewall
  changes), busybox:1.29 `docker import`ed from the same busybox layer; RUN steps with
  `--network none` (it runs with --bridge=none).

Both engines use the same base image content and the same context. Prints a markdown table
(median, min, max per scenario) and writes var/bench/build.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for entry in (REPO, REPO / "tests"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from bench.bench_run import busybox_layer  # noqa: E402
from tests.live import LiveStack  # noqa: E402
from tests.peers import Cli, DockerEngine  # noqa: E402

BENCH_VAR = Path("/var/tmp/dockyard-bench")
IMAGE = "busybox:1.29"
TAG = "bench-build:latest"
SCENARIOS = ("cold", "warm", "edit")

DOCKERFILE = f"""\
FROM {IMAGE}
ENV APP_HOME=/app MODE=bench
WORKDIR $APP_HOME
COPY app/ ./
RUN mkdir -p data && for i in $(seq 1 2000); do echo "line $i of $MODE"; done > data/lines.txt
RUN sha256sum data/lines.txt files/* > data/sums.txt
LABEL bench.purpose=build
RUN echo 'bench:x:1000:1000::/app:/bin/sh' >> /etc/passwd && chown -R bench data
USER bench
CMD ["cat", "data/sums.txt"]
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def make_context(root: Path) -> Path:
    (root / "app" / "files").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    for i in range(40):
        (root / "app" / "files" / f"f{i:02d}.bin").write_bytes(os.urandom(16 * 1024))
    return root


def edit_context(root: Path, round_no: int) -> None:
    (root / "app" / "files" / "f00.bin").write_bytes(f"edited in round {round_no}\n".encode())


class Engine:
    """How one engine runs `docker build` (a CompletedProcess, raising on failure)."""

    def __init__(self, name: str, run, extra: list[str]):
        self.name, self.run, self.extra = name, run, extra

    def build(self, context: Path, *flags: str) -> float:
        t0 = time.perf_counter()
        r = self.run("build", *self.extra, *flags, "-t", TAG, str(context))
        elapsed = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{self.name}: docker build failed:\n{r.stdout}\n{r.stderr}")
        return elapsed


def measure(engine: Engine, context: Path, rounds: int, times: dict) -> None:
    engine.build(context, "--no-cache")  # warm-up: page cache, first-use code paths
    for i in range(rounds):
        times["cold"].append(engine.build(context, "--no-cache"))
        times["warm"].append(engine.build(context))
        edit_context(context, i)
        times["edit"].append(engine.build(context))
        log(f"{engine.name} round {i + 1}: " + ", ".join(
            f"{s} {times[s][-1]:.2f}s" for s in SCENARIOS))


def bench_dockyard(context: Path, rounds: int, results: dict) -> None:
    stack = LiveStack(base_dir=str(BENCH_VAR))
    log("starting an isolated Dockyard stack")
    stack.start()
    try:
        def run(*args):
            return stack.docker_cli(*args, timeout=600)

        if run("image", "inspect", IMAGE).returncode != 0:
            raise RuntimeError(f"{IMAGE} is not in the stack (manage.py bootstrap builds it)")
        measure(Engine("Dockyard", run, []), context, rounds, results["dockyard"])
    finally:
        problems = stack.stop()
        if problems:
            log("stack cleanup: " + "; ".join(problems))


def bench_docker(context: Path, rounds: int, results: dict) -> None:
    engine = DockerEngine(tempfile.mkdtemp(prefix="peer-", dir=BENCH_VAR))
    engine.start()
    cli = Cli(f"unix://{engine.sock}")
    cli.env["DOCKER_BUILDKIT"] = "0"
    try:
        results["docker_version"] = engine.version()
        cli("import", "--change", 'CMD ["sh"]', "-", IMAGE, input=busybox_layer())

        def run(*args):
            r = cli(*args, check=False, timeout=600)
            return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(),
                                               r.stderr.decode())

        measure(Engine("Docker", run, ["--network", "none"]), context, rounds,
                results["docker"])
    finally:
        cli.close()
        engine.stop()


def report(results: dict, rounds: int) -> str:
    lines = [
        f"`docker build` of a 10-step Dockerfile (FROM {IMAGE}, ENV, WORKDIR, COPY of 40 "
        "files, 3 RUN, LABEL, USER, CMD) through the real CLI, classic builder, "
        f"{rounds} rounds after one warm-up ({platform.machine()}, {os.cpu_count()} CPUs, "
        f"kernel {platform.release()}):",
        "",
        "| scenario | Dockyard median | min | max | Docker median | min | max | "
        "Dockyard vs Docker |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    words = {"cold": "cold (`--no-cache`)", "warm": "warm rebuild (all cached)",
             "edit": "one copied file changed"}
    for scenario in SCENARIOS:
        cells, medians = [], []
        for who in ("dockyard", "docker"):
            values = results[who][scenario]
            if values:
                med = statistics.median(values)
                medians.append(med)
                cells += [f"{med:.2f} s", f"{min(values):.2f} s", f"{max(values):.2f} s"]
            else:
                cells += ["n/a"] * 3
        ratio = f"{medians[0] / medians[1]:.2f}x" if len(medians) == 2 else "-"
        lines.append(f"| {words[scenario]} | {' | '.join(cells)} | {ratio} |")
    lines.append("")
    lines.append(f"Docker: {results.get('docker_version', 'n/a')} (dockerd, classic builder).")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    results: dict = {who: {s: [] for s in SCENARIOS} for who in ("dockyard", "docker")}
    failures = []
    work = Path(tempfile.mkdtemp(prefix="build-ctx-", dir=BENCH_VAR))
    try:
        original = make_context(work / "original")
        for who, bench in (("dockyard", bench_dockyard), ("docker", bench_docker)):
            context = shutil.copytree(original, work / who)  # the same files for each
            try:
                bench(context, args.rounds, results)
            except Exception as e:  # report what could be measured; say what could not
                failures.append(f"{who}: {e}")
                log(f"{who} failed: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            BENCH_VAR.rmdir()  # only when empty: bench_run.py may keep things there
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "build.json").write_text(json.dumps(
        {"rounds": args.rounds, **results, "failures": failures}, indent=2))
    print(report(results, args.rounds))
    for failure in failures:
        print(f"\n> not measured: {failure}")
    return 1 if len(failures) == 2 else 0


if __name__ == "__main__":
    sys.exit(main())
