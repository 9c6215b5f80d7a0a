"""The audit trail: who did what, when; append-only, hash-chained, its head anchored elsewhere.

    <state>/audit/audit.jsonl          one JSON object per line:
        {"seq", "time", "actor", "action", "course", "target", "details", "prev", "hash"}
    <state>/secrets/audit_key          the chain's HMAC key (0600)
    <state>/secrets/audit_anchor       the last entry's seq and hash (0600)

Each entry's `hash` is HMAC-SHA256, keyed with `audit_key`, over the previous entry's hash and
the entry itself (canonical JSON). So an edited, removed or reordered line breaks the chain, a
recomputed chain needs the key, and a cut tail no longer ends at the anchor, which is written
after every append, outside the log. Writers (the hub's process and classhub's commands) take
the same file lock. What remains: someone with root on this machine can read the key; ship the
log to another machine (syslog) where that matters.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

import filelock

from classhub.state import StateDir, write_private

GENESIS = "0" * 64


def _canonical(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def whoami() -> str:
    """The person behind a command: the sudo caller if any, else the login."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


@dataclass
class Problem:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}" if self.line else self.what


class AuditLog:
    def __init__(self, state: StateDir):
        self.state = state
        self.folder = state.root / "audit"
        self.path = self.folder / "audit.jsonl"
        self.anchor = state.secrets / "audit_anchor"

    def _key(self) -> bytes:
        return bytes.fromhex(self.state.secret("audit_key"))

    def _sign(self, key: bytes, prev: str, entry: dict) -> str:
        body = {k: v for k, v in entry.items() if k != "hash"}
        return hmac.new(key, prev.encode() + _canonical(body), hashlib.sha256).hexdigest()

    def _head(self) -> tuple[int, str]:
        if not self.anchor.exists():
            return 0, GENESIS
        data = json.loads(self.anchor.read_text())
        return int(data["seq"]), str(data["hash"])

    def record(self, actor: str, action: str, course: str = "", target: str = "",
               **details) -> dict:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self._key()
        with filelock.FileLock(str(self.folder / ".lock")):
            seq, prev = self._head()
            entry = {"seq": seq + 1,
                     "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                     "actor": actor, "action": action, "course": course, "target": target,
                     "details": details, "prev": prev}
            entry["hash"] = self._sign(key, prev, entry)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, _canonical(entry) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            write_private(self.anchor, json.dumps({"seq": entry["seq"], "hash": entry["hash"]}))
        return entry

    def verify(self) -> tuple[int, list[Problem]]:
        """(entries read, problems); no problem means every line is as written, in order,
        and nothing was cut from the end."""
        problems: list[Problem] = []
        seq, prev, count = 0, GENESIS, 0
        key = self._key()
        lines = self.path.read_bytes().splitlines() if self.path.exists() else []
        for number, raw in enumerate(lines, start=1):
            try:
                entry = json.loads(raw)
            except ValueError:
                problems.append(Problem(number, "not a JSON line"))
                continue
            count += 1
            if not isinstance(entry, dict) or "hash" not in entry:
                problems.append(Problem(number, "not an audit entry"))
                continue
            if entry.get("seq") != seq + 1:
                problems.append(Problem(number, f"sequence {entry.get('seq')} after {seq}: "
                                                "a line was removed, added or moved"))
            if entry.get("prev") != prev:
                problems.append(Problem(number, "does not follow the line before it"))
            if not hmac.compare_digest(self._sign(key, entry.get("prev", ""), entry),
                                       str(entry["hash"])):
                problems.append(Problem(number, "edited: its hash does not match its content"))
            seq, prev = entry.get("seq", seq + 1), str(entry["hash"])
        anchored = self._head()
        if anchored != (seq, prev):
            problems.append(Problem(0, f"the log ends at entry {seq} but the anchor says "
                                       f"{anchored[0]}: its end was cut or replaced"))
        return count, problems

    def entries(self, user: str | None = None, course: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                action: str | None = None):
        if not self.path.exists():
            return
        for raw in self.path.read_bytes().splitlines():
            try:
                entry = json.loads(raw)
                when = dt.datetime.fromisoformat(entry["time"])
            except (ValueError, KeyError, TypeError):
                continue
            if user and user not in (entry.get("actor"), entry.get("target")):
                continue
            if course and entry.get("course") != course:
                continue
            if action and not str(entry.get("action", "")).startswith(action):
                continue
            if since and when < since or until and when > until:
                continue
            yield entry


def record(state_dir: Path | str, actor: str, action: str, **kwargs) -> None:
    """Record, never letting the audit trail break what it records (errors go to stderr)."""
    try:
        AuditLog(StateDir(Path(state_dir))).record(actor, action, **kwargs)
    except Exception as error:  # noqa: BLE001 - an audit failure is reported, not raised
        import sys

        print(f"classhub: could not write the audit trail: {error}", file=sys.stderr)
