"""Faults: a hub killed with SIGKILL in the middle of a spawn comes back without a stuck or
orphaned container, and the student can start again."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import docker

from classhub import processes
from classhub.platform import up
from tests.integration.conftest import start_hub, stop_hub


def _containers(hub, user: str) -> list:
    return docker.from_env().containers.list(
        all=True, filters={"label": f"org.classhub.user={user}"})


def _grader_services(hub) -> list[str]:
    """This site's grading service processes (there may be other sites' on the machine)."""
    found = subprocess.run(["pgrep", "-f", "classhub.hub.grader_service"],
                           capture_output=True, text=True).stdout.split()
    ours = f"CLASSHUB_SITE={hub.platform.site_file}".encode()
    mine = []
    for pid in found:
        try:
            if ours in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                mine.append(pid)
        except OSError:
            continue
    return mine


def test_hub_killed_mid_spawn_leaves_no_orphan(built_images, tmp_path):
    hub = start_hub(tmp_path, idle_timeout_s=0)
    try:
        hub.enrol("demo", "alice")
        assert hub.spawn("alice", {"course": "demo"}).status_code in (201, 202)
        deadline = time.monotonic() + 120
        while not _containers(hub, "alice"):  # the container exists; the spawn is not done
            assert time.monotonic() < deadline, "no container was created"
            time.sleep(0.05)
        os.kill(processes.hub(hub.state).pid(), signal.SIGKILL)
        time.sleep(1)
        assert not processes.hub(hub.state).running()
        up(hub.platform)
        assert _containers(hub, "alice") == []  # the orphan is gone
        assert len(_grader_services(hub)) == 1  # the dead hub's service ended; the new one runs
        server = (hub.api.user("alice") or {}).get("servers", {}).get("")
        assert not server  # and the hub does not pretend it runs
        assert hub.spawn("alice", {"course": "demo"}).status_code in (201, 202)
        hub.wait_ready("alice")
        output = hub.run_code("alice", hub.user_token("alice"), "print(6 * 7)")
        assert output.strip() == "42"
        assert len(_containers(hub, "alice")) == 1
    finally:
        stop_hub(hub)
