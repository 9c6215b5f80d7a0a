"""Both real courses at once on one hub, each end to end through its students' own servers.

Per course: the instructor releases an assignment; three students fetch it, fill it in (all
answers right, one answer missing, nothing) and submit from their running servers; collect,
autograde, a written answer graded by hand in the course's formgrader, feedback released and
fetched by a student, and the exported scores are the expected ones.
"""

from __future__ import annotations

import csv
import json

import pytest

from classhub.coursework import lifecycle
from tests.conftest import REPO
from tests.integration.conftest import parallel, start_hub, stop_hub
from tests.integration.journeys import (
    fetch_feedback_through_server,
    grade_by_hand_in_the_formgrader,
    submit_through_server,
)

ARTIFACTS = REPO / "test-artifacts"
# course -> (assignment, notebook): the quickest assignment of each course.
CASES = {"m2-ia-sante": ("01-cancer-du-sein", "cancer_du_sein"),
         "du-ia-sante": ("02-premier-modele", "premier_modele")}


def _cells(path):
    for cell in json.loads(path.read_text())["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        yield cell["cell_type"], meta, source


def answers_and_points(source_notebook):
    """Answers by grade_id (everything right, and everything but the last code answer),
    the points of the autograded tests, and one hand-graded answer with its points."""
    cells = list(_cells(source_notebook))
    right = {m["grade_id"]: src for kind, m, src in cells if m.get("solution")}
    code_answers = [m["grade_id"] for kind, m, src in cells
                    if m.get("solution") and kind == "code"]
    partial = {k: v for k, v in right.items() if k != code_answers[-1]}
    tests = {m["grade_id"]: float(m["points"]) for kind, m, src in cells
             if m.get("grade") and not m.get("solution") and kind == "code"}
    manual = next((m["grade_id"], float(m["points"])) for kind, m, src in cells
                  if m.get("grade") and m.get("solution") and kind == "markdown")
    return right, partial, tests, manual


@pytest.fixture(scope="module")
def hub(built_images, tmp_path_factory):
    running = start_hub(tmp_path_factory.mktemp("courses"), idle_timeout_s=0)
    yield running
    stop_hub(running)


@pytest.mark.parametrize("course", sorted(CASES))
def test_a_course_end_to_end(hub, course, tmp_path):
    assignment, notebook = CASES[course]
    source = hub.platform.site.courses_dir / course / "source" / assignment / f"{notebook}.ipynb"
    right, partial, tests, (manual_id, manual_points) = answers_and_points(source)
    suffix = course.split("-")[0]
    students = {f"juste-{suffix}": right, f"partiel-{suffix}": partial, f"vide-{suffix}": {}}
    instructor = f"prof-{suffix}"

    hub.enrol(course, instructor, role="instructor")
    for student in students:
        hub.enrol(course, student)
    lifecycle.release(hub.platform, course, assignment)
    parallel(lambda s: hub.spawn(s, {"course": course}), list(students))
    parallel(hub.wait_ready, list(students))
    tokens = {s: hub.user_token(s) for s in students}
    parallel(lambda s: submit_through_server(hub, s, tokens[s], course, assignment, notebook,
                                             students[s]), list(students))

    assert lifecycle.collect(hub.platform, course, assignment).rejected == []
    lifecycle.autograde(hub.platform, course, assignment)
    right_student = f"juste-{suffix}"
    grade_by_hand_in_the_formgrader(hub, instructor, course, assignment, notebook, manual_id,
                                    {right_student: manual_points}, sorted(students))
    lifecycle.feedback(hub.platform, course, assignment)
    feedback = fetch_feedback_through_server(hub, right_student, tokens[right_student], course,
                                             assignment)
    assert [path.rsplit("/", 1)[1] for path in feedback] == [f"{notebook}.html"]
    for student in students:
        hub.api.stop_server(student)

    files = lifecycle.export(hub.platform, course, tmp_path)
    with open(files["questions"], newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == assignment]
    auto = {s: sum(float(r["score"] or 0) for r in rows if r["username"] == s
                   and r["question"] in tests) for s in students}
    full = sum(tests.values())
    assert auto[right_student] == full
    assert 0 < auto[f"partiel-{suffix}"] < full
    assert auto[f"vide-{suffix}"] == 0
    with open(files["totals"], newline="") as handle:
        totals = {r["username"]: float(r["score"]) for r in csv.DictReader(handle)
                  if r["assignment"] == assignment}
    assert totals[right_student] == full + manual_points
    assert totals[f"vide-{suffix}"] == 0
    with open(files["moodle"], newline="") as handle:
        moodle = {r["username"]: r for r in csv.DictReader(handle)}
    title = next(a.title for a in hub.platform.courses[course].assignments if a.id == assignment)
    assert float(moodle[right_student][title]) == full + manual_points
    assert set(moodle) == set(students)
    ARTIFACTS.mkdir(exist_ok=True)  # what the run observed, for people to read
    (ARTIFACTS / f"scores-{course}.json").write_text(json.dumps(
        {"assignment": assignment, "autograded_max": full, "autograded": auto,
         "totals": totals}, indent=2))
