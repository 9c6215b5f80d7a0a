"""`classhub course archive COURSE`: the course's work kept in one place, then homes let go.

    <output>/<course>-archive-<UTC time>/          (0700)
        <course>-questions.csv, -totals.csv, -moodle.csv, -pseudonymised.csv
        <course>-coursework.tar.gz                 the gradebook folder (source, release,
                                                   submitted, autograded, feedback; the
                                                   gradebook copied with SQLite's online backup)
                                                   and the course's exchange
        manifest.json                              what was archived, and what was deleted

Then, as the course's `retention.delete_homes_on_archive` says (default: yes), the homes of its
students who are in no other course are deleted; a home shared with another course is kept and
listed as kept. Instructors' and admins' homes are never touched. The archive comes first: if
writing it fails, nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from classhub import audit
from classhub.backup import add_tree
from classhub.config.model import Platform
from classhub.coursework.layout import CourseSpace
from classhub.enrolment import from_identity_provider
from classhub.errors import ClasshubError
from classhub.hub.spawner import STUDENT_GROUP
from classhub.roster import Roster
from classhub.state import StateDir


def _students(platform: Platform, state: StateDir, course: str) -> set[str]:
    """The course's students: its roster, or its hub group when the provider enrols it."""
    if from_identity_provider(platform, course):
        from classhub.hubapi import HubAPI

        api = HubAPI.for_platform(platform)
        if not api.reachable():
            raise ClasshubError(f"{course} is enrolled by the identity provider: the hub must "
                                "run to know its students", "classhub up")
        group = api.request("GET", f"/groups/{STUDENT_GROUP.format(course=course)}", ok=(200,))
        return set(group.get("users", []))
    return set(Roster(state.rosters, course).students())


def archive(platform: Platform, course: str, output: Path) -> dict:
    from classhub.coursework.lifecycle import export

    if course not in platform.courses:
        raise ClasshubError(f"no course {course!r}")
    state = StateDir(platform.site.state_dir)
    space = CourseSpace.of(platform, course)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(output) / f"{course}-archive-{stamp}"
    folder.mkdir(mode=0o700, parents=True)
    students = _students(platform, state, course)
    files = {name: str(path) for name, path in export(platform, course, folder).items()}
    bundle = folder / f"{course}-coursework.tar.gz"
    with tempfile.TemporaryDirectory() as scratch:
        fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            if space.gradebook_dir.exists():
                add_tree(tar, space.gradebook_dir, "gradebook", Path(scratch),
                         skip={".classhub-grading"})
            if space.exchange.exists():
                add_tree(tar, space.exchange, "exchange", Path(scratch))
    files["coursework"] = str(bundle)

    deleted, kept = [], []
    if platform.courses[course].retention.delete_homes_on_archive:
        others = set()
        for other in platform.courses:
            if other != course and not from_identity_provider(platform, other):
                roster = Roster(state.rosters, other)
                others |= set(roster.students()) | set(roster.instructors())
        protected = set(Roster(state.rosters, course).instructors()) | set(
            platform.site.auth.admin_users)
        for student in sorted(students - protected):
            home = state.homes / student
            if not home.exists():
                continue
            if student in others:
                kept.append(student)
                continue
            shutil.rmtree(home)
            deleted.append(student)
    manifest = {"course": course, "archived_at": stamp, "files": files,
                "students": sorted(students), "homes_deleted": deleted,
                "homes_kept_other_course": kept}
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    path.chmod(0o600)
    audit.record(platform.site.state_dir, audit.whoami(), "course.archived", course=course,
                 folder=str(folder), homes_deleted=deleted, homes_kept=kept)
    return manifest
