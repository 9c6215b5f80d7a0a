"""An assignment's life: release, collect, autograde, feedback, export; one function each.

Release, collect and feedback run nbgrader in a throwaway container (steps.py) over the
course's gradebook directory, after classhub has written the course's nbgrader config from the
validated course and synced the gradebook's assignments (with due dates) and students (from the
roster) with the image's `classhub_gradebook` module. Autograding is the sandboxed grader's
(grading/); the export reads the gradebook on the host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from classhub import audit
from classhub.config.model import Course, Platform
from classhub.coursework.layout import DATASETS_IN_CONTAINER, CourseSpace
from classhub.coursework.steps import run_nbgrader
from classhub.errors import ClasshubError
from classhub.roster import Roster
from classhub.state import STUDENT_UID, StateDir, chown_tree
from grading.batch import GradingJob, RunReport, grade
from grading.export import export as export_grades
from grading.progress import Progress
from grading.sandbox import Limits

_CONFIG = '''\
# Written by classhub from courses/{course}/course.yml at every step; edit that file instead.
import math

from nbgrader.auth import NoAuthPlugin
from nbgrader.plugins import LateSubmissionPlugin

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course!r}
c.CourseDirectory.root = "/home/jovyan"
c.Authenticator.plugin_class = NoAuthPlugin
c.Exchange.path_includes_course = True
# Every file in a container belongs to uid 1000: identity comes from the inbound folder.
c.CollectApp.check_owner = False


class PerDayPenalty(LateSubmissionPlugin):
    """Loses {points_per_day} point(s) per started day late, never below zero."""

    def late_submission_penalty(self, student_id, score, total_seconds):
        days = math.ceil(total_seconds / 86400)
        return min(score, days * {points_per_day})


{late_penalty}
'''

def _course(platform: Platform, course: str) -> Course:
    if course not in platform.courses:
        raise ClasshubError(f"no course {course!r}",
                            f"courses: {', '.join(sorted(platform.courses))}")
    return platform.courses[course]


def _assignment(course: Course, course_id: str, assignment: str):
    for item in course.assignments:
        if item.id == assignment:
            return item
    known = ", ".join(a.id for a in course.assignments) or "none"
    raise ClasshubError(f"{course_id} has no assignment {assignment!r}", f"assignments: {known}")


def write_course_config(platform: Platform, course_id: str) -> None:
    course = _course(platform, course_id)
    space = CourseSpace.of(platform, course_id).ensure()
    penalty = course.late_penalty
    if penalty.policy == "per-day":
        line = "c.AssignLatePenalties.plugin_class = PerDayPenalty"
    elif penalty.policy == "zero":
        line = 'c.LateSubmissionPlugin.penalty_method = "zero"'
    else:
        line = 'c.LateSubmissionPlugin.penalty_method = "none"'
    path = space.gradebook_dir / "nbgrader_config.py"
    path.write_text(_CONFIG.format(course=course_id, points_per_day=penalty.points_per_day,
                                   late_penalty=line))
    chown_tree(path, STUDENT_UID, STUDENT_UID)


def _sync_env(platform: Platform, course_id: str) -> dict[str, str]:
    course = _course(platform, course_id)
    members = Roster(StateDir(platform.site.state_dir).rosters, course_id).members()
    return {
        "CLASSHUB_ASSIGNMENTS": json.dumps([{"id": a.id, "due": a.due.isoformat()}
                                            for a in course.assignments]),
        "CLASSHUB_STUDENTS": json.dumps([{"id": m.username, "name": m.name, "email": m.email}
                                         for m in members.values() if m.role == "student"]),
    }


def _run(platform: Platform, course_id: str, shell: str, timeout_s: int = 1800,
         env: dict | None = None) -> str:
    write_course_config(platform, course_id)
    sync = "python -m classhub_gradebook sync"
    return run_nbgrader(platform, course_id, [], timeout_s=timeout_s,
                        command=["bash", "-c", f"set -e; {sync}; {shell}"],
                        env={**_sync_env(platform, course_id), **(env or {})})


def release(platform: Platform, course_id: str, assignment_id: str) -> str:
    """Copy the source from git into the gradebook, generate the student version, release it."""
    course = _course(platform, course_id)
    _assignment(course, course_id, assignment_id)
    space = CourseSpace.of(platform, course_id).ensure()
    source = platform.site.courses_dir / course_id / "source" / assignment_id
    target = space.gradebook_dir / "source" / assignment_id
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    chown_tree(space.gradebook_dir / "source", STUDENT_UID, STUDENT_UID)
    return _run(platform, course_id,
                f"nbgrader generate_assignment {assignment_id} --force && "
                f"nbgrader release_assignment {assignment_id} --force")


@dataclass
class Collected:
    output: str
    rejected: list[tuple[str, str]]  # (student, reason)


def collect(platform: Platform, course_id: str, assignment_id: str) -> Collected:
    _assignment(_course(platform, course_id), course_id, assignment_id)
    output = _run(platform, course_id, f"nbgrader collect {assignment_id} --update")
    rejected = re.findall(r"Rejected submission .+ of (\S+): (.+)$", output, re.M)
    space = CourseSpace.of(platform, course_id)
    for stamp in sorted((space.gradebook_dir / "submitted").glob(f"*/{assignment_id}/"
                                                                   "timestamp.txt")):
        audit.record(platform.site.state_dir, audit.whoami(), "submission.collected",
                     course=course_id, target=stamp.parent.parent.name,
                     assignment=assignment_id, submitted_at=stamp.read_text().strip())
    for student, reason in rejected:
        audit.record(platform.site.state_dir, audit.whoami(), "submission.rejected",
                     course=course_id, target=student, assignment=assignment_id, reason=reason)
    return Collected(output, rejected)


def grading_job(platform: Platform, course_id: str, assignment_id: str, jobs: int | None = None,
                force: bool = False, students: list[str] | None = None) -> GradingJob:
    """The course's grading: its image, its limits, its time budgets, its datasets."""
    item = _assignment(_course(platform, course_id), course_id, assignment_id)
    profile = platform.profile(course_id)
    space = CourseSpace.of(platform, course_id).ensure()
    return GradingJob(
        course_dir=space.gradebook_dir, assignment=assignment_id, image=profile.image,
        limits=Limits(mem_limit=profile.mem_limit, cpus=profile.cpu_limit,
                      pids=profile.pids_limit, cell_timeout_s=item.cell_timeout_s,
                      notebook_timeout_s=item.notebook_timeout_s),
        jobs=jobs or os.cpu_count() or 1, force=force, students=students,
        volumes={path: {"bind": f"{DATASETS_IN_CONTAINER}/{name}", "mode": "ro"}
                 for name, path in profile.datasets.items()})


