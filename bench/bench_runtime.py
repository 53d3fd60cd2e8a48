#!/usr/bin/env python3
"""Latency of the runtime alone (no API, no job queue) for a short-lived container.

    sudo .venv/bin/python bench/bench_runtime.py [-n 30] [--cmd true] [--no-launcher]
                                                 [--no-trace] [--rss] [--json FILE]

Each run: ``Runtime.create`` / ``start`` / ``wait`` / ``remove`` of a busybox container
running ``--cmd`` (default ``true``), timed with ``time.perf_counter`` (CLOCK_MONOTONIC).
With tracing on (default), the shim and its children append ``<monotonic ns> <pid>
<label>`` lines to the file named by ``DOCKYARD_SHIM_TRACE`` (see ``workers.runtime.shim.mark``);
the breakdown shows the median time from one mark to the next (``>`` labels are taken in
the bench itself). Tracing costs a few write(2)s: compare with ``--no-trace``.

``--rss``: also start ``sleep 600``, let the shim settle and report its VmRSS (idle shim).
``--no-launcher``: spawn every shim directly (``python -S -c SHIM_BOOT``), not through the
node's shim launcher.

Prints medians (and p90) in milliseconds; the first run of each mode is a warm-up.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from workers.runtime import container as container_mod  # noqa: E402
from workers.runtime.container import Runtime  # noqa: E402
from workers.runtime.images import ImageStore, build_busybox_layer  # noqa: E402
from workers.runtime.spec import ContainerSpec  # noqa: E402

PHASES = ("create", "start", "wait", "remove", "total")


def ms(ns: float) -> str:
    return f"{ns / 1e6:7.2f}"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def read_trace(path: str) -> list[tuple[int, int, str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            rows = [line.split(" ", 2) for line in f if line.strip()]
    except FileNotFoundError:
        return []
    return sorted((int(t), int(p), label.strip()) for t, p, label in rows)


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("-n", type=int, default=30, help="timed runs (default 30)")
    ap.add_argument("--cmd", default="true", help="container command (default: true)")
    ap.add_argument("--no-launcher", action="store_true", help="direct shim spawn only")
    ap.add_argument("--no-trace", action="store_true", help="no shim trace marks")
    ap.add_argument("--rss", action="store_true", help="measure an idle shim's RSS")
    ap.add_argument("--overlap", action="store_true",
                    help="start the next run while the last one's files are still being "
                         "deleted in the background (back-to-back, like /tmp/rtbench.py)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--json", help="write the raw numbers here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")

    root = tempfile.mkdtemp(prefix="dy-bench-rt-", dir="/var/tmp")
    trace = os.path.join(root, "trace.txt")
    if not args.no_trace:
        os.environ["DOCKYARD_SHIM_TRACE"] = trace
    kw = {"launcher": False} if args.no_launcher else {}
    try:
        rt = Runtime(root, node="bench", redis_url=args.redis, **kw)
    except TypeError:  # a runtime without the launcher option
        rt = Runtime(root, node="bench", redis_url=args.redis)
    store = ImageStore(root)
    diff = store.add_layer_tar(io.BytesIO(build_busybox_layer()))
    layers = [store.layer_dir(diff)]
    cmd = args.cmd.split()
    results: dict[str, list[float]] = {p: [] for p in PHASES}
    steps: dict[str, list[float]] = {}
    order: list[str] = []
    try:
        for i in range(args.n + 1):
            cid = secrets.token_hex(32)
            spec = ContainerSpec(id=cid, name=f"bench{i}", layers=layers, args=cmd,
                                 env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            if os.path.exists(trace):
                os.truncate(trace, 0)  # the runtime may hold it open (O_APPEND)
            t0 = time.perf_counter_ns()
            rt.create(spec)
            t1 = time.perf_counter_ns()
            rt.start(cid)
            t2 = time.perf_counter_ns()
            code = rt.wait(cid)
            t3 = time.perf_counter_ns()
            rt.remove(cid)
            t4 = time.perf_counter_ns()
            drain = getattr(container_mod, "_trash", None)
            if drain is not None and not args.overlap:  # the deferred deletion of the
                drain.drain()  # container's files must not overlap the next run
            if code != 0 and cmd == ["true"]:
                raise SystemExit(f"run {i}: exit code {code}")
            if i == 0:
                continue  # warm-up (page cache, launcher spawn, .pyc)
            for name, v in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                results[name].append(v)
            marks = [(t1, 0, "> start()"), *read_trace(trace), (t2, 0, "> start() returned"),
                     (t3, 0, "> wait() returned"), (t4, 0, "> remove() returned")]
            marks.sort()
            for (ta, _, la), (tb, _, lb) in zip(marks, marks[1:], strict=False):
                key = f"{la}  ->  {lb}"
                if key not in steps:
                    steps[key] = []
                    order.append(key)
                steps[key].append(tb - ta)

        mode = "direct spawn" if args.no_launcher else "launcher (when available)"
        print(f"# runtime latency, {args.n} runs of `{args.cmd}` ({mode}), ms")
        print()
        print("| phase | median | p90 | min |")
        print("| --- | ---: | ---: | ---: |")
        for name in PHASES:
            v = results[name]
            print(f"| {name} | {ms(statistics.median(v))} | {ms(pct(v, 0.9))} | {ms(min(v))} |")
        swr = [a + b + c for a, b, c in zip(results["start"], results["wait"], results["remove"], strict=True)]
        print(f"| start+wait+remove | {ms(statistics.median(swr))} | {ms(pct(swr, 0.9))} | "
              f"{ms(min(swr))} |")
        if steps:
            print()
            print("breakdown (median ms between consecutive marks; runs where the step occurred):")
            for key in order:
                v = steps[key]
                if len(v) * 2 < args.n:
                    continue
                print(f"  {ms(statistics.median(v))}  {key}  [{len(v)}]")

        rss = None
        if args.rss:
            cid = secrets.token_hex(32)
            rt.create(ContainerSpec(id=cid, name="bench-idle", layers=layers,
                                    args=["sleep", "600"], env=["PATH=/bin"]))
            rt.start(cid)
            time.sleep(1.0)
            st = rt.state(cid)
            rss = rss_kib(st.shim_pid)
            with open(f"/proc/{st.shim_pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            rt.remove(cid, force=True)
            print()
            print(f"idle shim RSS: {rss} KiB ({(rss or 0) / 1024:.1f} MiB); cmdline: {title}")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"runs": {k: [x / 1e6 for x in v] for k, v in results.items()},
                           "steps": {k: [x / 1e6 for x in v] for k, v in steps.items()},
                           "idle_shim_rss_kib": rss}, f, indent=1)
    finally:
        for cid in rt.list_ids():
            try:
                rt.remove(cid, force=True)
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"cleanup {cid}: {e}", file=sys.stderr)
        stop = getattr(rt, "stop_launcher", None)
        if stop is not None:
            stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
