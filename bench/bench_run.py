#!/usr/bin/env python3
"""Dockyard vs Docker: latency of `docker run --rm busybox:1.29 true`, and idle shim memory.

    .venv/bin/python bench/bench_run.py [-n 20] [--no-docker] [--no-runc] [--no-dockyard]

- Dockyard: through the real docker CLI at unix:///run/dockyard/docker.sock. If the stack
  does not answer, it is started with scripts/stack.sh (and stopped again at the end).
- Docker: Debian's dockerd (docker.io, tests/peers.py), started here with its own data and
  exec roots and socket (under /var/tmp/dockyard-bench), `--bridge=none --iptables=false
  --ip6tables=false` so the host's firewall is untouched, and stopped afterwards. It cannot
  pull, so busybox:1.29 is `docker import`ed from the same busybox layer Dockyard builds.
- runc alone (if installed): `runc run` of a bundle with that layer as rootfs.
- Memory: RSS of an idle Dockyard shim vs containerd-shim-runc-v2, one `sleep 600` each.

Prints a markdown table (for the README's Benchmarks section) and writes var/bench/last.json.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.peers import Cli, DockerEngine, ping  # noqa: E402  (shared with the tests)

DOCKYARD_SOCK = os.environ.get("DOCKYARD_API_SOCKET", "/run/dockyard/docker.sock")
BENCH_VAR = Path("/var/tmp/dockyard-bench")
IMAGE = "busybox:1.29"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def time_runs(cli: Cli, n: int, args: list[str]) -> list[float]:
    cli(*args)  # warm-up: page cache, first-use paths
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        r = cli(*args, check=False)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"run {i} failed: {r.stderr.decode(errors='replace').strip()}")
        times.append(dt)
    return times


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pids_matching(*needles: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if all(n.encode() in cmd for n in needles):
            found.append(int(entry))
    return found


def shim_rss(cli: Cli, shim_marker: str, name: str) -> int | None:
    """Start a `sleep 600` container, let it settle, read its shim's RSS (KiB), remove it."""
    cli("rm", "-f", name, check=False)
    cid = cli("run", "-d", "--name", name, IMAGE, "sleep", "600").stdout.decode().strip()
    try:
        time.sleep(2.0)
        pids = pids_matching(shim_marker, cid) or pids_matching(shim_marker, cid[:12])
        values = [v for v in (rss_kib(p) for p in pids) if v]
        return max(values) if values else None
    finally:
        cli("rm", "-f", name, check=False)


# ------------------------------------------------------------------------------ Dockyard


def ensure_dockyard() -> bool:
    """Make sure the Dockyard stack answers; returns True if this script started it."""
    if ping(DOCKYARD_SOCK):
        return False
    log("the Dockyard stack does not answer: starting it (scripts/stack.sh start)")
    subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "start"], check=True,
                   stdout=sys.stderr)
    if not ping(DOCKYARD_SOCK):
        sys.exit(f"Dockyard does not answer on {DOCKYARD_SOCK}")
    return True


def bench_dockyard(n: int, results: dict) -> None:
    started = ensure_dockyard()
    cli = Cli(f"unix://{DOCKYARD_SOCK}")
    try:
        if cli("image", "inspect", IMAGE, check=False).returncode != 0:
            raise RuntimeError(f"{IMAGE} is not in Dockyard (manage.py bootstrap builds it)")
        log(f"Dockyard: {n} x docker run --rm {IMAGE} true")
        results["dockyard"] = time_runs(cli, n, ["run", "--rm", IMAGE, "true"])
        results["dockyard_shim_rss_kib"] = shim_rss(cli, "workers.runtime.shim", "dockyard-bench-idle")
    finally:
        cli.close()
        if started:
            subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "stop"], stdout=sys.stderr)


# ------------------------------------------------------------------------------ Docker


def busybox_layer() -> bytes:
    from workers.runtime.images import build_busybox_layer

    busybox = "/bin/busybox" if os.path.exists("/bin/busybox") else shutil.which("busybox")
    return build_busybox_layer(busybox_path=busybox)


def bench_docker(n: int, layer: bytes, results: dict) -> None:
    engine = DockerEngine(BENCH_VAR)
    engine.start()
    cli = engine.cli
    try:
        results["docker_version"] = engine.version()
        cli("import", "--change", 'CMD ["sh"]', "-", IMAGE, input=layer)
        log(f"Docker {results['docker_version']}: {n} x docker run --rm {IMAGE} true")
        results["docker"] = time_runs(cli, n, ["run", "--rm", IMAGE, "true"])
        results["docker_shim_rss_kib"] = shim_rss(cli, "containerd-shim", "dockyard-bench-idle")
    finally:
        engine.stop()


