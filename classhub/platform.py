"""Bringing a site up and down, and telling what runs: `classhub up`, `down`, `status`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests
from docker.errors import DockerException, NotFound
from filelock import FileLock

from classhub import audit, firewall, processes, tls
from classhub import engine as engines
from classhub.accounts import AccountStore
from classhub.config.model import Platform
from classhub.coursework.lifecycle import write_course_config
from classhub.enrolment import Enrolment
from classhub.errors import ClasshubError
from classhub.gpu import admin as gpu_admin
from classhub.hub.config import PROXY_TOKEN_SECRET
from classhub.hubapi import HubAPI
from classhub.state import StateDir, write_private


@dataclass
class Started:
    url: str
    admin_passwords: dict[str, str]  # admin username -> file holding their initial password


HEALTH_PROBE_S = 10  # one health request; a hub starting on a loaded machine answers slowly
HUB_START_S = 120  # `classhub up`: how long the hub may take to answer


def _missing_images(engine, platform: Platform) -> list[str]:
    missing = []
    for profile in platform.profiles().values():
        try:
            engine.images.get(profile.image)
        except NotFound:
            missing.append(profile.image)
    return sorted(set(missing))


def _initial_password_file(state: StateDir, admin: str) -> Path:
    return state.secrets / f"initial-password-{admin}"


def _ensure_admin_accounts(platform: Platform, state: StateDir) -> dict[str, str]:
    files = {}
    if platform.site.auth.kind != "local":
        return files
    accounts = AccountStore(state.accounts_db)
    for admin in platform.site.auth.admin_users:
        path = _initial_password_file(state, admin)
        password = accounts.create(admin)
        if password is not None:
            write_private(path, password + "\n")
        files[admin] = str(path)
    return files


def _wait_healthy(platform: Platform, state: StateDir, deadline: float) -> None:
    """Until `deadline` (time.monotonic()): the hub answers on its public URL, or it stopped.
    A busy hub that answers slowly is waited for, not taken as a failure."""
    api = HubAPI.for_platform(platform)  # its session reaches this node's proxy (local_session)
    url = api.base.removesuffix("/hub/api") + "/hub/health"
    hub = processes.hub(state)
    # Under systemd (a provisioned node) the hub's output is in the journal, not in a log file.
    journal = bool(os.environ.get("INVOCATION_ID"))
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not hub.running():
            if journal:
                raise ClasshubError("the hub stopped while starting",
                                    "journalctl -u classhub-hub says why")
            raise ClasshubError(
                f"the hub stopped while starting; its log ({hub.log_file}) ends with:\n"
                + hub.log_tail(),
                "fix what the log says, then `classhub up` again",
            )
        try:
            # Healthy, and its API answers (it waits for its managed services first).
            health = api.session.get(url, timeout=HEALTH_PROBE_S, verify=api.verify)
            if health.status_code == 200 and api.reachable():
                return
            last = f"{url} answered {health.status_code}"
        except requests.exceptions.SSLError as error:
            raise ClasshubError(
                f"the proxy answers at {url} but its certificate does not verify for "
                f"{urlparse(platform.site.hub.bind_url).hostname}: {error}",
                "the certificate must name the public host (tls init --hostname), and its CA "
                "must be the room's or in the system's trust store (update-ca-certificates)",
            ) from None
        except requests.Timeout:
            last = f"{url} did not answer within {HEALTH_PROBE_S} s (a busy machine)"
        except requests.ConnectionError:
            last = f"nothing listens at {url} yet"
        time.sleep(0.3)
    raise ClasshubError(f"the hub did not answer at {url} in time ({last})",
                        "journalctl -u classhub-hub -u classhub-proxy says why" if journal
                        else f"see {hub.log_file}")


@dataclass
class Prepared:
    state: StateDir
    engine: object
    gateway: str
    admin_passwords: dict[str, str]


def prepare(platform: Platform) -> Prepared:
    """Everything the proxy and the hub need before they start: the state directory, the course
    images (present), the students' network and its firewall, the admins' accounts."""
    site = platform.site
    if site.cleartext_exposed():
        print(f"classhub: WARNING: {site.hub.bind_url} is reachable from the network without "
              "TLS: passwords and notebooks would cross it in clear. Set tls.enabled (see "
              "`classhub tls init`), or bind to 127.0.0.1.", file=sys.stderr)
    state = StateDir(site.state_dir).ensure()
    engine = engines.client()
    missing = _missing_images(engine, platform)
    if missing:
        raise ClasshubError(f"course image(s) not built: {', '.join(missing)}",
                            "run `classhub images build` first")
    # The proxy's and the hub's units prepare at the same time at boot: one at a time.
    with FileLock(state.run / "prepare.lock", timeout=120):
        gateway = engines.ensure_student_network(engine, site)
        if site.network.host_firewall:
            firewall.apply(site, engine.networks.get(engines.network_name(site)), gateway)
        admins = _ensure_admin_accounts(platform, state)
    return Prepared(state, engine, gateway, admins)


def proxy_argv(platform: Platform, prepared: Prepared) -> tuple[list[str], dict[str, str]]:
    """The proxy's command line and environment."""
    site, state = platform.site, prepared.state
    bind = urlparse(site.hub.bind_url)
    hub_api = f"http://{prepared.gateway}:{site.hub.api_port}"
    certificate = tls.files(site, state)
    https = ["--ssl-cert", str(certificate.certificate), "--ssl-key",
             str(certificate.key)] if certificate else []
    argv = [
        processes.proxy_command(),
        "--ip", site.hub.listen_address or bind.hostname,
        "--port", str(bind.port or (443 if https else 80)),
        *https,
        "--api-ip", "127.0.0.1", "--api-port", str(site.hub.proxy_api_port),
        "--default-target", hub_api, "--error-target", f"{hub_api}/hub/error",
        "--log-level", "warn",
    ]
    return argv, {"CONFIGPROXY_AUTH_TOKEN": state.secret(PROXY_TOKEN_SECRET)}


