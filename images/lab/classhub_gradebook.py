"""Gradebook chores that classhub runs in a course's grading container.

    python -m classhub_gradebook sync     # assignments (due dates) and students into gradebook.db

Inputs come as JSON in environment variables set by classhub from the validated course and
roster: CLASSHUB_COURSE, CLASSHUB_ASSIGNMENTS, CLASSHUB_STUDENTS. (Grades are read on the host
by `classhub export`.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

from nbgrader.api import Gradebook

DB_URL = "sqlite:////home/jovyan/gradebook.db"


def sync(gb: Gradebook, assignments: list[dict], students: list[dict]) -> None:
    for item in assignments:
        due = dt.datetime.fromisoformat(item["due"]).astimezone(dt.timezone.utc)
        gb.update_or_create_assignment(item["id"], duedate=due.replace(tzinfo=None))
    for student in students:
        gb.update_or_create_student(student["id"], first_name=student["name"],
                                    email=student["email"] or None)


def main(argv: list[str]) -> int:
    with Gradebook(DB_URL, course_id=os.environ["CLASSHUB_COURSE"]) as gb:
        if argv[1:] == ["sync"]:
            sync(gb, json.loads(os.environ["CLASSHUB_ASSIGNMENTS"]),
                 json.loads(os.environ["CLASSHUB_STUDENTS"]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