# ------------------------------------------------------------------------------ runc


def bench_runc(n: int, layer: bytes, results: dict) -> None:
    runc = shutil.which("runc")
    if not runc:
        log("runc not installed: skipped")
        return
    base = Path(tempfile.mkdtemp(prefix="runc-", dir="/var/tmp"))
    try:
        rootfs = base / "rootfs"
        rootfs.mkdir()
        with tarfile.open(fileobj=io.BytesIO(layer)) as tf:
            tf.extractall(rootfs, filter="tar") if hasattr(tarfile, "data_filter") else tf.extractall(rootfs)
        subprocess.run([runc, "spec"], cwd=base, check=True)
        spec = json.loads((base / "config.json").read_text())
        spec["process"]["args"] = ["true"]
        spec["process"]["terminal"] = False
        spec["root"]["readonly"] = False
        (base / "config.json").write_text(json.dumps(spec))
        state = base / "state"

        def once(i: int) -> float:
            t0 = time.perf_counter()
            r = subprocess.run([runc, "--root", str(state), "run", "--bundle", str(base), f"dybench{i}"],
                               capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                raise RuntimeError(f"runc run failed: {r.stderr.decode(errors='replace')}")
            return dt

        log(f"runc: {n} x runc run (true)")
        once(-1)
        results["runc"] = [once(i) for i in range(n)]
        results["runc_version"] = subprocess.run([runc, "--version"], capture_output=True,
                                                 text=True).stdout.split("\n")[0]
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------ report


def p90(values: list[float]) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def report(results: dict, n: int) -> str:
    rows = []
    docker_median = statistics.median(results["docker"]) if results.get("docker") else None
    labels = [
        ("dockyard", "Dockyard (Python engine, shim per container)"),
        ("docker", f"Docker {results.get('docker_version', '')} (containerd + runc)".replace("  ", " ")),
        ("runc", f"runc alone ({results.get('runc_version', 'runc')})"),
    ]
    for key, label in labels:
        values = results.get(key)
        if not values:
            continue
        med = statistics.median(values)
        ratio = f"{med / docker_median:.2f}x" if docker_median else "-"
        rows.append(f"| {label} | {len(values)} | {med * 1000:.0f} ms | {p90(values) * 1000:.0f} ms | "
                    f"{min(values) * 1000:.0f} ms | {ratio} |")

    def mib(kib):
        return f"{kib / 1024:.1f} MiB" if kib else "n/a"

    lines = [
        f"`docker run --rm {IMAGE} true`, {n} runs after one warm-up, wall time of the docker CLI "
        f"({platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}):",
        "",
        "| engine | runs | median | p90 | min | median vs Docker |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Idle shim memory (RSS of the shim of one `sleep 600` container):",
        "",
        "| shim | RSS |",
        "| --- | ---: |",
        f"| Dockyard shim (`workers.runtime.shim`) | {mib(results.get('dockyard_shim_rss_kib'))} |",
        f"| containerd-shim-runc-v2 | {mib(results.get('docker_shim_rss_kib'))} |",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--runs", type=int, default=20)
    ap.add_argument("--no-dockyard", action="store_true")
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--no-runc", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")

    results: dict = {}
    failures = []
    layer = None
    if not (args.no_docker and args.no_runc):
        layer = busybox_layer()
    steps = [
        ("dockyard", not args.no_dockyard, lambda: bench_dockyard(args.runs, results)),
        ("docker", not args.no_docker, lambda: bench_docker(args.runs, layer, results)),
        ("runc", not args.no_runc, lambda: bench_runc(args.runs, layer, results)),
    ]
    for name, wanted, step in steps:
        if not wanted:
            continue
        try:
            step()
        except Exception as e:  # report what could be measured; say what could not
            failures.append(f"{name}: {e}")
            log(f"{name} failed: {e}")

    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "last.json").write_text(json.dumps({"runs": args.runs, **results, "failures": failures},
                                              indent=2))
    print(report(results, args.runs))
    for f in failures:
        print(f"\n> not measured: {f}")
    return 1 if failures and not (results.get("dockyard") or results.get("docker")) else 0


if __name__ == "__main__":
    sys.exit(main())
