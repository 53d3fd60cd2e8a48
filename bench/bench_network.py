#!/usr/bin/env python3
"""Dockyard vs Docker: TCP throughput and connection rate through a published port.

    .venv/bin/python bench/bench_network.py [--mb 200] [--seconds 5] [--repeat 3]
                                            [--no-docker] [--no-dockyard] [--direct]

Two busybox:1.29 containers per engine, each published on 127.0.0.1 (kernel DNAT and
masquerade in both engines, no userland proxy):
- throughput: `nc -l -p 5001 >/dev/null` in a loop; the client (Python, on the host) sends
  --mb MiB and waits for the server's EOF. busybox nc copies with a small buffer, so the
  figure is bounded by it (the same server in both engines);
- connection rate: busybox httpd; the client makes sequential HTTP/1.0 requests for
  --seconds and counts them.

- Dockyard: through the real docker CLI, `docker run -d -p 127.0.0.1:<port>:<container
  port>`, against the running dev stack or else an isolated stack started for the run
  (tests/live.py's LiveStack: its own state root, database, Redis and prefix). With
  --direct, or when that stack cannot publish ports, the containers are made with the
  runtime and published with NetworkManager directly on a network of their own (prefix
  "db", table dockyard-db, bridge 10.199.0.0/24), and the report says so.
- Docker: Debian's dockerd with --iptables and --userland-proxy=false (so it DNATs like
  Dockyard) inside a network namespace of its own (dy-bench-docker): its iptables rules,
  docker0 and containers live only there, the host's ruleset is never touched; the client
  runs in that namespace too.

Prints a markdown table and writes var/bench/network.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_run import (  # noqa: E402
    BENCH_RUN,
    DOCKYARD_SOCK,
    IMAGE,
    Cli,
    Dockerd,
    busybox_layer,
    log,
    ping,
)

DOCKER_NETNS = "dy-bench-docker"
BENCH_CGROUP = "dockyard-bench-net"  # the direct Dockyard containers' cgroup parent
TPUT_PORT, HTTP_PORT = 5001, 80
TPUT_CMD = f"while :; do nc -l -p {TPUT_PORT} >/dev/null; done"
HTTP_CMD = f"mkdir -p /w && echo ok >/w/index.html && exec httpd -f -p {HTTP_PORT} -h /w"


# ------------------------------------------------------------------------------ clients
# They run as `python bench_network.py --client ...` so that they can be started inside
# Docker's namespace with `ip netns exec`.


def connect(port: int, timeout: float = 30) -> socket.socket:
    """Connect to 127.0.0.1:port, retrying while the server in the container comes up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def client_throughput(port: int, mib: int) -> float:
    """MiB/s for sending ``mib`` MiB, until the server has read them all (its EOF)."""
    block = bytes(1 << 20)
    with connect(port) as s:
        t0 = time.perf_counter()
        for _ in range(mib):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        return mib / (time.perf_counter() - t0)


def client_connections(port: int, seconds: float) -> float:
    """Sequential HTTP/1.0 requests per second, each on a new connection."""
    connect(port).close()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while s.recv(4096):
                pass
        count += 1
    return count / (time.perf_counter() - t0)


