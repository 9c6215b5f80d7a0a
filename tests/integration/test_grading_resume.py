"""Ctrl-C and a crash mid-batch lose nothing: the next run grades only what is left.

Drives the real `classhub grade --course-dir` command, as an instructor regrading an archived
course would, and interrupts it with SIGINT, then kills it with SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from grading.sandbox import LABEL
from tests.integration.grading_course import answered, make_course, released, submit
from tests.integration.test_grading_hostile import NB, SOURCE

A = "devoir"
STUDENTS = [f"etudiant{i}" for i in range(5)]
CLASSHUB = [sys.executable, "-m", "classhub.cli"]


@pytest.fixture
def course(built_images, tmp_path):
    root = make_course(tmp_path / "archive", "archive", A, {NB: SOURCE},
                       due=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    slow = answered(released(root, A, NB),
                    {"reponse": "import time\ntime.sleep(2)\ndef double(x):\n    return 2 * x"})
    for student in STUDENTS:
        submit(root, student, A, {f"{NB}.ipynb": slow}, dt.datetime.now(dt.timezone.utc))
    return root


# Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &` in a script)
# would hand the command an ignored SIGINT, which Python then keeps ignoring.
AS_IN_A_TERMINAL = ["env", "--default-signal=INT"]


def _start(course: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*AS_IN_A_TERMINAL, *CLASSHUB, "grade", "--course-dir", str(course),
                             A, "--jobs", "1", "--cell-timeout", "30", "--memory", "512m",
                             *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _markers(course: Path) -> set[str]:
    return {p.stem for p in (course / ".classhub-grading" / "graded" / A).glob("*.json")}


def _wait_for_markers(course: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while len(_markers(course)) < count:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "grading made no progress"
        time.sleep(0.2)


def _last_report(course: Path) -> dict:
    reports = sorted((course / ".classhub-grading" / "reports").glob("*.json"),
                     key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())


def _scores(course: Path) -> dict[str, float]:
    db = sqlite3.connect(course / "gradebook.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT student.id, SUM(grade.auto_score) FROM grade "
                      "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
                      "JOIN submitted_assignment ON submitted_notebook.assignment_id = "
                      "submitted_assignment.id JOIN student ON "
                      "submitted_assignment.student_id = student.id GROUP BY student.id")
    return dict(rows.fetchall())


def _sandboxes() -> list:
    return docker.from_env().containers.list(all=True, filters={"label": f"{LABEL}=1"})


def test_ctrl_c_then_rerun_grades_what_is_left(course):
    process = _start(course)
    _wait_for_markers(course, 2, process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "INTERRUPTED" in output
    assert _sandboxes() == []
    done = _markers(course)
    assert 2 <= len(done) < len(STUDENTS)
    assert all(_scores(course)[s] == 3.0 for s in done)

    rerun = _start(course)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    report = _last_report(course)
    assert sorted(report["skipped"]) == sorted(done)
    assert sorted(r["student"] for r in report["results"]) == sorted(set(STUDENTS) - done)
    assert _scores(course) == {s: 3.0 for s in STUDENTS}


def test_a_killed_run_leaves_what_it_finished(course):
    first = _start(course)
    assert first.wait(timeout=300) == 0
    crashed = _start(course, "--force")
    time.sleep(1)  # the forced run removes each marker as it starts that submission
    _wait_for_markers(course, 1, crashed)
    while len(_markers(course)) == len(STUDENTS):
        time.sleep(0.1)
    crashed.kill()  # SIGKILL: no cleanup at all
    crashed.wait()
    left = set(STUDENTS) - _markers(course)
    assert left

    rerun = _start(course)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    report = _last_report(course)
    assert sorted(r["student"] for r in report["results"]) == sorted(left)
    assert _sandboxes() == []  # the killed run's sandboxes were cleaned up
    assert _scores(course) == {s: 3.0 for s in STUDENTS}
