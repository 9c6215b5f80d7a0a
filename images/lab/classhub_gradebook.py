"""Gradebook chores that classhub runs in a course's grading container.

    python -m classhub_gradebook sync     # assignments (due dates) and students into gradebook.db
    python -m classhub_gradebook export   # exports/questions.csv, totals.csv, moodle.csv

Inputs come as JSON in environment variables set by classhub from the validated course and
roster: CLASSHUB_COURSE, CLASSHUB_ASSIGNMENTS, CLASSHUB_STUDENTS, CLASSHUB_TITLES.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys

from nbgrader.api import Gradebook, MissingEntry

DB_URL = "sqlite:////home/jovyan/gradebook.db"
EXPORTS = "/home/jovyan/exports"


def sync(gb: Gradebook, assignments: list[dict], students: list[dict]) -> None:
    for item in assignments:
        due = dt.datetime.fromisoformat(item["due"]).astimezone(dt.timezone.utc)
        gb.update_or_create_assignment(item["id"], duedate=due.replace(tzinfo=None))
    for student in students:
        gb.update_or_create_student(student["id"], first_name=student["name"],
                                    email=student["email"] or None)


def submissions(gb: Gradebook):
    """(assignment, student, submission or None) for every assignment and student."""
    students = sorted(s.id for s in gb.students)
    for assignment in gb.assignments:
        for student in students:
            try:
                yield assignment, student, gb.find_submission(assignment.name, student)
            except MissingEntry:
                yield assignment, student, None


def export(gb: Gradebook, out: str, titles: dict[str, str]) -> None:
    os.makedirs(out, exist_ok=True)
    rows = list(submissions(gb))
    with open(f"{out}/questions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["username", "assignment", "notebook", "question", "score", "max_score"])
        for assignment, student, sub in rows:
            for notebook in sub.notebooks if sub else []:
                for grade in sorted(notebook.grades, key=lambda g: g.name):
                    writer.writerow([student, assignment.name, notebook.name, grade.name,
                                     grade.score, grade.max_score])
    totals = {}
    with open(f"{out}/totals.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["username", "assignment", "score", "max_score", "late_penalty",
                         "timestamp"])
        for assignment, student, sub in rows:
            penalty = sub.late_submission_penalty if sub else 0
            score = max(sub.score - penalty, 0) if sub else 0.0
            totals[(student, assignment.name)] = score
            stamp = sub.timestamp.isoformat() if sub and sub.timestamp else ""
            writer.writerow([student, assignment.name, score, assignment.max_score, penalty, stamp])
    names = [a.name for a in gb.assignments if a.name in titles]
    with open(f"{out}/moodle.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["username"] + [titles[name] for name in names])
        for student in sorted(s.id for s in gb.students):
            writer.writerow([student] + [f"{totals.get((student, n), 0.0):.2f}" for n in names])


def main(argv: list[str]) -> int:
    with Gradebook(DB_URL, course_id=os.environ["CLASSHUB_COURSE"]) as gb:
        if argv[1:] == ["sync"]:
            sync(gb, json.loads(os.environ["CLASSHUB_ASSIGNMENTS"]),
                 json.loads(os.environ["CLASSHUB_STUDENTS"]))
        elif argv[1:] == ["export"]:
            export(gb, EXPORTS, json.loads(os.environ["CLASSHUB_TITLES"]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