def hub_environment(platform: Platform) -> dict[str, str]:
    return {"CLASSHUB_SITE": str(platform.site_file)}


def settle(platform: Platform, engine, restarted: bool, timeout_s: float = HUB_START_S,
           strict: bool = True) -> None:
    """Once the hub answers: containers it no longer knows removed (after a restart), rosters
    and course configs brought in step. `timeout_s`: how long the hub may take to appear and
    answer (a unit's ExecStartPost runs while its ExecStart still prepares). Not `strict`: a
    failure after the hub answers is a warning."""
    state = StateDir(platform.site.state_dir)
    deadline = time.monotonic() + timeout_s
    while not processes.hub(state).running() and time.monotonic() < deadline:
        time.sleep(0.2)
    _wait_healthy(platform, state, deadline)
    try:
        if restarted:
            orphans = remove_orphans(platform, engine)
            if orphans:
                print(f"classhub: removed {len(orphans)} container(s) the hub no longer knew "
                      f"(a spawn cut short): {', '.join(orphans)}", file=sys.stderr)
        Enrolment(platform).sync_hub()
        for course in platform.courses:  # the formgraders read it from their gradebook folder
            write_course_config(platform, course)
    except (ClasshubError, DockerException) as error:
        if strict:
            raise
        # A unit's ExecStartPost: a running, healthy hub is not stopped for this.
        print(f"classhub: WARNING: the hub runs, but bringing it in step failed: {error}",
              file=sys.stderr)


# Where Ansible's hub role installs the services (a provisioned node); `up` and `down` then go
# through systemd, so that the units and the commands never start or stop each other's processes.
SYSTEMD_UNITS = ("classhub-proxy.service", "classhub-hub.service")
SYSTEMD_DIR = Path("/etc/systemd/system")


def systemd_managed() -> bool:
    return all((SYSTEMD_DIR / unit).is_file() for unit in SYSTEMD_UNITS) and \
        shutil.which("systemctl") is not None


