"""Rosters: who belongs to which course, as students or instructors.

A roster is personal data, so it lives in the state directory (`rosters/<course>.csv`, 0600),
never in git. The username is the one identifier a person has everywhere: roster, login, grade
export (Moodle's identifier).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from classhub.config.model import USERNAME
from classhub.errors import ClasshubError
from classhub.state import write_private

Role = Literal["student", "instructor"]
FIELDS = ["username", "name", "email", "role"]


@dataclass(frozen=True)
class Member:
    username: str
    name: str = ""
    email: str = ""
    role: Role = "student"


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise ClasshubError(
            f"{username!r} is not a valid username",
            "use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return username


class Roster:
    def __init__(self, folder: Path, course: str):
        self.course = course
        self.path = Path(folder) / f"{course}.csv"

    def members(self) -> dict[str, Member]:
        if not self.path.exists():
            return {}
        with self.path.open(newline="", encoding="utf-8") as handle:
            return {
                row["username"]: Member(row["username"], row["name"], row["email"], row["role"])
                for row in csv.DictReader(handle)
            }

    def save(self, members: dict[str, Member]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for username in sorted(members):
            m = members[username]
            writer.writerow({"username": m.username, "name": m.name, "email": m.email,
                             "role": m.role})
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.path, out.getvalue())

    def students(self) -> list[str]:
        return sorted(u for u, m in self.members().items() if m.role == "student")

    def instructors(self) -> list[str]:
        return sorted(u for u, m in self.members().items() if m.role == "instructor")


@dataclass
class Changes:
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    absent: list[str]  # in the roster, not in the imported file, kept

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated",
                 f"{len(self.unchanged)} unchanged", f"{len(self.removed)} removed"]
        text = ", ".join(parts)
        if self.absent:
            text += (f"; {len(self.absent)} in the roster but not in the file, kept "
                     f"({', '.join(self.absent)}; --remove-missing removes them)")
        return text


def read_export(path: Path) -> list[Member]:
    """Read a university export: a CSV with the columns id, name, email (role optional)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ClasshubError(f"{path}: cannot read: {exc.strerror}") from exc
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = {c.strip().lower() for c in (reader.fieldnames or [])}
    missing = {"id", "name", "email"} - columns
    if missing:
        raise ClasshubError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}",
            "the first line must name the columns id, name, email (and optionally role)",
        )
    members, seen = [], set()
    for line, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        username = row["id"].lower()
        if not USERNAME.match(username):
            raise ClasshubError(f"{path}: line {line}: id {row['id']!r} is not a valid username")
        if username in seen:
            raise ClasshubError(f"{path}: line {line}: {username} appears twice")
        role = row.get("role") or "student"
        if role not in ("student", "instructor"):
            raise ClasshubError(f"{path}: line {line}: role {role!r} is not student or instructor")
        seen.add(username)
        members.append(Member(username, row["name"], row["email"], role))
    return members


def merge(current: dict[str, Member], incoming: list[Member], remove_missing: bool):
    """The roster after an import, and what changed; importing the same file twice changes nothing."""
    result = dict(current)
    changes = Changes([], [], [], [], [])
    for member in incoming:
        old = current.get(member.username)
        if old is None:
            result[member.username] = member
            changes.added.append(member.username)
        elif old == member:
            changes.unchanged.append(member.username)
        else:
            result[member.username] = replace(old, name=member.name, email=member.email,
                                              role=member.role)
            changes.updated.append(member.username)
    incoming_names = {m.username for m in incoming}
    for username in sorted(set(current) - incoming_names):
        if remove_missing:
            del result[username]
            changes.removed.append(username)
        else:
            changes.absent.append(username)
    return result, changes
