"""Shared fixtures.

Non-live tests: pyproject's `[tool.pytest.ini_options] env` (pytest-env, applied before
pytest-django imports panel.settings) points DOCKYARD_STATE_ROOT, the DB path and the API
socket at /tmp/dockyard-pytest, and pytest-django gives them an in-memory SQLite test DB;
they never touch /var/lib/dockyard or a running dev stack.

Live tests: the session-scoped `live_stack` fixture (tests/live.py) starts a complete,
isolated stack once per session; every test that uses it (or `docker_client`) is marked
`live` automatically, so `pytest -m "not live"` skips them.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import live as live_module  # noqa: E402

# Registry fixtures (registry_factory, registry, basic_registry, token_registry), the real
# Docker engine (docker_engine, tests/peers.py) and site_admin (tests/people.py) for every dir.
pytest_plugins = ["registry", "peers", "people"]

LIVE_FIXTURES = {"live_stack", "docker_client"}
_PYTEST_STATE = "/tmp/dockyard-pytest"


def _sigterm_to_interrupt(signum, frame):
    # CI or a supervisor stopping pytest: unwind like Ctrl-C, so fixture teardowns run.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    state_root = os.environ.get("DOCKYARD_STATE_ROOT", "")
    if not state_root.startswith(_PYTEST_STATE) and not os.environ.get(
        "DOCKYARD_TEST_ALLOW_STATE_ROOT"
    ):
        raise pytest.UsageError(
            f"DOCKYARD_STATE_ROOT is {state_root or 'unset'}: the pytest-env plugin did not apply "
            "pyproject's env (run `make test` or `.venv/bin/python -m pytest`, after scripts/setup.sh)"
        )
    os.makedirs(os.path.join(state_root, "static"), exist_ok=True)  # WhiteNoise's STATIC_ROOT
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """In-process tests hash passwords with MD5: the real hasher (PBKDF2, a million rounds)
    costs over half a second a user on this machine. Live stacks keep the real one."""
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session")
def live_stack():
    """A complete Dockyard stack (redis, worker, Docker API, panel) for this test session.

    Attributes: env, docker_host, tcp_host, panel_url, admin_username, admin_password,
    state_root, redis_url, node, prefix. Methods: restart_worker(), stop_worker(),
    start_worker(), manage(*args),
    docker_cli(*args, input=None, tty=False, token=None), create_token(user), logs().
    """
    if os.geteuid() != 0:
        pytest.skip("the live stack needs root")
    stack = live_module.LiveStack()
    try:
        stack.start()
    except live_module.StackError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield stack
    finally:
        problems = stack.stop()
        strict = os.environ.get("DOCKYARD_TEST_STRICT_CLEANUP") == "1"
        if problems and strict:
            pytest.fail("live stack cleanup: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def docker_client(live_stack):
    """docker-py against the live stack's unix socket, pinned to API 1.41."""
    import docker

    client = docker.DockerClient(base_url=live_stack.docker_host, version="1.41", timeout=120)
    try:
        yield client
    finally:
        client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # On a failing live test, append the stack's log tails to the report.
    report = yield
    if report.failed and "live_stack" in getattr(item, "fixturenames", ()):
        stack = item.funcargs.get("live_stack") if hasattr(item, "funcargs") else None
        if stack is not None and getattr(stack, "tmp", None) is not None:
            report.sections.append(("live stack logs", stack.logs(40)))
    return report