class Target:
    """One engine's two published ports, and how to reach them (the client's namespace)."""

    def __init__(self, label: str, tput_port: int, http_port: int, netns: str = ""):
        self.label, self.tput_port, self.http_port = label, tput_port, http_port
        self.enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []

    def client(self, *client_args) -> float:
        r = subprocess.run([*self.enter, sys.executable, __file__, "--client",
                            *map(str, client_args)], capture_output=True, text=True,
                           timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"client failed: {r.stderr.strip()[-2000:]}")
        return float(r.stdout.strip())

    def warm_up(self) -> None:
        """The first connection and the page cache; fails if the ports are not published."""
        self.client("tput", self.tput_port, 8)
        self.client("conn", self.http_port, 0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ Dockyard


@contextlib.contextmanager
def dockyard_stack() -> Iterator[str]:
    """The Docker API address of the running dev stack, or else of an isolated stack of
    its own (tests/live.py: own state root, database, Redis and prefix) for the run."""
    if ping(DOCKYARD_SOCK):
        yield f"unix://{DOCKYARD_SOCK}"
        return
    sys.path.insert(0, str(REPO / "tests"))
    from live import LiveStack

    log("the Dockyard dev stack does not answer: starting an isolated one")
    with LiveStack() as stack:
        yield stack.docker_host


@contextlib.contextmanager
def dockyard_cli() -> Iterator[Target]:
    """Through the docker CLI against a Dockyard stack."""
    with dockyard_stack() as host:
        yield from _dockyard_cli(host)


def _dockyard_cli(host: str) -> Iterator[Target]:
    cli = Cli(host)
    names = [f"dockyard-bench-net-{secrets.token_hex(3)}" for _ in range(2)]
    try:
        tput_port, http_port = free_port(), free_port()
        for name, host_port, port, cmd in ((names[0], tput_port, TPUT_PORT, TPUT_CMD),
                                           (names[1], http_port, HTTP_PORT, HTTP_CMD)):
            cli("run", "-d", "--name", name, "-p", f"127.0.0.1:{host_port}:{port}", IMAGE,
                "sh", "-c", cmd)
        target = Target("Dockyard (nft DNAT, docker CLI)", tput_port, http_port)
        target.warm_up()
        yield target
    finally:
        for name in names:
            cli("rm", "-f", name, check=False)
        cli.close()


@contextlib.contextmanager
def dockyard_direct() -> Iterator[Target]:
    """The runtime and NetworkManager directly: a network and two containers of its own."""
    from workers.runtime import cgroups
    from workers.runtime.container import Runtime
    from workers.runtime.images import ImageStore, busybox_image_config
    from workers.runtime.network import (
        Endpoint,
        NetworkConfig,
        NetworkManager,
        PortBinding,
        bridge_name,
        docker_mac,
        firewall,
    )
    from workers.runtime.spec import ContainerSpec, merge_env

    prefix = "db"
    root = tempfile.mkdtemp(prefix="dockyard-bench-net-", dir="/var/tmp")
    rt = Runtime(root, node="bench", redis_url="redis://127.0.0.1:1/0", launcher=False,
                 cgroup_parent=BENCH_CGROUP)
    nm = NetworkManager(root, prefix)
    net_id = secrets.token_hex(32)
    net = NetworkConfig(id=net_id, name="bench", bridge=bridge_name(prefix, net_id),
                        subnet="10.199.0.0/24", gateway="10.199.0.1")
    cids = []
    try:
        store = ImageStore(root)
        diff_id = store.add_layer_tar(io.BytesIO(busybox_layer()))
        config = busybox_image_config(diff_id)
        layers = store.layer_dirs(store.put_config(config))
        nm.ensure_network(net)
        tput_port, http_port = free_port(), free_port()
        for i, (host_port, port, cmd) in enumerate(((tput_port, TPUT_PORT, TPUT_CMD),
                                                    (http_port, HTTP_PORT, HTTP_CMD))):
            cid = secrets.token_hex(32)
            cids.append(cid)
            ip = f"10.199.0.{10 + i}"
            ep = Endpoint(network=net, endpoint_id=cid[:12], ifname="eth0", ip=ip,
                          prefixlen=24, mac=docker_mac(ip), default_route=True)
            path = nm.setup_container(cid, [ep], [PortBinding(port, "tcp", "127.0.0.1",
                                                              host_port, ip)])
            env = merge_env(config["config"]["Env"], [], hostname=cid[:12], tty=False)
            rt.create(ContainerSpec(id=cid, name=f"bench{i}", layers=layers,
                                    args=["sh", "-c", cmd], env=env, hostname=cid[:12],
                                    netns=path))
            rt.start(cid)
        target = Target("Dockyard (nft DNAT, runtime + NetworkManager directly)", tput_port,
                        http_port)
        target.warm_up()
        yield target
    finally:
        for cid in cids:
            with contextlib.suppress(Exception):
                rt.remove(cid, force=True)
            nm.teardown_container(cid)
        nm.remove_network(net)
        firewall.drop_table(prefix)
        shutil.rmtree(root, ignore_errors=True)
        v2, v1 = cgroups.cgroup_mounts()
        for mount in set(v2) | set(v1.values()):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(mount, BENCH_CGROUP))


# ------------------------------------------------------------------------------ Docker


