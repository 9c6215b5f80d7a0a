"""What students and instructors do with an assignment, driven for real through the hub."""

from __future__ import annotations

import json

import requests


def nbgrader_cell(kind: str, source: str, **nbgrader) -> dict:
    """A notebook cell with nbgrader's metadata (grade_id, points, locked...)."""
    cell = {"id": nbgrader["grade_id"], "cell_type": kind, "source": source,
            "metadata": {"nbgrader": {"schema_version": 3, **nbgrader}}}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


WORK = """
import json, os, subprocess
def sh(*args):
    run = subprocess.run(args, capture_output=True, text=True)
    print(run.stdout[-1500:], run.stderr[-1500:])
    return run.returncode
result = {{"fetch": sh("nbgrader", "fetch_assignment", {assignment!r}, "--course", {course!r})}}
path = os.path.expanduser("~/{course}/{assignment}/{notebook}.ipynb")
nb = json.load(open(path))
answers = json.loads({answers!r})
for cell in nb["cells"]:
    grade_id = cell["metadata"].get("nbgrader", {{}}).get("grade_id")
    if grade_id in answers:
        cell["source"] = answers[grade_id]
json.dump(nb, open(path, "w"))
result["submit"] = sh("nbgrader", "submit", {assignment!r}, "--course", {course!r})
"""


def submit_through_server(hub, student: str, token: str, course: str, assignment: str,
                          notebook: str, answers: dict[str, str]) -> str:
    """In the student's own server: fetch, fill in answers by grade_id, submit."""
    run = hub.run_for_result(student, token, WORK.format(
        course=course, assignment=assignment, notebook=notebook, answers=json.dumps(answers)))
    assert run.result == {"fetch": 0, "submit": 0}, (student, run.output)
    return run.output


def fetch_feedback_through_server(hub, student: str, token: str, course: str,
                                  assignment: str) -> list[str]:
    """In the student's own server: fetch the feedback; the HTML files it brought."""
    run = hub.run_for_result(student, token, (
        "import subprocess, glob\n"
        f"fetched = subprocess.run(['nbgrader', 'fetch_feedback', {assignment!r}, '--course', "
        f"{course!r}], capture_output=True, text=True)\n"
        "print(fetched.stdout[-1500:], fetched.stderr[-1500:])\n"
        f"result = {{'rc': fetched.returncode, 'files': "
        f"glob.glob('/home/jovyan/{course}/{assignment}/feedback/*/*.html')}}"))
    assert run.result["rc"] == 0, (student, run.output)
    return run.result["files"]


def grade_by_hand_in_the_formgrader(hub, instructor: str, course: str, assignment: str,
                                    notebook: str, grade_id: str, scores: dict[str, float],
                                    students: list[str]) -> None:
    """The instructor starts the course's formgrader server and grades through its API."""
    grader = f"grader-{course}"
    token = hub.user_token(instructor, [f"servers!user={grader}",
                                        f"access:servers!user={grader}",
                                        f"read:users!user={grader}"])
    headers = {"Authorization": f"token {token}"}
    reply = requests.post(f"{hub.url}/hub/api/users/{grader}/server", headers=headers,
                          json={}, timeout=60)
    assert reply.status_code in (201, 202), reply.text
    hub.wait_ready(grader)
    base = f"{hub.url}/user/{grader}/formgrader"
    page = requests.get(base, headers=headers, timeout=60)
    assert page.status_code == 200 and "formgrade" in page.text.lower()
    submissions = requests.get(f"{base}/api/submitted_notebooks/{assignment}/{notebook}",
                               headers=headers, timeout=60).json()
    by_student = {s["student"]: s["id"] for s in submissions}
    assert set(by_student) == set(students)
    # The autograde button regrades one submission in the sandboxed grader, through the
    # grading service; a student's token gets nowhere there.
    regraded = requests.post(f"{base}/api/submission/{assignment}/{students[0]}/autograde",
                             headers=headers, timeout=900)
    assert regraded.status_code == 200 and regraded.json()["success"] is True, regraded.text
    assert f"{assignment}: 1 graded" in regraded.json()["log"]
    service = (f"{hub.url}/services/classhub-grader/api/autograde/"
               f"{course}/{assignment}/{students[0]}")
    forged = requests.post(service, timeout=60, allow_redirects=False,
                           headers={"Authorization": f"token {hub.user_token(students[0])}"})
    assert forged.status_code == 403, forged.status_code
    for student, score in scores.items():
        grades = requests.get(f"{base}/api/grades", params={"submission_id": by_student[student]},
                              headers=headers, timeout=60).json()
        grade = next(g for g in grades if g["name"] == grade_id)
        reply = requests.put(f"{base}/api/grade/{grade['id']}", headers=headers,
                             json={"manual_score": score}, timeout=60)
        assert reply.status_code == 200, reply.text
    # A student cannot open it.
    student_token = hub.user_token(students[0])
    student = requests.get(base, headers={"Authorization": f"token {student_token}"},
                           timeout=60, allow_redirects=False)
    assert student.status_code in (403, 404), student.status_code
    hub.api.stop_server(grader)
