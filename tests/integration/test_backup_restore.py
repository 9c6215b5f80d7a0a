"""A backup restored into a fresh hub: people log in with their passwords and find their work.

Runs the real commands (`classhub backup`, `down`, the state directory wiped, `classhub restore`,
`up`) against a real hub and a student's real server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.integration.conftest import start_hub, stop_hub


def _classhub(hub, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classhub.cli", "--site",
                           str(hub.platform.site_file), *args],
                          capture_output=True, text=True, timeout=600)


def test_backup_restore_into_a_fresh_hub_and_log_in(built_images, tmp_path):
    hub = start_hub(tmp_path, idle_timeout_s=0)
    try:
        password = hub.enrol("demo", "alice")
        assert hub.spawn("alice", {"course": "demo"}).status_code in (201, 202)
        hub.wait_ready("alice")
        hub.run_code("alice", hub.user_token("alice"),
                     "open('/home/jovyan/compte-rendu.txt', 'w').write('séance 1')")
        made = _classhub(hub, "backup", "--output", str(tmp_path / "backups"))
        assert made.returncode == 0, made.stderr
        archive = next((tmp_path / "backups").glob("classhub-backup-*.tar.gz"))
    finally:
        stop_hub(hub)

    shutil.rmtree(hub.state.root)  # the machine's disk is gone; the backup is what is left
    restored = _classhub(hub, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert (hub.state.homes / "alice" / "compte-rendu.txt").read_text() == "séance 1"
    up = _classhub(hub, "up")
    assert up.returncode == 0, up.stderr
    try:
        reply, _ = hub.login("alice", password)
        assert reply.status_code == 302, reply.status_code  # her password still opens it
        reply, _ = hub.login("alice", "not-her-password")
        assert reply.status_code != 302
        assert "alice" in {u["name"] for u in hub.api.users()}
        verify = _classhub(hub, "audit", "verify")
        assert verify.returncode == 0, verify.stdout
        actions = _classhub(hub, "audit", "show", "--json").stdout
        # what happened before the backup, the restore, and what came after it
        for action in ('"server.start"', '"backup.restored"', '"login"', '"login.failed"'):
            assert action in actions, action
    finally:
        stop_hub(hub)
