"""Backups: consistent SQLite copies, a checked manifest, the old state put aside on restore."""

from __future__ import annotations

import sqlite3
import tarfile

import pytest

from classhub.backup import backup, restore
from classhub.errors import ClasshubError
from classhub.state import StateDir


@pytest.fixture
def state(tmp_path):
    state = StateDir(tmp_path / "state").ensure()
    db = sqlite3.connect(state.hub_db)
    db.execute("CREATE TABLE users (name TEXT)")
    db.execute("INSERT INTO users VALUES ('ana')")
    db.commit()
    db.close()
    (state.homes / "ana").mkdir()
    (state.homes / "ana" / "notes.txt").write_text("mes notes")
    (state.run / "hub.pid").write_text("123")
    return state


def test_backup_then_restore_into_an_empty_place(state, tmp_path):
    holder = sqlite3.connect(state.hub_db)  # a writer holding the database open
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO users VALUES ('ben')")  # not committed: not in the backup
    archive = backup(state, "site", tmp_path / "backups")
    holder.rollback()
    holder.close()
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "state/run/hub.pid" not in names and "manifest.json" in names

    target = StateDir(tmp_path / "elsewhere")
    assert restore(target, archive, hub_running=False) is None
    assert (target.homes / "ana" / "notes.txt").read_text() == "mes notes"
    db = sqlite3.connect(target.hub_db)
    assert db.execute("SELECT name FROM users").fetchall() == [("ana",)]


def test_restore_puts_the_current_state_aside(state, tmp_path):
    archive = backup(state, "site", tmp_path / "backups")
    (state.homes / "ana" / "notes.txt").write_text("changed after the backup")
    aside = restore(state, archive, hub_running=False)
    assert (aside / "homes" / "ana" / "notes.txt").read_text() == "changed after the backup"
    assert (state.homes / "ana" / "notes.txt").read_text() == "mes notes"


def test_restore_refuses_while_the_hub_runs_and_a_damaged_backup(state, tmp_path):
    archive = backup(state, "site", tmp_path / "backups")
    with pytest.raises(ClasshubError, match="hub is running"):
        restore(state, archive, hub_running=True)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isreg() else None
            if member.name == "state/homes/ana/notes.txt":
                import io

                payload = b"tampered"
                member.size = len(payload)
                data = io.BytesIO(payload)
            dst.addfile(member, data)
    with pytest.raises(ClasshubError, match="does not match its manifest"):
        restore(StateDir(tmp_path / "other"), damaged, hub_running=False)


def test_keep_only_the_newest(state, tmp_path):
    import time

    for _ in range(3):
        backup(state, "site", tmp_path / "backups", keep=2)
        time.sleep(1.1)  # names carry the second
    assert len(list((tmp_path / "backups").glob("*.tar.gz"))) == 2


def test_keep_counts_this_sites_archives_only(state, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    other = backups / "classhub-backup-site-two-20260101T000000Z.tar.gz"  # site "site-two"
    other.write_bytes(b"")
    backup(state, "site", backups, keep=1)
    assert other.exists()


def test_a_second_backup_in_the_same_second_is_refused_cleanly(state, tmp_path, monkeypatch):
    import datetime as dt

    import classhub.backup as module

    frozen = dt.datetime(2026, 11, 29, 2, 30, tzinfo=dt.timezone.utc)

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr(module.dt, "datetime", Frozen)
    first = backup(state, "site", tmp_path / "backups")
    with pytest.raises(ClasshubError, match="this very second"):
        backup(state, "site", tmp_path / "backups")
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [first.name]  # nothing partial
