"""The two long-running processes classhub starts on the host: the proxy and the hub.

Each runs in its own session with a pid file under `<state>/run` and a log under `<state>/logs`.
The proxy is started first and outlives hub restarts, so student servers stay reachable.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from classhub.errors import ClasshubError
from classhub.state import StateDir

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Process:
    """A background process known by its pid file and a word its command line must contain."""

    name: str
    marker: str
    state: StateDir

    @property
    def pid_file(self) -> Path:
        return self.state.run / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state.logs / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if self.marker.encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def write_pid(self, pid: int) -> None:
        """The pid file, replaced in one rename: a reader never sees it empty or half written."""
        tmp = self.pid_file.with_name(f".{self.pid_file.name}.{os.getpid()}")
        tmp.write_text(f"{pid}\n")
        os.replace(tmp, self.pid_file)

    def start(self, argv: list[str], env: dict[str, str], cwd: Path) -> int:
        self.state.logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = open(self.log_file, "ab", buffering=0)
        os.chmod(self.log_file, 0o600)
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env={**os.environ, **env}, start_new_session=True,
        )
        log.close()
        self.write_pid(process.pid)
        # Until the child has exec'd, its command line is still ours: wait for the real one.
        deadline = time.monotonic() + 10
        while self.pid() is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return process.pid

    def stop(self, grace_s: float = 15) -> bool:
        """SIGTERM, then SIGKILL after the grace period; True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def stop_leftovers(self, site_file: Path) -> list[int]:
        """After a crash (kill -9) of the hub, its managed services (grading service, culler)
        still run and hold their ports. They carry this site's CLASSHUB_SITE and JupyterHub's
        JUPYTERHUB_SERVICE_NAME in their environment: end those, and only those."""
        if self.running():
            return []
        wanted = f"CLASSHUB_SITE={site_file}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in environ and any(v.startswith(b"JUPYTERHUB_SERVICE_NAME=")
                                         for v in environ):
                found.append(int(entry))
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in found) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in found:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        return found

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def proxy(state: StateDir) -> Process:
    return Process("proxy", "configurable-http-proxy", state)


def hub(state: StateDir) -> Process:
    return Process("hub", "jupyterhub", state)


def proxy_command() -> str:
    local = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise ClasshubError("configurable-http-proxy is not installed",
                            "run `make deps` (npm installs the pinned version)")
    return found


def hub_command() -> list[str]:
    return [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "jupyterhub_config.py")]