def _systemctl(verb: str, *units: str) -> None:
    done = subprocess.run(["systemctl", verb, *units], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ClasshubError(f"systemctl {verb} {' '.join(units)} failed: "
                            f"{done.stderr.strip() or done.stdout.strip()}",
                            "journalctl -u classhub-hub -u classhub-proxy says why")


def up(platform: Platform) -> Started:
    """Start the proxy and the hub (each only if not running) and wait until the hub answers."""
    if systemd_managed():  # the hub unit's start waits for `serve settle`
        _systemctl("start", *SYSTEMD_UNITS)
        state = StateDir(platform.site.state_dir)
        files = {admin: _initial_password_file(state, admin)
                 for admin in platform.site.auth.admin_users}
        return Started(platform.site.hub.bind_url,
                       {admin: str(path) for admin, path in files.items() if path.exists()})
    prepared = prepare(platform)
    state = prepared.state
    proxy = processes.proxy(state)
    if not proxy.running():
        argv, env = proxy_argv(platform, prepared)
        proxy.start(argv, env=env, cwd=state.run)
    hub = processes.hub(state)
    restarted = not hub.running()
    if restarted:
        hub.stop_leftovers(platform.site_file)  # a crashed hub's services hold their ports
        hub.start(processes.hub_command(), env=hub_environment(platform), cwd=state.hub)
    settle(platform, prepared.engine, restarted)
    return Started(platform.site.hub.bind_url, prepared.admin_passwords)


def serve(platform: Platform, which: str) -> None:
    """Become the proxy or the hub, in the foreground (a systemd unit's ExecStart): prepared as
    `up` would, the pid file written for `status`, then exec'd, so the unit's main process is
    the proxy or the hub itself and its output goes to the journal."""
    prepared = prepare(platform)
    state = prepared.state
    if which == "proxy":
        process = processes.proxy(state)
        argv, env = proxy_argv(platform, prepared)
        cwd = state.run
    else:
        process = processes.hub(state)
        process.stop_leftovers(platform.site_file)
        argv, env, cwd = processes.hub_command(), hub_environment(platform), state.hub
    if process.running():
        raise ClasshubError(f"the {which} already runs (pid {process.pid()}), started "
                            "outside this unit", "`classhub down` first")
    for name, path in prepared.admin_passwords.items() if which == "hub" else ():
        print(f"classhub: {name}'s initial password is in {path} (root only)", flush=True)
    process.write_pid(os.getpid())
    os.chdir(cwd)
    sys.stdout.flush()
    os.execvpe(argv[0], argv, {**os.environ, **env})


def remove_orphans(platform: Platform, engine) -> list[str]:
    """Student containers whose user has no server in the hub (a hub killed mid-spawn leaves
    one running that nobody can reach or stop): removed, so that nothing runs unaccounted."""
    api = HubAPI.for_platform(platform)
    known = {u["name"] for u in api.users() if (u.get("servers") or {}).get("")}
    removed = []
    for container in engines.student_containers(engine, platform.site, all_states=True):
        user = container.labels.get(engines.USER_LABEL, "")
        if user not in known:
            try:
                container.remove(force=True)
            except NotFound:
                continue
            removed.append(user or container.name)
    if removed:
        audit.record(platform.site.state_dir, audit.whoami(), "server.orphan-removed",
                     users=removed)
    return removed


def _stop_all_servers(api: HubAPI) -> None:
    running = [u["name"] for u in api.users() if u.get("servers")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(api.stop_server, running))


def down(platform: Platform) -> list[str]:
    """Stop every student server, the hub and the proxy; leave no container, process or port."""
    site = platform.site
    state = StateDir(site.state_dir)
    done = []
    api = HubAPI.for_platform(platform)
    if api.reachable():
        try:
            _stop_all_servers(api)
            done.append("student servers stopped")
        except ClasshubError as error:  # the containers are removed below all the same
            done.append(f"some servers did not stop through the hub ({error})")
    if systemd_managed():
        _systemctl("stop", *reversed(SYSTEMD_UNITS))
        done.append("hub and proxy services stopped (systemctl start classhub-proxy "
                    "classhub-hub, or classhub up, starts them)")
    else:
        if processes.hub(state).stop():
            done.append("hub stopped")
        if processes.proxy(state).stop():
            done.append("proxy stopped")
    try:
        engine = engines.client()
    except ClasshubError:
        return done
    leftovers = engines.student_containers(engine, site, all_states=True)
    for container in leftovers:
        try:
            container.remove(force=True)
        except NotFound:
            pass
    if leftovers:
        done.append(f"{len(leftovers)} leftover container(s) removed")
    try:
        engines.remove_student_network(engine, site)
    except DockerException as exc:
        done.append(f"network kept: {exc}")
    if site.network.host_firewall and firewall.remove(site):
        done.append("host firewall chain removed")
    return done


def _container_usage(container) -> dict:
    try:
        stats = container.stats(stream=False)
        memory = stats.get("memory_stats", {})
        return {"memory_bytes": memory.get("usage"), "memory_limit_bytes": memory.get("limit"),
                "pids": stats.get("pids_stats", {}).get("current")}
    except DockerException:
        return {}


def status(platform: Platform) -> dict:
    site = platform.site
    state = StateDir(site.state_dir)
    report = {
        "url": site.hub.bind_url,
        "hub": "running" if processes.hub(state).running() else "stopped",
        "proxy": "running" if processes.proxy(state).running() else "stopped",
        "courses": sorted(platform.courses),
        "servers": [],
    }
    try:
        engine = engines.client()
        containers = engines.student_containers(engine, site)
    except ClasshubError:
        report["engine"] = "unreachable"
        return report
    report["engine"] = "running"
    try:
        report["gpus"] = gpu_admin.report(platform)
    except ClasshubError as error:
        report["gpus"] = {"inventory": "unreadable", "note": str(error), "devices": []}
    report["gpus"]["courses"] = sorted(platform.gpu_courses())
    with ThreadPoolExecutor(max_workers=8) as pool:
        usage = list(pool.map(_container_usage, containers))
    for container, use in zip(containers, usage, strict=True):
        labels = container.labels
        host = container.attrs.get("HostConfig", {})
        report["servers"].append(
            {
                "user": labels.get(engines.USER_LABEL),
                "course": labels.get(engines.COURSE_LABEL),
                "image": container.attrs["Config"]["Image"],
                "container": container.name,
                "status": container.status,
                "cpu_limit": (host.get("NanoCpus") or 0) / 1e9
                or (host.get("CpuQuota") or 0) / max(host.get("CpuPeriod") or 100000, 1),
                "mem_limit_bytes": host.get("Memory"),
                "pids_limit": host.get("PidsLimit"),
                **use,
            }
        )
    report["servers"].sort(key=lambda s: s["user"] or "")
    return report
