"""Every assignment of the real courses: its solution passes its own tests, its release fails them.

Both versions go through the real pipeline (release, autograde in a network-less container,
export), as two submissions of the same assignment.
"""

from __future__ import annotations

import csv
import datetime as dt
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
                                            "release": Member("release"),
                                            "retard": Member("retard")})
    return platform


def _submit(space: CourseSpace, student: str, assignment: str, folder: Path,
            stamp: str = "2026-01-01 00:00:00.000000 UTC") -> None:
    target = space.gradebook_dir / "submitted" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    (target / "timestamp.txt").write_text(stamp)
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


def test_late_work_loses_points_per_started_day(platform, tmp_path):
    course, assignment = "m2-ia-sante", "01-cancer-du-sein"
    item = next(a for a in platform.courses[course].assignments if a.id == assignment)
    assert platform.courses[course].late_penalty.points_per_day == 1
    late = item.due.astimezone(dt.timezone.utc) + dt.timedelta(days=1, hours=1)  # 2 started days
    source = platform.site.courses_dir / course / "source" / assignment
    lifecycle.release(platform, course, assignment)
    space = CourseSpace(StateDir(platform.site.state_dir), course)
    _submit(space, "retard", assignment, source,
            stamp=late.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    lifecycle.autograde(platform, course, assignment)
    files = lifecycle.export(platform, course, tmp_path)
    with open(files["totals"], newline="") as handle:
        row = next(r for r in csv.DictReader(handle)
                   if r["username"] == "retard" and r["assignment"] == assignment)
    full = sum(autograded_tests(source).values())
    assert float(row["late_penalty"]) == 2.0
    assert float(row["score"]) == full - 2.0
