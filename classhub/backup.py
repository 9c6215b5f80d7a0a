"""`classhub backup` and `classhub restore`: the whole state directory, consistent, in one file.

A backup is `classhub-backup-<site>-<UTC time>.tar.gz` (0600): every SQLite database (the hub's,
the accounts, each gradebook) copied with SQLite's online backup API, so that a running hub or
formgrader is never caught mid-transaction; then everything else that makes the room what it is
(secrets, rosters, homes, gradebooks' files, the exchange, handouts, the audit trail), ownership
and modes kept; run-time files (`run/`, `logs/`) are left out. `manifest.json` inside lists each
file with its SHA-256. The secrets are in it (cookie secret, tokens, the audit key): keep
backups as carefully as the machine.

`classhub restore ARCHIVE` checks the manifest and each database's integrity first, refuses while
the hub runs, and puts the current state directory aside (`<state>.before-restore-<time>`)
rather than deleting it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path

from classhub.errors import ClasshubError
from classhub.state import StateDir

SKIPPED = {"run", "logs", "backups"}
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _is_sqlite(path: Path) -> bool:
    if path.suffix not in {".sqlite", ".db"} or not path.is_file() or path.is_symlink():
        return False
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _online_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    stat = source.stat()
    os.chmod(target, stat.st_mode & 0o777)
    if os.geteuid() == 0:
        os.chown(target, stat.st_uid, stat.st_gid)


def add_tree(tar: tarfile.TarFile, folder: Path, arcname: str, scratch: Path,
             skip: set[str] = frozenset()) -> dict[str, str]:
    """Add a folder to an open tar: every SQLite database as an online-backup copy (owner and
    mode of the live file kept), journals and lock files left out, and the top-level folders
    named in `skip`. Returns each regular file's SHA-256 by path relative to `folder`."""
    sums = {}
    for top, dirs, files in os.walk(folder):
        rel_top = Path(top).relative_to(folder)
        dirs[:] = sorted(d for d in dirs if rel_top != Path(".") or d not in skip)
        tar.add(top, arcname=str(Path(arcname) / rel_top), recursive=False)
        for name in sorted(files):
            if name.endswith(("-journal", "-wal", "-shm")) or name == ".lock":
                continue
            path, rel = Path(top) / name, rel_top / name
            source = path
            if _is_sqlite(path):
                source = scratch / hashlib.sha1(str(rel).encode()).hexdigest()
                _online_copy(path, source)
            if source.is_file() and not source.is_symlink():
                sums[str(rel)] = _sha256(source)
            info = tar.gettarinfo(str(source), arcname=str(Path(arcname) / rel))
            if source is not path:  # keep the live file's owner and mode
                stat = path.stat()
                info.uid, info.gid, info.mode = stat.st_uid, stat.st_gid, stat.st_mode
            if info.isreg():
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return sums


def backup(state: StateDir, site_name: str, output: Path, keep: int | None = None) -> Path:
    root = state.root
    if not root.is_dir():
        raise ClasshubError(f"{root}: no state directory to back up")
    output.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    archive = output / f"classhub-backup-{site_name}-{stamp}.tar.gz"
    if archive.exists():
        raise ClasshubError(f"{archive} exists: a backup was written this very second",
                            "run it again in a second")
    # Written under a hidden name and renamed when complete: a backup cut short (disk full,
    # killed) never looks like one, and retention never counts it.
    partial = output / f".{archive.name}.partial"
    manifest = {"site": site_name, "created": stamp, "state_dir": str(root), "files": {}}
    try:
        with tempfile.TemporaryDirectory(dir=output, prefix=".backup-") as scratch:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                manifest["files"] = add_tree(tar, root, "state", Path(scratch), skip=SKIPPED)
                data = json.dumps(manifest, indent=1).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
        os.rename(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    if keep:
        # This site's archives only: another site's name may start with this one's.
        mine = re.compile(rf"classhub-backup-{re.escape(site_name)}-\d{{8}}T\d{{6}}Z\.tar\.gz")
        old = sorted(p for p in output.iterdir() if mine.fullmatch(p.name))[:-keep]
        for path in old:
            path.unlink()
    return archive


def _check(extracted: Path, manifest: dict) -> None:
    for rel, digest in manifest["files"].items():
        path = extracted / rel
        if not path.is_file() or _sha256(path) != digest:
            raise ClasshubError(f"the backup is damaged: {rel} does not match its manifest",
                                "restore another backup")
        if _is_sqlite(path):
            db = sqlite3.connect(path)
            try:
                result = db.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                db.close()
            if result != "ok":
                raise ClasshubError(f"the backup's database {rel} fails its integrity check: "
                                    f"{result}")


def _extract(tar: tarfile.TarFile, target: Path) -> None:
    """Extract, refusing any member that would land outside `target`; owners kept as root."""
    members = tar.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or (
                member.islnk() and (member.linkname.startswith("/") or
                                    ".." in Path(member.linkname).parts)):
            raise ClasshubError(f"the backup holds an unsafe path: {member.name!r}")
    if hasattr(tarfile, "tar_filter"):  # Python with PEP 706's extraction filters
        tar.extractall(target, members=members, filter="tar")
    else:
        tar.extractall(target, members=members)  # noqa: S202 - members checked above


def restore(state: StateDir, archive: Path, hub_running: bool) -> Path | None:
    """Restore into the state directory; returns where the previous one was put aside."""
    if hub_running:
        raise ClasshubError("the hub is running", "`classhub down` first, then restore")
    if not archive.is_file():
        raise ClasshubError(f"{archive}: no such backup")
    root = state.root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".restore-") as scratch:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                _extract(tar, Path(scratch))
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ClasshubError(f"{archive}: not a readable classhub backup ({error})") from None
        manifest_path = Path(scratch) / MANIFEST
        if not manifest_path.exists() or not (Path(scratch) / "state").is_dir():
            raise ClasshubError(f"{archive}: not a classhub backup (no manifest)")
        _check(Path(scratch) / "state", json.loads(manifest_path.read_text()))
        aside = None
        if root.exists() and any(root.iterdir()):
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            aside = root.with_name(f"{root.name}.before-restore-{stamp}")
            root.rename(aside)
        elif root.exists():
            root.rmdir()
        shutil.move(str(Path(scratch) / "state"), str(root))
    StateDir(root).ensure()
    return aside
