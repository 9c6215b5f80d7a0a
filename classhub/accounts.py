"""Local accounts: one hashed password per person, in the state directory.

bcrypt hashes in a SQLite file that the CLI writes (enrolment) and the hub reads (login) and
writes (a person changing their password). SQLite's own locking covers both processes.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
import time
from contextlib import closing
from pathlib import Path

import bcrypt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    password_hash BLOB NOT NULL,
    changed_at REAL NOT NULL
)
"""
# Letters and digits that cannot be mistaken for one another when read off a sheet of paper.
_READABLE = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def generate_password(length: int = 14) -> str:
    return "".join(secrets.choice(_READABLE) for _ in range(length))


class AccountStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        new = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=30)
        if new:
            self.path.chmod(0o600)
        db.execute(_SCHEMA)
        return db

    def exists(self, username: str) -> bool:
        with closing(self._connect()) as db:
            row = db.execute("SELECT 1 FROM accounts WHERE username = ?", (username,)).fetchone()
        return row is not None

    def usernames(self) -> list[str]:
        with closing(self._connect()) as db:
            return [r[0] for r in db.execute("SELECT username FROM accounts ORDER BY username")]

    def set_password(self, username: str, password: str) -> None:
        digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?) ON CONFLICT(username) DO UPDATE "
                "SET password_hash = excluded.password_hash, changed_at = excluded.changed_at",
                (username, digest, time.time()),
            )

    def create(self, username: str) -> str | None:
        """Give a new person a generated password and return it; None if they have one already."""
        if self.exists(username):
            return None
        password = generate_password()
        self.set_password(username, password)
        return password

    def verify(self, username: str, password: str) -> bool:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT password_hash FROM accounts WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            bcrypt.checkpw(b"x", _DUMMY_HASH)  # same cost whether or not the name exists
            return False
        return bcrypt.checkpw(password.encode(), bytes(row[0]))

    def remove(self, username: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM accounts WHERE username = ?", (username,))


_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt())
