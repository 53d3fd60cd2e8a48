#!/usr/bin/env python3
"""Dockyard vs Docker: pull of the same multi-layer image from a loopback registry.

    .venv/bin/python bench/bench_pull.py [-n 5] [--layers 4] [--layer-mib 8]

- Registry: Debian's docker-registry on 127.0.0.1 (tests/registry.py), anonymous; the image
  (``--layers`` layers, each one file of ``--layer-mib`` MiB of random data, gzipped) is
  pushed once with skopeo.
- Dockyard: ``workers.runtime.registry.pull`` into a fresh ImageStore each round (download,
  digest check, unpack), in this process.
- Docker: Debian's dockerd (tests/peers.py: own data root, exec root and socket, no firewall
  changes), which treats 127.0.0.0/8 registries as insecure; each round ``docker rmi`` first,
  then ``POST /images/create`` on its socket, timed until the progress stream ends.

The two alternate within a round. Prints a markdown table (median, min, max over the rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.peers import DockerEngine  # noqa: E402  (shared with the tests)
from tests.registry import LocalRegistry, file_layer  # noqa: E402
from workers.runtime.images import ImageStore  # noqa: E402
from workers.runtime.registry import RemoteRef, pull  # noqa: E402

BENCH_VAR = Path("/var/tmp/dockyard-bench")
REPOSITORY = "bench/layers"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=300)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(300)
        self.sock.connect(self.path)


def docker_pull(engine: DockerEngine, name: str) -> float:
    """Seconds for the engine to pull ``name`` (the API call, until its stream ends)."""
    image, _, tag = name.rpartition(":")
    conn = _UnixHTTPConnection(engine.sock)
    try:
        t0 = time.perf_counter()
        conn.request("POST", f"/v1.41/images/create?fromImage={image}&tag={tag}")
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()
    if resp.status != 200 or b'"error"' in body:
        raise RuntimeError(f"docker pull {name}: {resp.status} {body[-500:]!r}")
    if b"Already exists" in body:
        raise RuntimeError(f"docker pull {name}: layers left from an earlier round")
    return elapsed


def dockyard_pull(name: str) -> float:
    root = tempfile.mkdtemp(prefix="store-", dir=BENCH_VAR)
    try:
        store = ImageStore(root)
        t0 = time.perf_counter()
        pull(store, RemoteRef.parse(name), insecure=True)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--rounds", type=int, default=5)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--layer-mib", type=int, default=8)
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("needs root (dockerd, layer unpacking)")
        return 2
    BENCH_VAR.mkdir(parents=True, exist_ok=True)

    layers = [file_layer(f"data/layer{i}.bin", os.urandom(args.layer_mib << 20))
              for i in range(args.layers)]
    registry = LocalRegistry("none")
    engine = DockerEngine(tempfile.mkdtemp(prefix="peer-", dir=BENCH_VAR))
    times: dict[str, list[float]] = {"dockyard": [], "docker": []}
    try:
        registry.push_image(REPOSITORY + ":latest", layers, fmt="v2s2")
        name = f"{registry.host}/{REPOSITORY}:latest"
        log(f"pushed {name}: {args.layers} layers x {args.layer_mib} MiB")
        engine.start()
        version = engine.version()
        # Warm-up: page cache, first-use code paths on both sides.
        dockyard_pull(name)
        docker_pull(engine, name)
        for i in range(args.rounds):
            order = ["dockyard", "docker"] if i % 2 == 0 else ["docker", "dockyard"]
            for who in order:
                if who == "docker":
                    engine.cli("rmi", name)  # its layers go too: nothing is "Already exists"
                dt = dockyard_pull(name) if who == "dockyard" else docker_pull(engine, name)
                times[who].append(dt)
            log(f"round {i + 1}: dockyard {times['dockyard'][-1]:.3f}s, "
                f"docker {times['docker'][-1]:.3f}s")
    finally:
        engine.stop()
        registry.stop()
        with contextlib.suppress(OSError):
            BENCH_VAR.rmdir()  # only when empty: bench_run.py may keep things there

    total_mib = args.layers * args.layer_mib
    docker_median = statistics.median(times["docker"])
    print(f"Pull of a {args.layers}-layer image ({total_mib} MiB of random data, gzipped) "
          f"from docker-registry on 127.0.0.1, {args.rounds} rounds, "
          f"{platform.machine()}, {os.cpu_count()} CPUs\n")
    print("| engine | rounds | median | min | max | MiB/s (median) | median vs Docker |")
    print("|---|---|---|---|---|---|---|")
    labels = {"dockyard": "Dockyard (`workers.runtime.registry.pull`)",
              "docker": f"Docker {version} (`POST /images/create`)"}
    for who in ("dockyard", "docker"):
        t = times[who]
        median = statistics.median(t)
        print(f"| {labels[who]} | {len(t)} | {median * 1000:.0f} ms | {min(t) * 1000:.0f} ms"
              f" | {max(t) * 1000:.0f} ms | {total_mib / median:.0f} | "
              f"{median / docker_median:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
