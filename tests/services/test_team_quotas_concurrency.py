"""Concurrent creates in separate processes (each with its own database connection) cannot
both take a team's last container: the quota is checked with the team's row locked in the
create's transaction. The count is made slow so that the race would be lost without it."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys, time, django
    django.setup()
    from django.conf import settings
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from datetime import UTC, datetime
    from django.contrib.auth import get_user_model
    from panel.containers import quotas, services
    from panel.images.models import Image, ImageTag
    from panel.networks import services as networks
    from panel.nodes.services import local_node
    from panel.teams.models import Team
    worker = int(sys.argv[1])
    if worker < 0:  # set-up: the team, its quota, an image, the default networks
        Team.objects.create(name="blue", max_containers=3)
        get_user_model().objects.create_superuser("root", password="x")
        image = Image.objects.create(id="a" * 64, node=local_node(), config={}, layers=[],
                                     created=datetime(2020, 1, 1, tzinfo=UTC))
        ImageTag.objects.create(image=image, repository="busybox", tag="1.29")
        networks.ensure_defaults()
        sys.exit(0)
    counted = quotas._counted

    def slow_count(*args, **kwargs):
        used = counted(*args, **kwargs)
        time.sleep(0.3)  # another process counts meanwhile, unless the team is locked
        return used

    quotas._counted = slow_count
    root, team = get_user_model().objects.get(username="root"), Team.objects.get(name="blue")
    for _ in range(2):
        try:
            services.create(acting_user=root, team=team, config={"Image": "busybox:1.29"})
            print("created")
        except quotas.QuotaExceeded as exc:
            print(exc.message)
""")


def test_concurrent_creates_cannot_pass_the_container_quota(tmp_path):
    env = {**os.environ, "DOCKYARD_DB_PATH": str(tmp_path / "quota.sqlite3"),
           "DOCKYARD_STATE_ROOT": str(tmp_path / "state"),
           "DJANGO_SETTINGS_MODULE": "panel.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env,
                   check=True, timeout=300)
    run = [sys.executable, "-c", SCRIPT]
    subprocess.run([*run, "-1"], cwd=REPO, env=env, check=True, timeout=120)
    procs = [subprocess.Popen([*run, str(w)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(4)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _out, err in outputs]
    lines = [line for out, _err in outputs for line in out.splitlines()]
    assert sorted(lines) == ["container quota of team blue exceeded: 3 containers of 3"] * 5 + \
        ["created"] * 3
