"""Secrets handed to Dockyard reach neither the audit log nor any of its processes' logs: a
registry password (`docker login`), a container's secret environment value (`docker run
-e`), an API token (the CLI's Bearer header) and a wrong panel password."""

import re
import secrets
import sqlite3
from pathlib import Path

import requests


def _audit_table(live_stack) -> str:
    db = sqlite3.connect(f"file:{live_stack.state_root}/dockyard.sqlite3?mode=ro", uri=True)
    try:
        return repr(db.execute("SELECT * FROM audit_auditevent").fetchall())
    finally:
        db.close()


def _process_logs(live_stack) -> str:
    return "".join(p.read_text(errors="replace")
                   for p in (Path(live_stack.tmp) / "logs").glob("*.log"))


def _wrong_panel_sign_in(live_stack, password: str) -> None:
    with requests.Session() as browser:
        page = browser.get(f"{live_stack.panel_url}/login/", timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = browser.post(f"{live_stack.panel_url}/login/", timeout=30,
                              data={"username": live_stack.admin_username, "password": password,
                                    "csrfmiddlewaretoken": csrf},
                              headers={"Referer": f"{live_stack.panel_url}/login/"})
        assert answer.status_code == 200 and "Wrong username or password" in answer.text


def test_secrets_stay_out_of_the_audit_log_and_the_logs(live_stack, registry_factory, cli,
                                                       names):
    env_secret = f"envsecret-{secrets.token_hex(8)}"
    wrong_password = f"wrongpw-{secrets.token_hex(8)}"
    with registry_factory(auth="basic") as reg:
        r = cli("login", reg.host, "-u", reg.username, "--password-stdin",
                input=reg.password + "\n")
        assert r.returncode == 0, r.stderr
        cli("logout", reg.host)
        registry_password = reg.password
    r = cli("run", "--rm", "--name", names("secret-env"), "-e", f"DB_PASSWORD={env_secret}",
            "busybox:1.29", "sh", "-c", 'echo "$DB_PASSWORD"')
    assert r.returncode == 0 and r.stdout.strip() == env_secret, r.stderr
    token = live_stack.create_token()
    r = live_stack.docker_cli("ps", token=token)
    assert r.returncode == 0, r.stderr
    _wrong_panel_sign_in(live_stack, wrong_password)

    table = _audit_table(live_stack)
    assert "registry.login" in table and "auth.login_failed" in table
    assert "DB_PASSWORD=[redacted]" in table  # the run's parameters are there, redacted
    logs = _process_logs(live_stack)
    for secret in (registry_password, env_secret, token, wrong_password):
        assert secret not in table
        assert secret not in logs
