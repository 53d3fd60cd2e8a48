"""Retention: archive, prune record, the `audit.prune` row, verification after a prune."""

import gzip
import json
import os
import stat

import pytest
from django.core.management import call_command

from panel import settings as dockyard_settings
from panel.audit import retention
from panel.audit.models import AuditEvent, AuditPrune


@pytest.fixture(autouse=True)
def archive_dir(settings, tmp_path):
    settings.AUDIT_ARCHIVE_DIR = tmp_path / "audit-archive"
    return settings.AUDIT_ARCHIVE_DIR


def test_prune_archives_then_deletes(rows, archive_dir, verify):
    [made] = retention.prune(before=rows[3].time)  # entries 1-3
    path = archive_dir / "audit-1-3.jsonl.gz"
    assert stat.S_IMODE(os.stat(archive_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = [json.loads(line) for line in gzip.open(path, "rt")]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[0]["digest"] == rows[0].digest and lines[2]["after"] == {"n": 3}
    assert (made.upto_seq, made.count, made.archive, made.last_digest) == (
        3, 3, path.name, rows[2].digest)
    assert made.archive_sha256 == retention.file_sha256(path)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "action")) == [
        (4, "thing.do"), (5, "thing.do"), (6, "audit.prune")]
    assert AuditEvent.objects.get(seq=6).params == {
        "upto_seq": 3, "count": 3, "archive": path.name, "sha256": made.archive_sha256}
    assert verify() == (0, "audit log intact: 3 entries")
    assert verify("--archive", str(path)) == (
        0, "archive " + str(path) + " intact: 3 entries\naudit log intact: 3 entries")


def test_second_prune_links_to_the_first(rows, archive_dir, verify, owner, team):
    retention.prune(before=rows[2].time)  # 1-2, then row 6 records it
    retention.prune(before=rows[4].time)  # 3-4
    paths = [str(archive_dir / name) for name in ("audit-1-2.jsonl.gz", "audit-3-4.jsonl.gz")]
    code, out = verify("--archive", paths[0], "--archive", paths[1])
    assert code == 0, out
    assert out.splitlines()[-1] == "audit log intact: 3 entries"  # 5, 6, 7


def test_tampered_archive_is_named(rows, archive_dir, verify):
    retention.prune(before=rows[3].time)
    path = archive_dir / "audit-1-3.jsonl.gz"
    lines = [json.loads(line) for line in gzip.open(path, "rt")]
    lines[1]["object_repr"] = "forged"
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    code, out = verify("--archive", str(path))
    assert code == 1 and out.splitlines()[0] == f"archive {path}: entry 2 was altered"


def test_forged_prune_record_is_found(rows, tamper, verify):
    # An attacker with database access deletes rows 1-2 and invents a prune to excuse it.
    tamper("INSERT INTO audit_auditprune (upto_seq, last_digest, count, archive, "
           "archive_sha256, time) VALUES (2, %s, 2, 'x', 'y', '2026-01-01')", [rows[1].digest])
    tamper("DELETE FROM audit_auditevent WHERE seq <= 2")
    assert verify() == (1, "audit log: the prune up to entry 2 is not recorded in the chain")


def test_nothing_to_prune(rows):
    assert retention.prune(before=rows[0].time) == []
    assert not AuditPrune.objects.exists()


def test_audit_prune_command(rows, archive_dir, capsys):
    call_command("audit_prune", "--before", rows[2].time.isoformat())
    assert "archived 2 entries up to 2" in capsys.readouterr().out
    assert AuditEvent.objects.get(action="audit.prune").source == "command"
    call_command("audit_prune", "--days", "1")
    assert "nothing older than" in capsys.readouterr().out


def test_retention_setting_is_strict(monkeypatch):
    for value, days in (("", 0), ("30", 30)):
        monkeypatch.setenv("DOCKYARD_AUDIT_RETENTION_DAYS", value)
        assert dockyard_settings._env_days("DOCKYARD_AUDIT_RETENTION_DAYS") == days
    for bad in ("-1", "7d", "1.5"):
        monkeypatch.setenv("DOCKYARD_AUDIT_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="DOCKYARD_AUDIT_RETENTION_DAYS"):
            dockyard_settings._env_days("DOCKYARD_AUDIT_RETENTION_DAYS")


def test_prune_expired_honours_the_setting(rows, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    assert retention.prune_expired() == []
    settings.AUDIT_RETENTION_DAYS = 1
    assert retention.prune_expired() == []  # every row is younger than a day


def test_prune_stops_at_the_first_young_row(rows, tamper):
    # A clock that went back: entry 3 is younger than entry 4. Nothing after it goes.
    tamper("UPDATE audit_auditevent SET time = '2999-01-01 00:00:00' WHERE seq = 3")
    [made] = retention.prune(before=rows[4].time)
    assert made.upto_seq == 2
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [
        3, 4, 5, 6]
