"""nbgrader course directories built for the grader's tests, the way an instructor makes one.

`make_course` writes source notebooks and nbgrader_config.py, runs the real
`nbgrader generate_assignment` (the hub venv's nbgrader, the image's version), and sets the due
date in the gradebook; `submit` writes a submission as `nbgrader collect` leaves it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from classhub.coursework.lifecycle import _CONFIG

VENV_BIN = Path(sys.executable).parent


def cell(kind: str, source: str, **nbgrader) -> dict:
    made = {"id": nbgrader["grade_id"].replace("_", "-"), "cell_type": kind, "source": source,
            "metadata": {"nbgrader": {"schema_version": 3, **nbgrader}}}
    if kind == "code":
        made.update(outputs=[], execution_count=None)
    return made


def notebook(cells: list[dict]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}}}


def make_course(root: Path, course_id: str, assignment: str, notebooks: dict[str, dict],
                due: dt.datetime, files: dict[str, str] | None = None,
                points_per_day: int = 1, cell_timeout_s: int = 30) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    source = root / "source" / assignment
    source.mkdir(parents=True)
    for name, nb in notebooks.items():
        (source / f"{name}.ipynb").write_text(json.dumps(nb))
    for name, text in (files or {}).items():
        (source / name).write_text(text)
    config = _CONFIG.format(course=course_id, points_per_day=points_per_day,
                            late_penalty="c.AssignLatePenalties.plugin_class = PerDayPenalty")
    config = config.replace('c.CourseDirectory.root = "/home/jovyan"\n', "")
    (root / "nbgrader_config.py").write_text(config + f"c.Execute.timeout = {cell_timeout_s}\n")
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}  # nbgrader calls alembic
    subprocess.run([str(VENV_BIN / "nbgrader"), "generate_assignment", assignment, "--force"],
                   cwd=root, env=env, check=True, capture_output=True)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id) as gb:
        gb.update_or_create_assignment(
            assignment, duedate=due.astimezone(dt.timezone.utc).replace(tzinfo=None))
    return root


def released(root: Path, assignment: str, name: str) -> dict:
    return json.loads((root / "release" / assignment / f"{name}.ipynb").read_text())


def answered(nb: dict, answers: dict[str, str]) -> dict:
    """A copy of the notebook with these cells' sources (by grade_id) replaced."""
    nb = copy.deepcopy(nb)
    for c in nb["cells"]:
        grade_id = c["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            c["source"] = answers[grade_id]
    return nb


def submit(root: Path, student: str, assignment: str, files: dict[str, str | dict],
           when: dt.datetime) -> Path:
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    stamp = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    (folder / "timestamp.txt").write_text(stamp)
    return folder
