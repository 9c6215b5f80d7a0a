"""The GPU-idle culler: a hub service that frees GPUs nobody computes on.

Every `gpu.check_every_s` it asks NVML which processes computed on a GPU since the last look,
maps each process to its container through /proc/<pid>/cgroup, and stops the server of a
GPU-holding container that has not computed for `gpu.idle_release_after_s`, never sooner than
`gpu.idle_grace_s` after it started. Stopping the server frees the GPU (its container goes).
A device NVML cannot measure per process (MIG slices) is never judged idle: those servers are
left to the ordinary idle culler.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from classhub.gpu.pool import holding

CONTAINER_ID = re.compile(r"(?:docker[-/]|/)([0-9a-f]{64})(?:\.scope)?$", re.MULTILINE)

log = logging.getLogger("classhub.gpu.culler")


def container_of(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The Docker container a host process runs in (cgroup v1 and v2 layouts), if any."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    match = CONTAINER_ID.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Holder:
    container_id: str
    user: str
    course: str
    uuid: str
    started_s: float


class IdleWatch:
    """Remembers when each GPU-holding container last computed; says which are idle."""

    def __init__(self, idle_after_s: float, grace_s: float, watching_since_s: float):
        self.idle_after_s = idle_after_s
        self.grace_s = grace_s
        self.watching_since_s = watching_since_s
        self.last_active: dict[str, float] = {}

    def observe(self, holders: list[Holder], busy: set[str], now_s: float) -> list[Holder]:
        present = {h.container_id for h in holders}
        self.last_active = {cid: t for cid, t in self.last_active.items() if cid in present}
        idle = []
        for holder in holders:
            if holder.container_id in busy:
                self.last_active[holder.container_id] = now_s
            if (now_s - holder.started_s >= self.grace_s
                    and now_s - self.idle_since(holder) >= self.idle_after_s):
                idle.append(holder)
        return idle

    def idle_since(self, holder: Holder) -> float:
        # Before this culler started nothing is known: count from then, or from the start.
        return self.last_active.get(holder.container_id,
                                    max(holder.started_s, self.watching_since_s))


def gpu_holders(containers: list[dict]) -> list[Holder]:
    return [Holder(container["Id"], allocation.holder, allocation.course,
                   allocation.device.uuid, float(container.get("Created", 0)))
            for container, allocation in holding(containers)]


def ready_users(api, page: int = 200) -> set[str]:
    """Users whose server is up, every page of them (the hub gives at most 200 at a time)."""
    names: set[str] = set()
    offset = 0
    while True:
        batch = api.request("GET", f"/users?state=ready&offset={offset}&limit={page}")
        names.update(u["name"] for u in batch)
        if len(batch) < page:
            return names
        offset += page


def run(site_file: str) -> None:  # pragma: no cover - the loop; its parts are tested
    from classhub.audit import record
    from classhub.config import load_platform
    from classhub.engine import client, student_container_records
    from classhub.gpu import nvml
    from classhub.gpu.binding import UUID_LABEL
    from classhub.hubapi import HubAPI

    platform = load_platform(Path(site_file))
    gpu = platform.site.gpu
    state_dir = platform.site.state_dir
    api = HubAPI(os.environ["JUPYTERHUB_API_URL"].rstrip("/").removesuffix("/hub/api"),
                 os.environ["JUPYTERHUB_API_TOKEN"])
    engine = client()
    started = time.time()
    watch = IdleWatch(gpu.idle_release_after_s, gpu.idle_grace_s, started)
    last_look = started
    log.info("watching GPU use every %ss; idle after %ss, grace %ss", gpu.check_every_s,
             gpu.idle_release_after_s, gpu.idle_grace_s)
    while True:
        time.sleep(gpu.check_every_s)
        now = time.time()
        try:
            activity = nvml.source().activity(last_look)
        except nvml.NvmlUnavailable as error:
            log.warning("NVML cannot be read, nothing freed this round: %s", error)
            continue
        last_look = now
        busy = {cid for cid in map(container_of, activity.busy_pids) if cid}
        # A device NVML cannot measure (a MIG slice) is never taken for an idle one.
        holders = [h for h in gpu_holders(student_container_records(
            engine, platform.site, UUID_LABEL)) if h.uuid in activity.measured]
        idle = watch.observe(holders, busy, now)
        if not idle:
            continue
        # Only servers that are up: stopping a spawn in progress would interrupt it.
        try:
            ready = ready_users(api)
        except Exception as error:  # noqa: BLE001 - the hub may be restarting; next round
            log.warning("the hub does not list its servers: %s", error)
            continue
        for holder in idle:
            if holder.user not in ready:
                continue
            log.info("%s has not used GPU %s for %ss: stopping the server", holder.user,
                     holder.uuid, gpu.idle_release_after_s)
            try:
                api.request("DELETE", f"/users/{holder.user}/server", ok=(202, 204))
            except Exception as error:  # noqa: BLE001 - one failure must not end the service
                log.warning("could not stop %s's server: %s", holder.user, error)
                continue
            record(state_dir, "classhub-gpu-culler", "gpu.idle-release", course=holder.course,
                   target=holder.user, gpu=holder.uuid,
                   idle_s=round(now - watch.idle_since(holder)))


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="[classhub-gpu-culler %(asctime)s] %(message)s")
    run(os.environ["CLASSHUB_SITE"])
