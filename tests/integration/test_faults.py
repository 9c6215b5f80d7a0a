"""Faults: a hub killed with SIGKILL in the middle of a spawn comes back without a stuck or
orphaned container, and the student can start again; a container the restarted hub does not
know is removed at `classhub up`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import requests

from classhub import processes
from classhub.engine import INSTANCE_LABEL, network_name
from classhub.platform import up
from tests.integration.conftest import start_hub, stop_hub


def _containers(hub, user: str) -> list:
    # sparse: the listing alone. Inspecting each container would wait on dockerd's lock of a
    # container being started, or fail when it is removed between the list and the inspect.
    return docker.from_env().containers.list(all=True, sparse=True, filters={"label": [
        f"org.classhub.user={user}", f"{INSTANCE_LABEL}={network_name(hub.platform.site)}"]})


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


def _kill_hub(hub) -> None:
    os.kill(processes.hub(hub.state).pid(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.hub(hub.state).running():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _settled(hub, user: str, timeout_s: float = 120):
    """The hub's view of the user's server once it stops changing: ready, or none."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        server = (hub.api.user(user) or {}).get("servers", {}).get("")
        if not server or (server.get("ready") and not server.get("pending")):
            return server
        time.sleep(0.5)
    raise AssertionError(f"{user}'s server is stuck: {server}")


def test_hub_killed_mid_spawn_recovers_without_a_stuck_or_orphaned_container(built_images,
                                                                            tmp_path):
    # The restarted hub checks the half-started server for http_timeout_s before it gives up.
    hub = start_hub(tmp_path, idle_timeout_s=0, http_timeout_s=20)
    try:
        hub.enrol("demo", "alice")
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(hub.spawn, "alice", {"course": "demo"})
            deadline = time.monotonic() + 120
            while not _containers(hub, "alice"):  # the container exists; the spawn is not done
                assert time.monotonic() < deadline, "no container was created"
                time.sleep(0.02)
            _kill_hub(hub)
            try:
                pending.result(timeout=60)
            except requests.RequestException:
                pass  # the hub died under the request
        up(hub.platform)
        assert len(_grader_services(hub)) == 1  # the dead hub's service ended; one runs
        server = _settled(hub, "alice")
        if server:  # adopted (DockerSpawner found its container): it must work and stop
            output = hub.run_code("alice", hub.user_token("alice"), "print(6 * 7)")
            assert output.strip() == "42"
            hub.api.stop_server("alice")
            hub.wait_stopped("alice")
        assert _containers(hub, "alice") == []  # nothing runs that the hub does not account for
        assert hub.spawn("alice", {"course": "demo"}).status_code in (201, 202)
        hub.wait_ready("alice")
        assert hub.run_code("alice", hub.user_token("alice"), "print(6 * 7)").strip() == "42"
        assert len(_containers(hub, "alice")) == 1
    finally:
        stop_hub(hub)


def test_up_removes_containers_the_hub_does_not_know(built_images, tmp_path):
    hub = start_hub(tmp_path, idle_timeout_s=0)
    try:
        processes.hub(hub.state).stop()
        site = hub.platform.site
        docker.from_env().containers.run(
            "classhub/lab:latest", ["sleep", "600"], detach=True,
            name=f"{site.name}-ghost", network=network_name(site),
            labels={INSTANCE_LABEL: network_name(site), "org.classhub.user": "ghost"})
        up(hub.platform)
        assert _containers(hub, "ghost") == []
        from classhub.audit import AuditLog

        removed = list(AuditLog(hub.state).entries(action="server.orphan-removed"))
        assert removed and removed[-1]["details"]["users"] == ["ghost"]
    finally:
        stop_hub(hub)
