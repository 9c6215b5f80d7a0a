"""Grades out of a course's gradebook, as CSV files, read on the host with nbgrader's API.

    <prefix>-questions.csv      username, assignment, notebook, question, score, max_score
    <prefix>-totals.csv         username, assignment, score (late penalty applied), max_score,
                                late_penalty, timestamp
    <prefix>-moodle.csv         username, then one column per assignment (Moodle's grade import)
    <prefix>-pseudonymised.csv  questions and totals under a keyed pseudonym (HMAC-SHA256 of the
                                username with the course's secret key): stable from one export to
                                the next, not reversible by hashing a roster, no names, e-mails
                                or times; for sharing statistics
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from classhub.errors import ClasshubError


def pseudonym_key(path: Path) -> bytes:
    """The course's pseudonym key, made on first use (0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def pseudonym(key: bytes, username: str) -> str:
    return "p-" + hmac.new(key, username.encode(), hashlib.sha256).hexdigest()[:16]


def _rows(gb: Gradebook):
    students = sorted(s.id for s in gb.students)
    for assignment in sorted(gb.assignments, key=lambda a: a.name):
        for student in students:
            try:
                yield assignment, student, gb.find_submission(assignment.name, student)
            except MissingEntry:
                yield assignment, student, None


def _write(path: Path, header: list[str], rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    path.chmod(0o600)
    return path


def export(course_dir: Path, course_id: str, output_dir: Path, prefix: str,
           titles: dict[str, str] | None, key: bytes) -> dict[str, Path]:
    db = Path(course_dir).resolve() / "gradebook.db"
    if not db.is_file():
        raise ClasshubError(f"{course_dir}: no gradebook.db", "nothing was graded there")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    questions, totals = [], []
    with Gradebook(f"sqlite:///{db}", course_id) as gb:
        rows = list(_rows(gb))
        for assignment, student, sub in rows:
            for notebook in sorted(sub.notebooks, key=lambda n: n.name) if sub else []:
                for grade in sorted(notebook.grades, key=lambda g: g.name):
                    questions.append([student, assignment.name, notebook.name, grade.name,
                                      grade.score, grade.max_score])
            penalty = sub.late_submission_penalty or 0 if sub else 0
            score = max(sub.score - penalty, 0) if sub else 0.0
            stamp = sub.timestamp.isoformat() if sub and sub.timestamp else ""
            totals.append([student, assignment.name, score, assignment.max_score, penalty, stamp])
        names = [a.name for a in sorted(gb.assignments, key=lambda a: a.name)]
        students = sorted(s.id for s in gb.students)
    titles = titles or {}
    names = [n for n in names if not titles or n in titles]
    score_of = {(t[0], t[1]): t[2] for t in totals}
    files = {
        "questions": _write(output_dir / f"{prefix}-questions.csv",
                            ["username", "assignment", "notebook", "question", "score",
                             "max_score"], questions),
        "totals": _write(output_dir / f"{prefix}-totals.csv",
                         ["username", "assignment", "score", "max_score", "late_penalty",
                          "timestamp"], totals),
        "moodle": _write(output_dir / f"{prefix}-moodle.csv",
                         ["username", *(titles.get(n, n) for n in names)],
                         ([s, *(f"{score_of.get((s, n), 0.0):.2f}" for n in names)]
                          for s in students)),
        "pseudonymised": _write(
            output_dir / f"{prefix}-pseudonymised.csv",
            ["pseudonym", "assignment", "notebook", "question", "score", "max_score"],
            sorted([[pseudonym(key, q[0]), *q[1:]] for q in questions]
                   + [[pseudonym(key, t[0]), t[1], "", "total", t[2], t[3]] for t in totals])),
    }
    return files