class NetnsDockerd(Dockerd):
    """bench_run's dockerd, but inside a network namespace of its own with its bridge,
    iptables rules (that namespace's only) and no userland proxy."""

    def start(self) -> None:
        subprocess.run(["ip", "netns", "add", DOCKER_NETNS], check=True)
        subprocess.run(["ip", "-n", DOCKER_NETNS, "link", "set", "lo", "up"], check=True)
        for d in (BENCH_RUN, self.data, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("dockerd") or "/usr/sbin/dockerd"
        logf = open(self.data.parent / "dockerd.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{DOCKER_NETNS}", exe, "--data-root", str(self.data),
             "--exec-root", str(self.exec_root), "-H", f"unix://{self.sock}",
             "--pidfile", str(BENCH_RUN / "dockerd.pid"), "--userland-proxy=false",
             "--ip6tables=false", "--log-level=warn"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 60
        while not ping(str(self.sock)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.data.parent / "dockerd.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        super().stop()
        subprocess.run(["ip", "netns", "del", DOCKER_NETNS], capture_output=True)


@contextlib.contextmanager
def docker() -> Iterator[Target]:
    layer = busybox_layer()
    engine = NetnsDockerd()
    engine.start()
    cli = Cli(f"unix://{engine.sock}")
    try:
        version = engine.version()
        cli("import", "--change", 'CMD ["sh"]', "-", IMAGE, input=layer)
        tput_port, http_port = 15001, 15080  # the namespace is empty: any port is free
        cli("run", "-d", "-p", f"127.0.0.1:{tput_port}:{TPUT_PORT}", IMAGE, "sh", "-c",
            TPUT_CMD)
        cli("run", "-d", "-p", f"127.0.0.1:{http_port}:{HTTP_PORT}", IMAGE, "sh", "-c",
            HTTP_CMD)
        target = Target(f"Docker {version} (iptables DNAT, no userland proxy)", tput_port,
                        http_port, DOCKER_NETNS)
        target.warm_up()
        yield target
        ids = cli("ps", "-aq").stdout.decode().split()
        if ids:
            cli("rm", "-f", *ids, check=False)
    finally:
        cli.close()
        engine.stop()


# ------------------------------------------------------------------------------ report


def report(results: dict, args) -> str:
    rows = []
    for label, r in results.items():
        tput, conn = r["throughput_mib_s"], r["connections_s"]
        rows.append(f"| {label} | {statistics.median(tput):.0f} MiB/s "
                    f"({min(tput):.0f}-{max(tput):.0f}) | {statistics.median(conn):.0f} /s "
                    f"({min(conn):.0f}-{max(conn):.0f}) |")
    return "\n".join([
        f"Through a port published on 127.0.0.1, median (min-max) of {args.repeat} rounds, the "
        f"engines taking turns in each round ({args.mb} MiB into busybox nc; sequential "
        f"HTTP/1.0 requests to busybox httpd for {args.seconds:g} s; {os.cpu_count()} CPUs, "
        f"kernel {platform.release()}):",
        "",
        "| engine | TCP throughput | connections |",
        "| --- | ---: | ---: |",
        *rows,
    ])


def start(stack: contextlib.ExitStack, engine, failures: list[str]) -> Target | None:
    try:
        return stack.enter_context(engine())
    except Exception as e:  # report what could be measured; say what could not
        failures.append(f"{engine.__name__}: {e}")
        log(f"{engine.__name__} failed: {e}")
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-dockyard", action="store_true")
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--direct", action="store_true",
                    help="Dockyard through the runtime and NetworkManager, not the CLI")
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        kind, port, amount = args.client
        if kind == "tput":
            print(client_throughput(int(port), int(amount)))
        else:
            print(client_connections(int(port), float(amount)))
        return 0
    if os.geteuid() != 0:
        sys.exit("run as root")

    failures: list[str] = []
    results: dict = {}
    with contextlib.ExitStack() as stack:
        targets = []
        if not args.no_dockyard:
            target = None if args.direct else start(stack, dockyard_cli, failures)
            if target is None:  # the stack cannot publish (yet): measure it directly
                target = start(stack, dockyard_direct, failures)
            targets.append(target)
        if not args.no_docker:
            targets.append(start(stack, docker, failures))
        targets = [t for t in targets if t]
        for t in targets:
            results[t.label] = {"throughput_mib_s": [], "connections_s": []}
        for i in range(args.repeat):
            for t in targets:
                log(f"round {i + 1}: {t.label}")
                results[t.label]["throughput_mib_s"].append(t.client("tput", t.tput_port,
                                                                     args.mb))
                results[t.label]["connections_s"].append(t.client("conn", t.http_port,
                                                                  args.seconds))

    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(json.dumps({**results, "failures": failures}, indent=2))
    print(report(results, args))
    for f in failures:
        print(f"\n> not measured: {f}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
