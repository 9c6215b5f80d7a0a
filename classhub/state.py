"""The state directory: where a site keeps secrets, rosters, homes, databases and logs.

Everything here is personal data or a secret, so folders are created 0700 and files 0600.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

STUDENT_UID = 1000  # jovyan in every course image


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def rosters(self) -> Path:
        return self.root / "rosters"

    @property
    def homes(self) -> Path:
        return self.root / "homes"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def handouts(self) -> Path:
        """Initial passwords, one file per enrolment run, for the instructor to hand out."""
        return self.root / "handouts"

    @property
    def accounts_db(self) -> Path:
        return self.root / "accounts.sqlite"

    @property
    def hub_db(self) -> Path:
        return self.hub / "jupyterhub.sqlite"

    @property
    def gpu_reservations(self) -> Path:
        return self.hub / "gpu-reservations.json"

    def ensure(self) -> StateDir:
        for folder in (self.root, self.secrets, self.rosters, self.homes, self.hub,
                       self.logs, self.run, self.handouts):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.homes.chmod(0o711)  # containers bind-mount their own home; nobody lists others'
        return self

    @contextmanager
    def lock(self):
        """Serialises writes to rosters, accounts and secrets between CLI calls and the hub."""
        self.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        with FileLock(self.run / "state.lock", timeout=60):
            yield

    def home(self, username: str) -> Path:
        """A student's home, created owned by the container user; it outlives their containers."""
        path = self.homes / username
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True)
        if os.geteuid() == 0:
            os.chown(path, STUDENT_UID, STUDENT_UID)
        return path

    def secret(self, name: str, nbytes: int = 32) -> str:
        """Read a secret, generating it (0600) on first use."""
        path = self.secrets / name
        if not path.exists():
            # The proxy's and the hub's units may both make it at their first start: the first
            # link wins and the other reads it; a secret in use is never replaced.
            self.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            write_private(tmp, secrets.token_hex(nbytes) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give a folder and everything in it to uid:gid (links themselves, never their targets);
    a no-op unless classhub runs as root."""
    if os.geteuid() != 0:
        return
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, uid, gid)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
