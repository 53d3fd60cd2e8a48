"""The Stats card in a real browser: a busy container's page shows its CPU % moving, its
memory against a limit (drawn as the chart's limit line), network and pids, live.

Screenshot: test-artifacts/container-stats.png (gitignored).
"""

import json
import os
import re

import pytest

from workers.runtime import cgroups

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.live]

MiB = 1024 * 1024
# ~20 MB held in a shell variable, a busy loop, and now and then a connection over the
# container's loopback (refused: a SYN and a RST) and 1 MiB written past the page cache
WORKLOAD = ('x=$(head -c 20000000 /dev/zero | tr "\\0" a); while :; do '
            'nc -w 1 127.0.0.1 1 </dev/null 2>/dev/null; '
            'dd if=/dev/zero of=/tmp/f bs=1M count=1 oflag=direct 2>/dev/null; '
            'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; done')


def _limit_memory(live_stack, cid, limit):
    """Written straight into the container's cgroup: `--memory` is another feature's."""
    manager = cgroups.open_manager(cgroups.parent_name(live_stack.prefix), cid)
    if manager.version == "v1":
        path = os.path.join(manager.paths()["memory"], "memory.limit_in_bytes")
    else:
        path = os.path.join(manager.paths()["unified"], "memory.max")
    with open(path, "w") as f:
        f.write(str(limit))


def test_live_charts_of_a_busy_container(live_stack, page):
    from playwright.sync_api import expect

    name = "dystats-busy"
    run = live_stack.docker_cli("run", "-d", "--name", name, "busybox:1.29", "sh", "-c", WORKLOAD)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        _limit_memory(live_stack, cid, 96 * MiB)
        page.goto(f"{live_stack.panel_url}/containers/{cid}/")
        card = page.locator("#stats")
        expect(card.locator("h2")).to_have_text("Stats")
        expect(page.locator("#stats-status")).to_contain_text("Live", timeout=10_000)
        # CPU % as the docker CLI computes it: a busy shell keeps about one core
        page.wait_for_function(
            "Number(document.getElementById('stats').dataset.cpu || 0) > 20", timeout=15_000)
        cpu = page.locator("#stat-cpu [data-value]")
        first = cpu.inner_text()
        assert re.fullmatch(r"\d+\.\d\d %", first), first
        page.wait_for_function(
            f"document.querySelector('#stat-cpu [data-value]').textContent !== {json.dumps(first)}",
            timeout=5_000)  # a new sample every second: the number moves
        assert page.locator("#stat-cpu svg polyline").count() == 1

        memory = page.locator("#stat-memory [data-value]")
        expect(memory).to_contain_text("/ 96 MiB", timeout=10_000)
        used = float(memory.inner_text().split()[0])
        assert 10 < used < 96 and "MiB" in memory.inner_text()
        expect(page.locator("#stat-memory [data-note]")).to_contain_text("% of the limit, 96 MiB")
        expect(page.locator("#stat-memory svg line.limit")).to_have_count(1)  # in reach: drawn
        expect(page.locator("#stat-memory .stat-scale")).to_have_text("96 MiB")

        expect(page.locator("#stat-net [data-note]")).not_to_contain_text("rx 0 B", timeout=10_000)
        expect(page.locator("#stat-net svg polyline")).to_have_count(2)
        expect(page.locator("#stat-blk svg polyline")).to_have_count(2)
        expect(page.locator("#stat-pids [data-value]")).to_have_text(re.compile(r"^[1-9]\d*$"))
        expect(page.locator("#stat-pids [data-note]")).to_have_text("no limit")

        page.wait_for_timeout(4000)  # a few seconds of history on the charts
        card.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "container-stats.png"))

        stop = live_stack.docker_cli("stop", "-t", "0", name, timeout=60)
        assert stop.returncode == 0, stop.stderr
        expect(page.locator("#stats-status")).to_have_text("Not running: no live numbers.",
                                                           timeout=15_000)
        expect(page.locator("#stat-cpu [data-value]")).to_have_text("–")
    finally:
        live_stack.docker_cli("rm", "-f", name, timeout=60)
