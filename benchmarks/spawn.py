"""How long a class waits: N students spawn at once through the hub, against N plain `docker run`s.

    .venv/bin/python benchmarks/spawn.py [-n 10]

Starts its own hub instance (state in a temporary folder, free ports, its own network), enrols N
students, spawns them all at once through the REST API and times each until the hub reports it
ready. The baseline, measured in the same run on the same image and network: N `docker run`s of
a bare `jupyter server`, each timed until its /api answers. The ratio is the hub's overhead.
Also times stopping all N. Not a test: it asserts nothing and gates nothing.
"""

from __future__ import annotations

import argparse
import os
import platform as host
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from classhub.config import load_platform  # noqa: E402
from classhub.engine import ensure_student_network, network_name  # noqa: E402
from classhub.enrolment import Enrolment, Member  # noqa: E402
from classhub.hubapi import HubAPI  # noqa: E402
from classhub.images import build  # noqa: E402
from classhub.platform import down, up  # noqa: E402
from tests.conftest import write_site  # noqa: E402
from tests.integration.conftest import free_port  # noqa: E402


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    return {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), host.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    engine = docker.from_env().version()["Version"]
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Linux {host.release()}, Docker {engine}"


def time_hub_spawns(api: HubAPI, users: list[str]) -> list[float]:
    def spawn(user: str) -> float:
        start = time.monotonic()
        reply = api.session.post(f"{api.base}/users/{user}/server", json={"course": "demo"},
                                 timeout=600)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"{user}: {reply.status_code} {reply.text}")
        while True:
            server = (api.user(user) or {}).get("servers", {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - start
            if server is None:
                raise RuntimeError(f"{user}: spawn failed")
            # N pollers at once load the hub on a small machine: poll gently (1 s granularity).
            time.sleep(1.0)

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        return list(pool.map(spawn, users))


def time_plain_runs(image: str, network: str, n: int) -> list[float]:
    engine = docker.from_env()

    def run(index: int) -> float:
        start = time.monotonic()
        container = engine.containers.run(
            image, ["jupyter", "server", "--ip=0.0.0.0", "--port=8888",
                    "--IdentityProvider.token=bench"],
            detach=True, remove=True, network=network, name=f"bench-plain-{os.getpid()}-{index}",
            mem_limit="2g", nano_cpus=1_000_000_000, shm_size="1g",
        )
        try:
            container.reload()
            ip = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
            while True:
                try:
                    if requests.get(f"http://{ip}:8888/api", timeout=1).status_code == 200:
                        return time.monotonic() - start
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        finally:
            container.remove(force=True)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--students", type=int, default=10)
    args = parser.parse_args()
    n = args.students
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="classhub-bench-") as tmp:
        site = write_site(
            Path(tmp), name=f"bench{os.getpid()}",
            hub={"bind_url": f"http://127.0.0.1:{free_port()}", "api_port": free_port(),
                 "proxy_api_port": free_port(), "concurrent_spawn_limit": max(n, 40),
                 "start_timeout_s": 600, "http_timeout_s": 600, "idle_timeout_s": 0},
        )
        platform = load_platform(site)
        build(platform, say=lambda line: None)
        up(platform)
        try:
            users = [f"bench{i:02d}" for i in range(n)]
            enrolment = Enrolment(platform)
            for user in users:
                enrolment.add("demo", Member(user))
            api = HubAPI.for_platform(platform)
            hub_times = time_hub_spawns(api, users)
            start = time.monotonic()
            with ThreadPoolExecutor(max_workers=n) as pool:
                list(pool.map(api.stop_server, users))
            stop_all = time.monotonic() - start

            ensure_student_network(docker.from_env(), platform.site)
            plain_times = time_plain_runs(platform.profile("demo").image,
                                          network_name(platform.site), n)
        finally:
            down(platform)

    hub, plain = summary(hub_times), summary(plain_times)
    print(f"N={n} students spawning at once")
    print(f"{'':24}{'p50':>8}{'p95':>8}{'max':>8}")
    print(f"{'hub spawn to ready (s)':24}" + "".join(f"{hub[k]:8.2f}" for k in hub))
    print(f"{'plain docker run (s)':24}" + "".join(f"{plain[k]:8.2f}" for k in plain))
    print(f"{'ratio hub / plain':24}" + "".join(f"{hub[k] / plain[k]:8.2f}" for k in hub))
    print(f"stop all {n} servers through the hub: {stop_all:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
