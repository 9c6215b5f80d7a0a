"""Every assignment of the real courses: its solution passes its own tests, its release fails them.

Both versions go through the real pipeline (release, autograde in a network-less container,
export), as two submissions of the same assignment.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from classhub.config import load_platform
from classhub.coursework import lifecycle
from classhub.coursework.layout import CourseSpace
from classhub.roster import Member, Roster
from classhub.state import StateDir
from tests.conftest import REPO, write_site

COURSES = ["m2-ia-sante", "du-ia-sante"]
CASES = [
    (course, item["id"])
    for course in COURSES
    for item in yaml.safe_load((REPO / "courses" / course / "course.yml").read_text())[
        "assignments"]
]


def autograded_tests(source: Path) -> dict[str, float]:
    """grade_id -> points of every autograder test cell in the assignment's notebooks."""
    tests = {}
    for notebook in sorted(source.glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
                tests[meta["grade_id"]] = float(meta["points"])
    return tests


@pytest.fixture(scope="module")
def platform(built_images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("content")
    platform = load_platform(write_site(folder))
    state = StateDir(platform.site.state_dir).ensure()
    for course in COURSES:
        Roster(state.rosters, course).save({"solution": Member("solution"),
                                            "release": Member("release")})
    return platform


def _submit(space: CourseSpace, student: str, assignment: str, folder: Path) -> None:
    target = space.gradebook_dir / "submitted" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    (target / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    for top, dirs, files in os.walk(space.gradebook_dir / "submitted"):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, 1000, 1000)


@pytest.mark.parametrize("course, assignment", CASES)
def test_solution_passes_and_release_fails(platform, course, assignment, tmp_path):
    source = platform.site.courses_dir / course / "source" / assignment
    tests = autograded_tests(source)
    assert len(tests) >= 3, "an assignment needs at least three autograded tests"

    lifecycle.release(platform, course, assignment)
    space = CourseSpace(StateDir(platform.site.state_dir), course)
    _submit(space, "solution", assignment, source)
    _submit(space, "release", assignment, space.gradebook_dir / "release" / assignment)
    lifecycle.autograde(platform, course, assignment)
    files = lifecycle.export(platform, course, tmp_path)

    with open(files["questions"], newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == assignment
                and r["question"] in tests]
    scores = {(r["username"], r["question"]): float(r["score"] or 0) for r in rows}
    for grade_id, points in tests.items():
        assert scores[("solution", grade_id)] == points, f"solution fails {grade_id}"
        assert scores[("release", grade_id)] == 0, f"release passes {grade_id}"