def autograde(platform: Platform, course_id: str, assignment_id: str, jobs: int | None = None,
              force: bool = False, students: list[str] | None = None,
              progress: Progress | None = None, actor: str | None = None) -> RunReport:
    """Every collected submission, each in its own sandbox (grading/), scores in the gradebook.
    The gradebook's due dates and students are synced from the course and roster first.
    Each grade written goes to the audit trail."""
    job = grading_job(platform, course_id, assignment_id, jobs, force, students)
    _run(platform, course_id, "true")
    report = grade(job, progress)
    for result in report.results:
        if result.status != "error":
            audit.record(platform.site.state_dir, actor or audit.whoami(), "grade.autograde",
                         course=course_id, target=result.student, assignment=assignment_id,
                         status=result.status, score=result.score, max_score=result.max_score,
                         late_penalty=result.late_penalty, run=report.run)
    return report


def feedback(platform: Platform, course_id: str, assignment_id: str) -> str:
    _assignment(_course(platform, course_id), course_id, assignment_id)
    return _run(platform, course_id,
                f"nbgrader generate_feedback {assignment_id} --force && "
                f"nbgrader release_feedback {assignment_id}")


def export(platform: Platform, course_id: str, output_dir: Path,
           actor: str | None = None) -> dict[str, Path]:
    """Per-question scores, totals (late penalty applied), a Moodle grade import file and a
    pseudonymised variant, read from the course's gradebook on the host."""
    course = _course(platform, course_id)
    space = CourseSpace.of(platform, course_id)
    key = bytes.fromhex(StateDir(platform.site.state_dir).secret(f"pseudonyms-{course_id}"))
    files = export_grades(space.gradebook_dir, course_id, output_dir, course_id,
                          {a.id: a.title for a in course.assignments}, key)
    audit.record(platform.site.state_dir, actor or audit.whoami(), "grades.export",
                 course=course_id,
                 files=sorted(str(p) for p in files.values()))
    return files
