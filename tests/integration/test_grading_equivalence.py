"""The sandboxed grader gives the scores nbgrader's own `autograde` gives, cell by cell.

The same seeded submissions of the breast-cancer assignment (correct, partial, empty, edited
tests) go into two copies of one course directory: one graded the classic way, `nbgrader
autograde` inside the course image, the other by `grading.batch.grade`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grading.batch import GradingJob, grade
from grading.sandbox import Limits
from tests.integration.grading_course import answered, make_course, released, submit

REPO = Path(__file__).resolve().parents[2]
COURSE, A, NB = "m2-ia-sante", "01-cancer-du-sein", "cancer_du_sein"
IMAGE = "classhub/lab:latest"


def solutions(source: dict) -> dict[str, str]:
    """grade_id -> the instructor's answer, markers removed: what a perfect student writes."""
    found = {}
    for c in source["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            text = "".join(c["source"])
            found[meta["grade_id"]] = "\n".join(
                line for line in text.splitlines()
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    return found


def autograder_tests(source: dict) -> list[str]:
    return [c["metadata"]["nbgrader"]["grade_id"] for c in source["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")
            and not c["metadata"]["nbgrader"].get("solution")]


def auto_scores(course_dir: Path) -> dict[str, dict[str, float | None]]:
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", COURSE) as gb:
        return {student: {g.name: g.auto_score
                          for g in gb.find_submission_notebook(NB, A, student).grades}
                for student in sorted(s.id for s in gb.students)}


@pytest.fixture(scope="module")
def graded_both_ways(built_images, tmp_path_factory):
    root = tmp_path_factory.mktemp("equivalence")
    source = json.loads((REPO / "courses" / COURSE / "source" / A / f"{NB}.ipynb").read_text())
    base = make_course(root / "base", COURSE, A, {NB: source},
                       due=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30),
                       cell_timeout_s=120)
    release = released(base, A, NB)
    answers = solutions(source)
    half = dict(list(answers.items())[: len(answers) // 2])
    seeded = {
        "correct": answered(release, answers),
        "partial": answered(release, half),
        "empty": release,
        "edited_tests": answered(release,
                                 {**half, **{t: "pass" for t in autograder_tests(source)}}),
    }
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    for student, nb in seeded.items():
        submit(base, student, A, {f"{NB}.ipynb": nb}, when)

    classic, sandboxed = root / "classic", root / "sandboxed"
    shutil.copytree(base, classic)
    shutil.copytree(base, sandboxed)
    subprocess.run(["chown", "-R", "1000:1000", str(classic)], check=True)
    run = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000",
         "-v", f"{classic}:/home/jovyan/course", "-w", "/home/jovyan/course", IMAGE,
         "nbgrader", "autograde", A, "--force"],
        capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    report = grade(GradingJob(sandboxed, A, IMAGE,
                              Limits(mem_limit="2g", cpus=1.0, cell_timeout_s=120,
                                     notebook_timeout_s=600), jobs=2))
    return auto_scores(classic), auto_scores(sandboxed), report, source


def test_same_scores_cell_by_cell(graded_both_ways):
    classic, sandboxed, report, _ = graded_both_ways
    assert sandboxed == classic
    assert {r.student: r.status for r in report.results} == {
        "correct": "ok", "partial": "ok", "empty": "ok", "edited_tests": "ok"}


def test_the_seeds_span_the_range(graded_both_ways):
    """The comparison means something: full marks, some, none."""
    classic, _, _, source = graded_both_ways
    tests = autograder_tests(source)
    points = {s: sum(classic[s][t] for t in tests) for s in classic}
    full = sum(float(c["metadata"]["nbgrader"]["points"]) for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("grade_id") in tests)
    assert points["correct"] == full
    assert points["empty"] == 0
    assert 0 < points["partial"] < full
    assert points["edited_tests"] == points["partial"]  # the edited tests were put back


def test_autograded_folders_hold_the_executed_notebooks(graded_both_ways):
    _, _, report, _ = graded_both_ways
    folder = Path(report.course_dir) / "autograded" / "correct" / A
    nb = json.loads((folder / f"{NB}.ipynb").read_text())
    executed = [c for c in nb["cells"] if c["cell_type"] == "code" and c["source"]]
    assert all(c["execution_count"] for c in executed)
    assert os.stat(folder).st_uid == os.stat(report.course_dir).st_uid
